"""Pre-SBRT imaging requirements (KB 0.3, 7): CT slice spacing, MR sequences, registration.

The CT slice spacing is the distance between slice positions along the slice normal
(from ImagePositionPatient, as the image reader sorts them), never SliceThickness or
SpacingBetweenSlices alone.  MR series are classified from DICOM attributes: the
weighting from SeriesDescription keywords (and ScanningSequence IR for STIR), the
plane from ImageOrientationPatient, contrast from ContrastBolusAgent or keywords.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from contourqa.constraints.library import load_rules
from contourqa.constraints.model import Comparison
from contourqa.dose_checks._context import DoseContext, fmt, not_evaluated
from contourqa.errors import ContourQAError
from contourqa.findings import Finding, Status
from contourqa.io._read import read_dataset
from contourqa.io.images import ImageSeries

__all__ = ["MRSequence", "classify_mr", "evaluate_imaging"]

_PLANES = ("sagittal", "coronal", "axial")  # dominant axis of the slice normal: x, y, z


@dataclass(frozen=True)
class MRSequence:
    """What an MR series is, as far as its DICOM attributes say.

    ``weighting`` is ``"T1"``, ``"T2"``, ``"STIR"`` or ``None`` (not recognised).
    """

    plane: str | None
    weighting: str | None
    contrast: bool
    description: str

    @property
    def label(self) -> str | None:
        if self.plane is None or self.weighting is None:
            return None
        return f"{self.plane} {self.weighting}{'+C' if self.contrast else ''}"


def _tokens(text: str) -> list[str]:
    return [t for t in re.split(r"[^a-z0-9+]+", text.lower()) if t]


def _has(text: str, words: list[str]) -> bool:
    low = text.lower()
    toks = _tokens(text)
    return any((w in toks) if w.isalnum() else (w in low) for w in words)


def classify_mr(*, series_description: str | None, scanning_sequence: object,
                contrast_agent: str | None, orientation: object) -> MRSequence:
    """Classify one MR series from its attributes (see the module docstring).

    Parameters
    ----------
    series_description : str or None
        SeriesDescription (0008,103E).
    scanning_sequence : str, list of str or None
        ScanningSequence (0018,0020), e.g. ``["IR", "SE"]``.
    contrast_agent : str or None
        ContrastBolusAgent (0018,0010).
    orientation : sequence of 6 float or None
        ImageOrientationPatient (0020,0037).
    """
    kw = load_rules("imaging")["mr_keywords"]
    desc = series_description or ""
    seq = [str(s).upper() for s in (scanning_sequence if isinstance(scanning_sequence,
                                    (list, tuple)) else [scanning_sequence] if scanning_sequence
                                    else [])]
    toks = _tokens(desc)
    weighting = None
    if _has(desc, kw["stir"]) or ("IR" in seq and not any(t.startswith("t1") for t in toks)
                                  and "flair" not in toks):
        weighting = "STIR"
    elif any(t.startswith("t2") for t in toks):
        weighting = "T2"
    elif any(t.startswith("t1") for t in toks):
        weighting = "T1"
    contrast = bool(contrast_agent and str(contrast_agent).strip()) or _has(desc, kw["contrast"])
    plane = None
    if orientation is not None:
        try:
            o = np.asarray([float(v) for v in orientation],  # type: ignore[attr-defined]
                           dtype=np.float64)
            if o.size == 6:
                normal = np.cross(o[:3], o[3:])
                plane = _PLANES[int(np.argmax(np.abs(normal)))]
        except (TypeError, ValueError):
            plane = None
    return MRSequence(plane=plane, weighting=weighting, contrast=contrast, description=desc)


def _mr_of(series: ImageSeries) -> MRSequence:
    ds = read_dataset(series.paths[0], stop_before_pixels=True)
    return classify_mr(series_description=ds.get("SeriesDescription", None),
                       scanning_sequence=ds.get("ScanningSequence", None),
                       contrast_agent=ds.get("ContrastBolusAgent", None),
                       orientation=ds.get("ImageOrientationPatient", None))


def _ct(ctx: DoseContext) -> list[Finding]:
    rule = load_rules("imaging")["ct_slice_spacing"]
    source = f"{rule['source']} ({rule['status']})"
    image = ctx.case.image
    if image is None:
        return [not_evaluated("imaging.ct_slice_spacing", "No planning image series: slice "
                              "spacing not evaluated.", source=source)]
    if image.modality != "CT":
        return [not_evaluated("imaging.ct_slice_spacing", f"The planning series is "
                              f"{image.modality}, not CT: not evaluated.", source=source)]
    steps = np.diff(np.sort(np.asarray(image.slice_positions_mm, dtype=float)))
    worst = float(steps.max()) if steps.size else float(image.slice_spacing_mm)
    limit = float(rule["max_mm"])
    preferred = float(rule["preferred_mm"])
    cmp = Comparison(rule["comparison"])
    ok = cmp.holds(worst, limit)
    thick = image.slice_thickness_mm
    px = image.geometry.spacing_mm[:2]
    parts = [(f"CT slice spacing {fmt(image.slice_spacing_mm, 'mm')} (median of positions; "
             f"largest step {fmt(worst, 'mm')}), required {cmp.value} {limit:g} mm, "
             f"{preferred:g} mm preferred: {'met' if ok else 'not met'}.")]
    if ok and worst > preferred:
        parts.append(f"Coarser than the preferred {preferred:g} mm.")
    parts.append(f"SliceThickness {fmt(thick, 'mm') if thick else 'absent'}; pixel spacing "
                 f"{fmt(float(px[1]), 'mm')} x {fmt(float(px[0]), 'mm')}.")
    status = Status.PASS if ok else Status.FAIL
    out = [Finding(code="imaging.ct_slice_spacing", status=status, value=worst, limit=limit,
                   unit="mm", message=" ".join(parts), source=source,
                   files=(image.paths[0],))]
    if ok and thick is not None and not cmp.holds(float(thick), limit):
        out.append(Finding(
            code="imaging.ct_slice_thickness", status=Status.WARN, value=float(thick),
            limit=limit, unit="mm", source=source, files=(image.paths[0],),
            message=(f"SliceThickness {fmt(thick, 'mm')} does not meet {cmp.value} {limit:g} mm "
                     f"although the slices are {fmt(worst, 'mm')} apart (overlapping "
                     "reconstruction): the guideline speaks of thickness.")))
    return out


def _registered(ctx: DoseContext, series: ImageSeries) -> tuple[bool, str]:
    ct = ctx.case.image
    ct_frame = ct.frame_of_reference_uid if ct else ctx.case.frame_of_reference_uid
    mr_frame = series.frame_of_reference_uid
    if ct_frame is None or mr_frame is None:
        return False, "frame of reference unknown"
    if ct_frame == mr_frame:
        return True, "same frame of reference as the CT"
    for reg in ctx.case.registrations:
        frames = {reg.frame_of_reference_uid, *reg.linked_frames()}
        if ct_frame in frames and mr_frame in frames:
            return True, f"spatial registration {reg.path.name}"
    return False, "no spatial registration links it to the CT"


def _mr(ctx: DoseContext) -> list[Finding]:
    rule = load_rules("imaging")["mr_sequences"]
    source = f"{rule['source']} ({rule['status']})"
    mrs = [s for s in ctx.case.secondary_images if s.modality == "MR"]
    if not mrs:
        # a warning to confirm, not "incomplete": the case as sent holds no MR, so either
        # the target was drawn on CT alone or the MR was not exported with the plan
        return [Finding(code="imaging.mr_sequences", status=Status.WARN, message=(
            "No MR series in the case: confirm that the target and cord were delineated on "
            f"MRI (recommended sequences: {', '.join(rule['required'])}); the sequences and "
            "their registration could not be checked."), source=source)]
    found: dict[str, list[str]] = {}
    out: list[Finding] = []
    for s in mrs:
        try:
            seq = _mr_of(s)
        except ContourQAError as exc:
            seq = MRSequence(None, None, False, f"unreadable header: {exc}")
        name = s.series_description or seq.description or (s.series_instance_uid or "MR")
        if seq.label:
            found.setdefault(seq.label, []).append(name)
        ok, how = _registered(ctx, s)
        out.append(Finding(
            code="imaging.mr_registration", status=Status.PASS if ok else Status.WARN,
            structure=None, source="DICOM PS3.3 C.20 (Spatial Registration)",
            files=(s.paths[0],),
            message=(f"MR series {name!r} ({seq.label or 'sequence not recognised'}): "
                     f"{'registered to the CT' if ok else 'not registered to the CT'} ({how}).")))
    wanted = [str(w) for w in rule["required"]]
    missing = [w for w in wanted if w not in found]
    present = "; ".join(f"{k}: {', '.join(v)}" for k, v in found.items()) or "none recognised"
    status = Status.PASS if not missing else Status.WARN
    out.insert(0, Finding(
        code="imaging.mr_sequences", status=status, source=source,
        value=float(len(wanted) - len(missing)), limit=float(len(wanted)), unit="sequences",
        message=(f"Recommended MR sequences found {len(wanted) - len(missing)}/{len(wanted)} "
                 f"({present})" + (f"; missing: {', '.join(missing)}." if missing else ".")),
    ))
    return out


def evaluate_imaging(ctx: DoseContext) -> list[Finding]:
    """CT slice spacing, MR sequences and MR registration findings."""
    return _ct(ctx) + _mr(ctx)
