"""Options of the sector analysis: partition landmarks and involvement thresholds.

The landmark thresholds of the anatomical partition live in ``sectors/data/partition.toml``
(:class:`PartitionOptions`); a profile replaces any of them with
:meth:`PartitionOptions.from_toml` or :meth:`PartitionOptions.with_values`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from contourqa.errors import ContourQAError

_TABLES = ("axis", "bony_canal", "pedicle", "foramen", "spinous", "envelope")


class PartitionOptionsError(ContourQAError, ValueError):
    """A partition profile names an unknown table or key, or a value out of range."""


@dataclass(frozen=True, kw_only=True)
class PartitionOptions:
    """Landmark thresholds of the anatomical partition (``partition.toml``; mm, degrees).

    Field names are ``<table>_<key>`` of the TOML file; see its comments for each
    entry's meaning, source and status.
    """

    bony_canal_angular_bins: int
    axis_symmetry_span_deg: float
    axis_symmetry_step_deg: float
    bony_canal_max_radius_mm: float
    bony_canal_gap_factor: float
    bony_canal_min_hit_fraction: float
    bony_canal_gap_fill_mm: float
    bony_canal_neighbour_mm: float
    pedicle_junction_canal_fraction: float
    pedicle_width_quantile: float
    pedicle_outer_margin_mm: float
    pedicle_min_width_mm: float
    pedicle_max_width_mm: float
    pedicle_default_width_mm: float
    pedicle_tp_root_mm: float
    pedicle_tp_root_position: float
    pedicle_lateral_end_fraction: float
    pedicle_tp_root_min_area_mm2: float
    pedicle_tp_root_max_ahead_mm: float
    pedicle_tp_front_tolerance_mm: float
    pedicle_body_tolerance_mm: float
    pedicle_body_profile_min_area: float
    pedicle_body_max_behind_wall_mm: float
    foramen_min_area_mm2: float
    foramen_max_area_mm2: float
    foramen_max_behind_mm: float
    foramen_max_ahead_mm: float
    foramen_pair_tolerance_mm: float
    foramen_min_slices: int
    spinous_base_offset_mm: float
    spinous_search_half_width_mm: float
    spinous_half_width_margin_mm: float
    spinous_min_half_width_mm: float
    spinous_max_half_width_mm: float
    spinous_default_half_width_mm: float
    spinous_root_offset_mm: float
    spinous_max_root_offset_mm: float
    envelope_neighbour_mm: float
    envelope_closing_mm: float
    envelope_use_mirror: bool
    envelope_use_body_hull: bool
    envelope_use_adjacent_levels: bool

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.type in ("float", "int") and not float(v) >= 0:
                raise PartitionOptionsError(f'Partition option "{f.name}" must be >= 0.')
        if not self.axis_symmetry_step_deg > 0:
            raise PartitionOptionsError('Partition option "axis_symmetry_step_deg" must be > 0.')
        if self.bony_canal_angular_bins < 8:
            raise PartitionOptionsError('Partition option "bony_canal_angular_bins" must be >= 8.')
        for name in ("pedicle_junction_canal_fraction", "pedicle_width_quantile",
                     "bony_canal_min_hit_fraction", "pedicle_body_profile_min_area"):
            if not 0 < float(getattr(self, name)) <= 1:
                raise PartitionOptionsError(f'Partition option "{name}" must be within (0, 1].')
        for name in ("pedicle_tp_root_position", "pedicle_lateral_end_fraction"):
            if not 0 <= float(getattr(self, name)) <= 1:
                raise PartitionOptionsError(f'Partition option "{name}" must be within [0, 1].')
        if not self.bony_canal_gap_factor > 1:
            raise PartitionOptionsError('Partition option "bony_canal_gap_factor" must be > 1.')
        if not self.pedicle_min_width_mm <= self.pedicle_default_width_mm \
                <= self.pedicle_max_width_mm:
            raise PartitionOptionsError("Pedicle widths must satisfy min <= default <= max.")
        if not self.spinous_min_half_width_mm <= self.spinous_default_half_width_mm \
                <= self.spinous_max_half_width_mm:
            raise PartitionOptionsError("Spinous half-widths must satisfy min <= default <= max.")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, base: PartitionOptions | None = None,
                     where: str = "partition options") -> PartitionOptions:
        """Options from parsed TOML tables (``{"pedicle": {"min_width_mm": 4.0}, ...}``).

        Keys absent from ``data`` keep ``base``'s values (all keys needed without
        ``base``); ``source`` and ``status`` keys are documentation.

        Raises
        ------
        PartitionOptionsError
            An unknown table or key (named with ``where``), a missing key, or a value
            out of range.
        """
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for table, entries in data.items():
            if table not in _TABLES or not isinstance(entries, Mapping):
                raise PartitionOptionsError(f"{where}: unknown table [{table}]; tables are "
                                            f"{list(_TABLES)}.")
            for key, value in entries.items():
                if key in ("source", "status"):
                    continue
                name = f"{table}_{key}"
                if name not in known:
                    raise PartitionOptionsError(f"{where}: unknown key {key!r} in [{table}].")
                kind = known[name].type
                try:
                    values[name] = (bool(value) if kind == "bool" else int(value)
                                    if kind == "int" else float(value))
                except (TypeError, ValueError):
                    raise PartitionOptionsError(
                        f"{where}: [{table}] {key} = {value!r} is not a number.") from None
        if base is None:
            missing = sorted(set(known) - set(values))
            if missing:
                raise PartitionOptionsError(f"{where}: missing keys {missing}.")
        try:
            return replace(base, **values) if base is not None else cls(**values)
        except PartitionOptionsError as e:  # a value out of range: say where it came from
            raise PartitionOptionsError(f"{where}: {e}") from None

    @classmethod
    def from_toml(cls, path: str | Path, *, base: PartitionOptions | None = None
                  ) -> PartitionOptions:
        """A profile file overriding ``base`` (default: the built-in values)."""
        p = Path(path)
        return cls.from_mapping(tomllib.loads(p.read_text(encoding="utf-8")),
                                base=base or builtin_partition_options(), where=str(p))

    def with_values(self, **values: Any) -> PartitionOptions:
        """These options with some fields replaced (validated)."""
        return replace(self, **values)


@lru_cache(maxsize=1)
def builtin_partition_options() -> PartitionOptions:
    """The values of the built-in ``sectors/data/partition.toml``."""
    item = resources.files("contourqa.sectors").joinpath("data", "partition.toml")
    return PartitionOptions.from_mapping(tomllib.loads(item.read_text(encoding="utf-8")),
                                         where="sectors/data/partition.toml")


@dataclass(frozen=True, kw_only=True)
class SectorOptions:
    """Options of the sector analysis (geometry in mm and degrees, volumes in cc).

    Parameters
    ----------
    level : str, optional
        Level of the treated vertebra (``--level T10``); names the vertebra holding
        most GTV bone when its ROI name does not.
    min_involved_cc : float
        GTV volume in a sector from which the sector counts as involved (0.05 cc).
    sector_boundary_band_mm : float
        A sector holding ``min_involved_cc`` of GTV counts as involved only when the GTV
        also reaches farther than this in-plane distance (and 1.5 pixels) from the
        bone of the vertebra's other sectors (1.5 mm; 0 counts any sliver): the
        partition's boundaries are found to about a pixel, and a GTV contoured up to
        a boundary rasterises a one-voxel sliver across it.  A GTV alone in one
        sector is never dropped, nor a GTV none of whose sectors it reaches deeper (a
        small lesion astride a boundary counts on both sides).
    sector_boundary_min_cc : float
        The GTV beyond that band must hold at least this volume (0.02 cc; 0: one
        voxel): a boundary found a pixel off along its whole length leaves a few
        voxels of a contour drawn up to it just past the band.
    min_epidural_cc, min_paraspinal_cc : float
        Same for the epidural and paraspinal components (0.05 cc).
    paraspinal_margin_mm : float
        GTV outside the bone but within this in-plane distance (and at least one
        pixel) of a vertebra's bone is the bone's boundary, not paraspinal disease
        (1 mm; 0 counts the rim too): a GTV contour drawn
        on the cortex rasterises one voxel wider than the bone found on the CT,
        which along a 12 mm process over 8 slices is 0.08 cc.  A real paraspinal
        extension reaches millimetres into the soft tissue.
    lateral_share : float
        Share of the body GTV on one side of the midline that makes it lateralised.
    diffuse_body_fraction : float
        Fraction of the vertebral body (on the GTV's slices) the GTV must fill to be
        diffuse.
    central_half_width_fraction : float
        A body GTV spanning both sides is ``central`` when it stays within this
        fraction of the body's half-width from the midline (0.6), else ``diffuse``.
    epidural_gap_deg : float
        Angular gaps narrower than this between epidural voxels are bridged (15).
    circumferential_min_deg : float
        Epidural extent from which the epidural disease is circumferential (330).
    ctv_covered_min_pct : float
        Share of a sector's bone the CTV must hold to cover the sector (50 %).
    crop_margin_mm : tuple of float
        Margin (z, in-plane) around the GTV and CTV of the analysed region (30, 80).
    min_canal_area_mm2 : float
        Smallest hole in the vertebral ring taken for the canal (20 mm2).
    partition : PartitionOptions
        Landmark thresholds of the anatomical partition, the bony canal and the
        restored envelope (built-in: ``sectors/data/partition.toml``).
    """

    level: str | None = None
    min_involved_cc: float = 0.05
    sector_boundary_band_mm: float = 1.5
    sector_boundary_min_cc: float = 0.02
    min_epidural_cc: float = 0.05
    min_paraspinal_cc: float = 0.05
    paraspinal_margin_mm: float = 1.0
    lateral_share: float = 0.8
    diffuse_body_fraction: float = 0.5
    central_half_width_fraction: float = 0.6
    epidural_gap_deg: float = 15.0
    circumferential_min_deg: float = 330.0
    ctv_covered_min_pct: float = 50.0
    crop_margin_mm: tuple[float, float] = (30.0, 80.0)
    min_canal_area_mm2: float = 20.0
    partition: PartitionOptions = field(default_factory=builtin_partition_options)

    def __post_init__(self) -> None:
        for name in ("min_involved_cc", "sector_boundary_band_mm", "sector_boundary_min_cc",
                     "min_epidural_cc",
                     "min_paraspinal_cc",
                     "paraspinal_margin_mm", "epidural_gap_deg"):
            if not float(getattr(self, name)) >= 0:
                raise ValueError(f'Argument "{name}" must be >= 0.')
        if not 0.5 < self.lateral_share <= 1.0:
            raise ValueError('Argument "lateral_share" must be within (0.5, 1].')
        if self.level is not None:
            from contourqa.structures import parse_level

            object.__setattr__(self, "level", parse_level(self.level))


    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, level: str | None = None,
                     where: str = "[sectors]") -> SectorOptions:
        """Options from a profile's ``[sectors]`` table: any field but ``level`` (a
        number each; ``crop_margin_mm`` a pair) and a ``partition`` table of
        ``partition.toml``'s tables (``[sectors.partition.pedicle]`` ...) over the
        built-in values.

        Raises
        ------
        PartitionOptionsError
            An unknown key or partition table (named with ``where``) or a bad value.
        """
        known = {f.name: f for f in fields(cls) if f.name not in ("level", "partition")}
        values: dict[str, Any] = {}
        partition = builtin_partition_options()
        for key, value in data.items():
            if key == "partition":
                if not isinstance(value, Mapping):
                    raise PartitionOptionsError(f"{where}: partition must be a table.")
                partition = PartitionOptions.from_mapping(value, base=partition,
                                                          where=f"{where} partition")
                continue
            if key not in known:
                raise PartitionOptionsError(f"{where}: unknown key {key!r}; known: "
                                            f"{', '.join(sorted(known))}, partition.")
            try:
                values[key] = (tuple(float(v) for v in value) if key == "crop_margin_mm"
                               else float(value))
            except (TypeError, ValueError) as exc:
                raise PartitionOptionsError(f"{where}: {key} must be a number.") from exc
        try:
            return cls(level=level, partition=partition, **values)
        except ValueError as exc:
            raise PartitionOptionsError(f"{where}: {exc}") from exc


DEFAULT_OPTIONS = SectorOptions()
