"""Level verification: each analysed vertebra's level from independent sources.

Treating the wrong level is the most feared error of spine SBRT.  Each vertebra of
the analysed column gets its level, where they exist, from

* ``roi_name``: its own vertebra ROI (``VB_T10``, ``Bone_Vertebra_T10``);
* ``user``: ``--level``, for the treated vertebra (the one holding most GTV bone, or
  CTV bone without a GTV);
* ``plan``: the levels named by the RT Plan (RTPlanLabel, RTPlanName, the target
  dose references' descriptions: ``"T10 SBRT"``, ``"T9-T11"``), for the treated vertebra;
* ``target``: a target ROI named with a level (``PTV_T10``, ``GTV T9-T10``), for the
  vertebra holding most of that target's bone;

(a plan or target claim goes to another vertebra the GTV or that target involves,
at least ``min_involved_cc`` of bone, when that one's other sources admit the level:
a label naming one of two treated levels is no mismatch);
* ``image``: counted on the CT from an anchor in the field of view
  (:mod:`contourqa.anatomy.anchors`: the lumbosacral junction, the last rib-bearing
  vertebra), on two grids that must agree.

A range (``T9-T11``) admits each of its levels.  Findings:

* ``sectors.level_mismatch`` **fail** when the sources of one vertebra admit no common
  level, or when the vertebra ROIs' names run against their order along the spine;
  **pass** when at least two sources name the treated vertebra and none disagrees;
* ``sectors.level_unverified``: the image could not count the level (no CT, no
  anchor in the field, the anchors disagree, or the count crosses a vertebra the
  segmentation may have missed): **warn** when two other sources agree on the
  treated level, **not_evaluated** when it rests on one source or none.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from contourqa.anatomy.spine import SpineAnatomy
from contourqa.case import Case
from contourqa.findings import Finding, Status
from contourqa.io.rtstruct import ROI
from contourqa.masks import crop_geometry, roi_mask
from contourqa.sectors.results import SectorAnalysis
from contourqa.structures import Role, RoleTable, level_index, level_range

if TYPE_CHECKING:
    from contourqa.anatomy.anchors import ImageLevels
    from contourqa.io.images import ImageSeries

__all__ = ["LevelClaim", "text_levels", "verify_levels"]

_SOURCE = ("Level verification: ROI names, plan and target labels and the count on the CT from an "
           "anchor must agree (wrong-level treatment; contourqa D, rules/data/analysis.toml)")
# A level in free text: no "D" (dorsal) prefix, which in a plan's texts is a dose
# metric ("D2cc", "D95"), and no number followed by a unit ("T 20Gy", "S 2cc").
_NOT_A_UNIT = r"(?![0-9]|[.,][0-9]|\s*(?:cc|%|c?gy|mm|cm|fx|ml)\b)"
_TEXT_LEVEL = re.compile(
    rf"(?<![A-Za-z0-9])(th|c|t|l|s)[\s_.]?0*(\d{{1,2}}){_NOT_A_UNIT}"
    rf"(?:\s*[-\u2013/]\s*(?:(th|c|t|l|s)[\s_.]?)?0*(\d{{1,2}}){_NOT_A_UNIT})?",
    re.IGNORECASE)
#: at most this many voxels of a vertebra are looked up in the CT column
_MAX_POINTS = 20000
#: the CT column of the last few images (the same case is often analysed again, e.g.
#: with the pre-operative GTV): image identity and in-plane box -> counted levels
_CACHE: dict[tuple[int, int, int, int, int, tuple[int, int, int]],
             tuple[weakref.ref[Any], ImageLevels]] = {}
_CACHE_SIZE = 8
_CACHE_LOCK = threading.Lock()


@dataclass(frozen=True)
class LevelClaim:
    """What one source says about the level of one vertebra.

    Attributes
    ----------
    source : {"roi_name", "user", "plan", "target", "image"}
    level : str
        A level (``"T10"``), a range (``"T9-T11"``) or several (``"T9, T12"``).
    evidence : str
        Where it was read (``"ROI 'VB_T10'"``, ``"RTPlanLabel 'T10 SBRT'"``).
    """

    source: str
    level: str
    evidence: str

    @property
    def admits(self) -> frozenset[str]:
        """The single levels this claim allows."""
        out: set[str] = set()
        for part in self.level.split(","):
            out.update(level_range(part.strip()))
        return frozenset(out)

    def to_json(self) -> dict[str, str]:
        return {"source": self.source, "level": self.level, "evidence": self.evidence}


def _spell(levels: Iterable[str]) -> str:
    """Single levels as ``T10``, ``T9-T11`` (contiguous) or ``T9, T12``."""
    idx = sorted({level_index(lv) for lv in levels})
    names = {level_index(lv): lv for lv in levels}
    if len(idx) == 1:
        return names[idx[0]]
    if idx == list(range(idx[0], idx[-1] + 1)):
        return f"{names[idx[0]]}-{names[idx[-1]]}"
    return ", ".join(names[i] for i in idx)


def text_levels(text: str | None) -> tuple[str, ...]:
    """Every single level a free text names, ranges expanded, spine order.

    Parameters
    ----------
    text : str or None
        A plan label, plan name or dose reference description (``"T9-11 SBRT"``).

    Returns
    -------
    tuple of str
        ``("T9", "T10", "T11")``; empty when the text names no level.

    Examples
    --------
    >>> text_levels("T12-L1 SBRT 24Gy/2fx")
    ('T12', 'L1')
    """
    found: set[str] = set()
    for m in _TEXT_LEVEL.finditer(text or ""):
        first = f"{m[1]}{m[2]}"
        second = None if m[4] is None else f"{m[3] or m[1]}{m[4]}"
        try:
            found.update(level_range(first if second is None else f"{first}-{second}"))
        except ValueError:
            continue
    return tuple(sorted(found, key=level_index))


def _rois_by_number(case: Case) -> dict[int, ROI]:
    return {r.number: r for r in case.structure_set.rois} if case.structure_set else {}


def _bone_owner(sec: SectorAnalysis) -> NDArray[np.int64] | None:
    if sec.labels is None:
        return None
    return np.asarray(sec.labels, dtype=np.int64) // 10 - 1


def _main_vertebra(owner: NDArray[np.int64], mask: NDArray[np.bool_] | None, n: int
                   ) -> int | None:
    """The vertebra holding most of ``mask``'s bone, None without any."""
    if mask is None:
        return None
    own = owner[mask & (owner >= 0)]
    if own.size == 0:
        return None
    return int(np.argmax(np.bincount(own, minlength=n)))


def _involved(owner: NDArray[np.int64], mask: NDArray[np.bool_] | None, n: int,
              min_voxels: float) -> list[int]:
    """The vertebrae holding at least ``min_voxels`` of ``mask``'s bone."""
    if mask is None:
        return []
    counts = np.bincount(owner[mask & (owner >= 0)], minlength=n)
    return [int(i) for i in np.nonzero(counts >= max(min_voxels, 1.0))[0]]


def _placed(claim: LevelClaim, main: int, involved: Sequence[int],
            claims: Sequence[Sequence[LevelClaim]]) -> int:
    """The vertebra a plan or target claim speaks of: among the vertebrae the target
    involves, one whose other sources admit the claimed level (a label naming one of
    two treated levels is not a mismatch); else the one holding most of it."""
    for i in [main, *involved]:
        if claims[i] and all(claim.admits & c.admits for c in claims[i]):
            return i
    return main


def _plan_claim(case: Case) -> LevelClaim | None:
    if case.plan is None:
        return None
    texts = [("RTPlanLabel", case.plan.label), ("RTPlanName", case.plan.name),
             *(("DoseReferenceDescription", t) for t in case.plan.target_names)]
    found: list[str] = []
    said: list[str] = []
    for keyword, text in texts:
        levels = text_levels(text)
        if levels:
            found.extend(levels)
            said.append(f"{keyword} {text!r}")
    if not found:
        return None
    return LevelClaim("plan", _spell(found), ", ".join(dict.fromkeys(said)))


def _column(image: ImageSeries, sec: SectorAnalysis, voxel_mm: float) -> ImageLevels:
    """The counted CT column over all slices of ``image``, in-plane over the analysed box
    (cached per image object, box and grid)."""
    from contourqa.anatomy.anchors import coarse_factors, image_levels

    assert sec.geometry is not None
    _, j0, i0 = sec.crop_start_kji
    _, nj, ni = sec.geometry.shape
    key = (id(image), j0, i0, nj, ni, coarse_factors(image.geometry, voxel_mm))
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
    if hit is not None and hit[0]() is image:
        return hit[1]
    full = image.geometry
    start, stop = (0, j0, i0), (full.shape[0], j0 + nj, i0 + ni)
    found = image_levels(image.pixels[:, j0:j0 + nj, i0:i0 + ni],
                         crop_geometry(full, start, stop), voxel_mm=voxel_mm)
    with _CACHE_LOCK:
        while len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = (weakref.ref(image), found)
    return found


def _image_claims(case: Case, anatomy: SpineAnatomy, sec: SectorAnalysis
                  ) -> tuple[dict[int, LevelClaim], str | None]:
    """Image levels of the analysed vertebrae, and why there are none (or fewer).

    The column is counted on each grid of :func:`contourqa.anatomy.anchors.grid_sizes_mm`
    (the same grid once); a vertebra gets the image level only when every grid gives it.
    """
    image = case.image
    if image is None or image.modality != "CT":
        return {}, "there is no CT" if image is None else f"the image is {image.modality}"
    if sec.geometry is None:
        return {}, "the analysed grid is unknown"
    from contourqa.anatomy.anchors import coarse_factors, grid_sizes_mm

    grids: dict[tuple[int, int, int], float] = {}
    for mm in grid_sizes_mm():
        grids.setdefault(coarse_factors(image.geometry, mm), mm)
    columns = []
    for mm in grids.values():
        found = _column(image, sec, mm)
        if found.status != "counted":
            return {}, found.message  # the other grids cannot make a count hold
        columns.append(found)
    claims: dict[int, LevelClaim] = {}
    unmatched, unstable = [], []
    rng = np.random.default_rng(0)
    for i, v in enumerate(anatomy.vertebrae):
        idx = np.argwhere(v.mask)
        if len(idx) > _MAX_POINTS:
            idx = idx[rng.choice(len(idx), _MAX_POINTS, replace=False)]
        pts = sec.geometry.index_to_patient(idx)
        levels = []
        for found in columns:
            k = found.vertebra_at(pts)
            levels.append(found.levels[k] if k is not None else None)
        who = v.roi_name or f"vertebra {i + 1} from below"
        if any(lv is None for lv in levels):
            unmatched.append(who)
        elif len(set(levels)) > 1:
            unstable.append(f"{who!r} ({' vs '.join(str(lv) for lv in levels)})")
        else:
            claims[i] = LevelClaim("image", str(levels[0]), f"CT, {columns[0].message}")
    why = []
    if unmatched:
        why.append(f"{', '.join(repr(u) for u in unmatched)} not matched to a counted "
                   f"vertebra of the CT column ({columns[0].message})")
    if unstable:
        sizes = " and ".join(f"{mm:g}" for mm in grids.values())
        why.append(f"the count differs between the {sizes} mm grids for "
                   f"{', '.join(unstable)}: the segmentation of a disc is uncertain")
    return claims, "; ".join(why) or None


def _who(anatomy: SpineAnatomy, i: int) -> str:
    v = anatomy.vertebrae[i]
    return f"ROI {v.roi_name!r}" if v.roi_name else f"the vertebra {i + 1} from below"


def _listing(claims: Sequence[LevelClaim]) -> str:
    return "; ".join(f"{c.source} {c.level} ({c.evidence})" for c in claims)


def _order_problem(anatomy: SpineAnatomy) -> Finding | None:
    """Vertebra ROIs whose named levels run against their order along the spine.

    Inferior first, the level must rise towards C1 (its index fall).  Two ROIs named
    with the same level are the same vertebra drawn twice when they overlap (over
    half of the smaller), else two vertebrae given one level.
    """
    named = [v for v in anatomy.vertebrae if v.roi_name and v.known_level]
    wrong = []
    for lo, hi in zip(named, named[1:], strict=False):
        a, b = level_index(str(lo.known_level)), level_index(str(hi.known_level))
        if a > b:
            continue
        if a == b:
            both = np.count_nonzero(lo.mask & hi.mask)
            if both > 0.5 * min(lo.volume_voxels, hi.volume_voxels):
                continue
        wrong.append((lo, hi))
    if not wrong:
        return None
    order = ", ".join(f"{v.roi_name!r} ({v.known_level})" for v in named)
    return Finding(code="sectors.level_mismatch", status=Status.FAIL, message=(
        f"The vertebra ROIs' names run against their order along the spine: from inferior "
        f"to superior they are {order}. At least one vertebra is named with the wrong level."),
        structure=wrong[0][1].roi_name, source=_SOURCE)


def verify_levels(case: Case, roles: RoleTable, anatomy: SpineAnatomy, sec: SectorAnalysis,
                  *, user_level: str | None) -> SectorAnalysis:
    """The sector analysis with each entry's level sources and the level findings.

    Parameters
    ----------
    case : Case
    roles : RoleTable
    anatomy : SpineAnatomy
        The analysed column (inferior first; ``anatomy.vertebrae[i]`` is entry index i).
    sec : SectorAnalysis
        From the involvement step, on ``anatomy.geometry``.
    user_level : str or None
        ``--level`` (normalised).

    Returns
    -------
    SectorAnalysis
        Entries with ``level_sources``; an entry without a level takes the image's
        (``level_source`` ``"image"``).  Findings ``sectors.level_mismatch`` and
        ``sectors.level_unverified`` added.
    """
    owner = _bone_owner(sec)
    if not sec.vertebrae or owner is None or sec.geometry is None:
        return sec
    n = len(anatomy.vertebrae)
    claims: list[list[LevelClaim]] = [[] for _ in range(n)]
    named = {a.roi_name: a.level for a in roles if a.role is Role.VERTEBRA and a.level}
    for i, v in enumerate(anatomy.vertebrae):
        # a range ROI (Sacrum, VB_T9-T11) has no single level but admits its range
        level = v.known_level or (named.get(v.roi_name) if v.roi_name else None)
        if v.roi_name and level:
            claims[i].append(LevelClaim("roi_name", level, f"ROI {v.roi_name!r}"))
    image, image_why = _image_claims(case, anatomy, sec)
    for i, c in image.items():
        claims[i].append(c)
    min_voxels = sec.options.min_involved_cc / sec.geometry.voxel_volume_cc
    treated = _main_vertebra(owner, sec.gtv, n)
    target_mask = sec.gtv
    if treated is None:
        treated = _main_vertebra(owner, sec.ctv, n)
        target_mask = sec.ctv
    if treated is not None:
        if user_level:
            claims[treated].append(LevelClaim("user", user_level, "--level"))
        if (plan := _plan_claim(case)) is not None:
            at = _placed(plan, treated, _involved(owner, target_mask, n, min_voxels), claims)
            claims[at].append(plan)
    by_number = _rois_by_number(case)
    for a in roles:
        roi = by_number.get(a.roi_number) if a.roi_number is not None else None
        if not a.role.is_target or not a.level or roi is None or roi.is_empty:
            continue
        mask = roi_mask(roi, sec.geometry)
        main = _main_vertebra(owner, mask, n)
        if main is not None:
            claim = LevelClaim("target", a.level, f"{a.role.name} ROI {a.roi_name!r}")
            claims[_placed(claim, main, _involved(owner, mask, n, min_voxels), claims)].append(
                claim)

    findings: list[Finding] = []
    if (order := _order_problem(anatomy)) is not None:
        findings.append(order)
    mismatched: set[int] = set()
    for i, cs in enumerate(claims):
        if len(cs) < 2:
            continue
        common = frozenset.intersection(*(c.admits for c in cs))
        if not common:
            mismatched.add(i)
            findings.append(Finding(
                code="sectors.level_mismatch", status=Status.FAIL,
                structure=anatomy.vertebrae[i].roi_name, source=_SOURCE,
                message=f"Wrong-level risk: the level of {_who(anatomy, i)} is not agreed: "
                        f"{_listing(cs)}. Check which vertebra is treated before delivery."))
    focus = treated if treated is not None else 0
    agreed = claims[focus] if focus not in mismatched else []
    sources = {c.source for c in agreed}
    if not findings and len(sources) >= 2:
        findings.append(Finding(
            code="sectors.level_mismatch", status=Status.PASS, source=_SOURCE,
            structure=anatomy.vertebrae[focus].roi_name,
            message=f"The level of the treated vertebra is agreed by {len(sources)} sources: "
                    f"{_listing(agreed)}."))
    if focus not in image:
        other = sources - {"image"}
        status = Status.WARN if len(other) >= 2 else Status.NOT_EVALUATED
        rests = (f"it rests on {', '.join(sorted(other))} only" if other
                 else "no source names it")
        findings.append(Finding(
            code="sectors.level_unverified", status=status, source=_SOURCE,
            structure=anatomy.vertebrae[focus].roi_name,
            message=f"The level of the treated vertebra could not be verified from the image: "
                    f"{image_why or 'it was not matched to the CT column'}. The level {rests}."))

    entries = []
    for e in sec.vertebrae:
        cs = claims[e.index] if e.index < n else []
        level, source = e.level, e.level_source
        img = image.get(e.index)
        if level is None and img is not None and "-" not in img.level:
            level, source = img.level, "image"
        entries.append(replace(e, level=level, level_source=source, level_sources=tuple(cs)))
    return replace(sec, vertebrae=tuple(entries), findings=(*sec.findings, *findings))

