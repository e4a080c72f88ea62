"""MR-CT fusion rule: the registered MR must line up with the CT at the treated vertebra
(residual shift and rotation within the thresholds of ``data/fusion.toml``).

When the case holds no MR, the rule is not applicable unless something shows that
structures came from another frame of reference (an ROI in another frame, or a spatial
registration to a frame whose images are missing): then it concerns the case and cannot
be checked, and reads not evaluated, never pass.

Evaluated in the check pipeline (:func:`fusion_findings`); ``check`` is None here.
"""

from __future__ import annotations

from typing import Any

from contourqa.findings import Finding, Status
from contourqa.fusion import (FusionError, FusionReading, FusionSettings, SeriesFusion,
                              measure_alignment, mr_to_ct_matrix, treated_box)
from contourqa.rules.context import deep_merge
from contourqa.rules.model import Rule, RuleOptions, rule_data

__all__ = ["FUSION_CODE", "FUSION_RULES", "compute_fusion", "fusion_findings"]

FUSION_CODE = "fusion.treated_level"

FUSION_RULES: tuple[Rule, ...] = (
    Rule(code=FUSION_CODE, name="MR-CT fusion at the treated vertebra",
         citation=str(rule_data("fusion")[FUSION_CODE]["source"]), severity=Status.WARN,
         rule_set="fusion", check=None),
)


def _params(options: RuleOptions) -> dict[str, Any]:
    return deep_merge(rule_data("fusion")[FUSION_CODE],
                      options.profile.params.get(FUSION_CODE, {}))


def _series_name(series: Any) -> str:
    return str(series.series_description or series.series_instance_uid or series.paths[0].name)


def compute_fusion(case: Any, roles: Any, *, level: str | None, options: RuleOptions
                   ) -> FusionReading:
    """Measure the MR-CT alignment at the treated vertebra of a loaded case.

    Parameters
    ----------
    case : Case
    roles : RoleTable
    level : str or None
        Treated level given by the user (``--level``).
    options : RuleOptions
        Profile overrides of the thresholds and measurement settings.
    """
    from contourqa.structures import Role

    p = _params(options)
    ct = case.image
    mrs = [s for s in case.secondary_images if s.modality == "MR"]
    ct_frame = ct.frame_of_reference_uid if ct is not None else case.frame_of_reference_uid
    ss = case.structure_set
    rois = {r.number: r for r in ss.rois if not r.is_empty} if ss is not None else {}
    # evidence of structures from another frame (the MR's) when no MR can be checked
    foreign = sorted({r.frame_of_reference_uid for r in rois.values()
                      if r.frame_of_reference_uid and r.frame_of_reference_uid != ct_frame})
    with_images = {s.frame_of_reference_uid for s in case.secondary_images}
    reg_frames = sorted({f for reg in case.registrations
                         for f in (reg.frame_of_reference_uid, *reg.linked_frames())
                         if f and f != ct_frame and f not in with_images})

    if not mrs:
        if foreign:
            names = [r.name for r in rois.values() if r.frame_of_reference_uid in foreign]
            linked = [f for f in foreign if f in reg_frames]
            why = ("a spatial registration links that frame to the CT, but no MR series of it "
                   "is in the folder" if linked else
                   "no MR series and no spatial registration linking that frame to the CT "
                   "are in the folder")
            return FusionReading(box=None, not_evaluated=(
                f"ROI(s) {', '.join(names)} are defined in frame of reference "
                f"{', '.join(foreign)}, not the CT's ({ct_frame}); {why}: the MR-CT fusion "
                "at the treated level could not be checked."))
        if reg_frames:
            files = ", ".join(reg.path.name for reg in case.registrations)
            return FusionReading(box=None, not_evaluated=(
                f"Spatial registration ({files}) links the CT to frame of reference "
                f"{', '.join(reg_frames)}, but no image series of that frame is in the folder "
                "(an MR the structures may have been drawn on): the fusion at the treated "
                "level could not be checked."))
        return FusionReading(box=None, not_applicable=(
            "No MR series in the case and every ROI is in the CT's frame of reference: no "
            "MR-CT fusion to check."))
    if ct is None or ct.modality != "CT":
        what = "no planning image" if ct is None else f"the planning image is {ct.modality}"
        if ct is not None and ct.modality == "MR":
            return FusionReading(box=None, not_applicable=(
                "The plan is on MR itself: no MR-CT fusion to check."))
        return FusionReading(box=None, not_evaluated=(
            f"{len(mrs)} MR series but {what}: the MR-CT fusion could not be checked."))

    def of(*wanted: Any) -> list[Any]:
        return [rois[a.roi_number] for role in wanted for a in roles.by_role(role)
                if a.roi_number in rois]

    vertebrae = [(a.level, rois[a.roi_number]) for a in roles.by_role(Role.VERTEBRA)
                 if a.roi_number in rois]
    box = treated_box(vertebrae=vertebrae, targets=of(Role.GTV, Role.CTV, Role.PTV),
                      level=level, box_margin_mm=float(p["box_margin_mm"]),
                      target_box_margin_mm=float(p["target_box_margin_mm"]))
    settings = FusionSettings.from_table(p)
    out = []
    for mr in mrs:
        name = _series_name(mr)
        link = mr_to_ct_matrix(case.registrations, ct_frame=ct_frame,
                               mr_frame=mr.frame_of_reference_uid)
        common = {"series": name, "series_instance_uid": mr.series_instance_uid,
                  "frame_of_reference_uid": mr.frame_of_reference_uid}
        if link is None:
            out.append(SeriesFusion(**common, registration=None, residual=None, reason=(
                "no spatial registration links its frame of reference to the CT's")))
            continue
        matrix, reg = link
        how = reg.path.name if reg is not None else "same frame of reference as the CT"
        if box is None:
            out.append(SeriesFusion(**common, registration=how, residual=None, reason=(
                "the treated level is unknown (no target ROI and no vertebra ROI of "
                "--level)")))
            continue
        try:
            residual = measure_alignment(ct=ct, mr=mr, mr_to_ct=matrix,
                                         box_lower_mm=box.lower_mm, box_upper_mm=box.upper_mm,
                                         settings=settings)
        except FusionError as exc:
            out.append(SeriesFusion(**common, registration=how, residual=None, reason=str(exc)))
            continue
        out.append(SeriesFusion(**common, registration=how, residual=residual))
    # a frame the structures or a REG point to whose images are missing: that image
    # could not be checked, whatever the MRs present show
    for frame in sorted((set(foreign) - with_images) | set(reg_frames)):
        names = [r.name for r in rois.values() if r.frame_of_reference_uid == frame]
        out.append(SeriesFusion(
            series=f"images of frame of reference {frame}", series_instance_uid=None,
            frame_of_reference_uid=frame, registration=None, residual=None, reason=(
                ("ROI(s) " + ", ".join(names) + " are defined in it" if names else
                 "a spatial registration links it to the CT")
                + ", but no image series of it is in the folder")))
    return FusionReading(box=box, series=tuple(out))


def fusion_findings(reading: FusionReading, *, options: RuleOptions) -> list[Finding]:
    """The findings of one fusion reading: one per MR series, or one saying why the
    rule does not concern the case or could not be made."""
    p = _params(options)
    src = FUSION_RULES[0].citation
    if reading.not_applicable is not None:
        return [Finding(code=FUSION_CODE, status=Status.NOT_APPLICABLE, source=src,
                        message=reading.not_applicable)]
    if reading.not_evaluated is not None:
        return [Finding(code=FUSION_CODE, status=Status.NOT_EVALUATED, source=src,
                        message=reading.not_evaluated)]
    max_shift = float(p["max_shift_mm"])
    max_rot = float(p["max_rotation_deg"])
    box = reading.box
    where = (f"at {box.level or box.roi_name} (box around {box.basis})" if box is not None
             else "at the treated level")
    structure = box.roi_name if box is not None else None
    out = []
    for s in reading.series:
        if s.series_instance_uid is None and s.residual is None:  # a frame without images
            head = s.series[0].upper() + s.series[1:]
        else:
            head = f"MR {s.series!r}" + (f" registered by {s.registration}"
                                          if s.registration else "")
        r = s.residual
        if r is None:
            out.append(Finding(code=FUSION_CODE, status=Status.NOT_EVALUATED, source=src,
                               structure=structure,
                               message=f"{head}: alignment {where} not measured: {s.reason}."))
            continue
        shift_over = r.shift_mm > max_shift
        rot_over = r.rotation_deg > max_rot
        dx, dy, dz = (float(v) for v in r.translation_mm)
        measured = (f"the MR's anatomy is shifted by {r.shift_mm:.2f} mm (x {dx:+.2f}, y "
                    f"{dy:+.2f}, z {dz:+.2f} mm, LPS) and rotated by {r.rotation_deg:.2f} deg "
                    f"against the CT (up to {r.max_displacement_mm:.2f} mm at the box corners)")
        limits = f"limits {max_shift:g} mm and {max_rot:g} deg"
        if shift_over or rot_over:
            over = ("the shift and the rotation exceed" if shift_over and rot_over else
                    "the shift exceeds" if shift_over else "the rotation exceeds")
            msg = (f"{head}: {where}, {measured}; {over} the {limits}: the "
                   "registration is off at the treated vertebra (even if it is good "
                   "elsewhere); contours drawn on this MR (cord, epidural disease) may be "
                   "displaced there. Re-register on this vertebra and review them.")
        else:
            msg = f"{head}: {where}, {measured}; within the {limits}."
        # the value shown is the quantity that decides: rotation only when it alone exceeds
        if rot_over and not shift_over:
            value, limit, unit = r.rotation_deg, max_rot, "deg"
        else:
            value, limit, unit = r.shift_mm, max_shift, "mm"
        out.append(Finding(code=FUSION_CODE,
                           status=Status.WARN if shift_over or rot_over else Status.PASS,
                           value=round(value, 3), limit=limit, unit=unit, source=src,
                           structure=structure, message=msg, files=()))
    return out
