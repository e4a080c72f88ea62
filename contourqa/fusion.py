"""MR-CT fusion at the treated level: the residual rigid misalignment between the CT and
the MR once the spatial registration (REG) is applied, measured in a box around the
treated vertebra.

A registration that is good over the whole spine can still be off at one vertebra (the
patient lay differently in the two scanners; the fusion was tuned on another level).
The cord is often drawn on that MR, so what matters is the alignment where the dose
is.  The measurement: the MR voxels whose registered position (REG matrix applied)
lies in the box are the fixed image, the CT the moving one (so a thick-slice MR is
never interpolated); a rigid (Euler) transform about the box centre is fitted by
maximising Mattes mutual information (different contrasts: bone is bright on CT and
dark on most MR sequences), starting from the best of a search along the spine
(vertebrae repeat, so a local fit alone can settle half a vertebra off).  The fitted
transform, expressed in CT space, is the residual: how far the registered MR's anatomy
sits from the CT's in the box.

Conventions: LPS mm; ``mr_to_ct`` is the 4x4 matrix with ``p_ct = mr_to_ct @ p_mr``
(homogeneous).  SimpleITK's point order is (x, y, z) like LPS; image arrays are
(slice, row, column) as everywhere in contourqa, converted by
:meth:`VolumeGeometry.to_sitk_parameters`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from contourqa.errors import ContourQAError
from contourqa.geometry import VolumeGeometry
from contourqa.io.images import ImageSeries
from contourqa.io.registration import Registration
from contourqa.io.rtstruct import ROI
from contourqa.structures.levels import parse_level

__all__ = ["FusionBox", "FusionError", "FusionReading", "FusionResidual", "FusionSettings",
           "SeriesFusion", "measure_alignment", "mr_to_ct_matrix", "treated_box"]


class FusionError(ContourQAError, ValueError):
    """The alignment cannot be measured (no overlap, box outside an image, optimiser
    failure); the message says why."""


@dataclass(frozen=True, kw_only=True)
class FusionSettings:
    """How the residual is measured (the rule's data table supplies these).

    Attributes
    ----------
    histogram_bins : int
        Mattes mutual information bins.
    smoothing_mm : float
        Gaussian sigma (mm) applied to both images before the fit (partial-volume and
        interpolation artefacts of the mutual information).
    shrink_factors : tuple of int
        Multi-resolution pyramid, coarse first (1 = full resolution in the box).
    max_iterations : int
        Per pyramid level.
    initial_step_mm : float
        The optimiser's first step (mm, rotations scaled by the physical shift they
        cause); it only shrinks from there.  Larger steps overshoot into far minima.
    min_step_mm : float
        The optimiser stops when its step falls below this (mm).
    min_mr_coverage : float
        Share (0-1) of the box the registered MR must cover.
    search_z_mm, search_step_mm : float
        Before the fit, the mutual information is evaluated at shifts along the CT's
        z axis (the spine's) within +/- ``search_z_mm`` every ``search_step_mm``; the
        fit starts from the best.  Vertebrae repeat along the spine, so a local fit
        from the REG alone can settle half a vertebra away from the truth (phantom: a
        10 mm shift along z read 0.3 mm).  0 switches the search off.
    """

    histogram_bins: int = 32
    smoothing_mm: float = 1.0
    shrink_factors: tuple[int, ...] = (2, 1)
    max_iterations: int = 200
    initial_step_mm: float = 0.25
    min_step_mm: float = 1e-3
    min_mr_coverage: float = 0.9
    search_z_mm: float = 12.0
    search_step_mm: float = 2.0

    @classmethod
    def from_table(cls, table: dict[str, Any]) -> "FusionSettings":
        """Build from a rule-data table (unknown keys ignored)."""
        return cls(histogram_bins=int(table.get("histogram_bins", 32)),
                   smoothing_mm=float(table.get("smoothing_mm", 1.0)),
                   shrink_factors=tuple(int(v) for v in table.get("shrink_factors", (2, 1))),
                   max_iterations=int(table.get("max_iterations", 200)),
                   initial_step_mm=float(table.get("initial_step_mm", 0.25)),
                   min_step_mm=float(table.get("min_step_mm", 1e-3)),
                   min_mr_coverage=float(table.get("min_mr_coverage", 0.9)),
                   search_z_mm=float(table.get("search_z_mm", 12.0)),
                   search_step_mm=float(table.get("search_step_mm", 2.0)))


@dataclass(frozen=True)
class FusionResidual:
    """The residual rigid transform of the registered MR against the CT in one box.

    The registered MR's anatomy sits at ``R (p - centre) + centre + translation`` where
    the CT's is at ``p``.

    Attributes
    ----------
    centre_mm : ndarray of shape (3,)
        Box centre (LPS mm), the rotation centre.
    translation_mm : ndarray of shape (3,)
        Displacement of the MR's anatomy at the centre (LPS mm).
    rotation_matrix : ndarray of shape (3, 3)
    rotation_deg : float
        Angle of the rotation (axis-angle magnitude, degrees).
    rotation_axis : ndarray of shape (3,)
        Unit axis (LPS); zeros when there is no rotation.
    max_displacement_mm : float
        Largest displacement over the box corners (translation and rotation together).
    box_lower_mm, box_upper_mm : ndarray of shape (3,)
        The measured box (LPS mm, CT voxel centres).
    mutual_information : float
        Final metric (Mattes, negative: lower is better).
    iterations : int
        Optimiser iterations of the last pyramid level.
    stop_reason : str
    """

    centre_mm: NDArray[np.float64]
    translation_mm: NDArray[np.float64]
    rotation_matrix: NDArray[np.float64]
    rotation_deg: float
    rotation_axis: NDArray[np.float64]
    max_displacement_mm: float
    box_lower_mm: NDArray[np.float64]
    box_upper_mm: NDArray[np.float64]
    mutual_information: float
    iterations: int
    stop_reason: str

    @property
    def shift_mm(self) -> float:
        """Length of the displacement at the box centre (mm)."""
        return float(np.linalg.norm(self.translation_mm))

    def to_json(self) -> dict[str, Any]:
        return {"shift_mm": round(self.shift_mm, 3),
                "translation_mm": [round(float(v), 3) for v in self.translation_mm],
                "rotation_deg": round(self.rotation_deg, 3),
                "rotation_axis": [round(float(v), 4) for v in self.rotation_axis],
                "max_displacement_mm": round(self.max_displacement_mm, 3),
                "centre_mm": [round(float(v), 2) for v in self.centre_mm],
                "box_lower_mm": [round(float(v), 2) for v in self.box_lower_mm],
                "box_upper_mm": [round(float(v), 2) for v in self.box_upper_mm],
                "mutual_information": round(self.mutual_information, 5),
                "iterations": self.iterations, "stop_reason": self.stop_reason}


def mr_to_ct_matrix(registrations: Sequence[Registration], *, ct_frame: str | None,
                    mr_frame: str | None) -> tuple[NDArray[np.float64], Registration | None] | None:
    """The matrix taking MR-frame points to CT-frame points, and the registration that
    gives it; ``None`` when no registration links the two frames.

    Each registration maps every listed source frame into its own frame
    (``p_reg = M_i @ p_i``, PS3.3 C.20.2.1.1); its own frame maps by identity.  Then
    ``p_ct = inv(M_ct) @ M_mr @ p_mr``.  The same frame needs no registration
    (identity, registration ``None``).
    """
    if ct_frame is None or mr_frame is None:
        return None
    if ct_frame == mr_frame:
        return np.eye(4), None
    for reg in registrations:
        to_reg: dict[str, NDArray[np.float64]] = {}
        if reg.frame_of_reference_uid:
            to_reg[reg.frame_of_reference_uid] = np.eye(4)
        for t in reg.transforms:
            to_reg.setdefault(t.source_frame_uid, np.asarray(t.matrix, dtype=np.float64))
        if ct_frame in to_reg and mr_frame in to_reg:
            return np.linalg.inv(to_reg[ct_frame]) @ to_reg[mr_frame], reg
    return None


def _sitk() -> Any:
    import SimpleITK as sitk

    return sitk


def _image(pixels: NDArray[Any], geometry: VolumeGeometry) -> Any:
    sitk = _sitk()
    img = sitk.GetImageFromArray(np.ascontiguousarray(pixels, dtype=np.float32))
    p = geometry.to_sitk_parameters()
    img.SetOrigin(p["origin"])
    img.SetSpacing(p["spacing"])
    img.SetDirection(p["direction"])
    return img


def _crop(series: ImageSeries, lower_mm: NDArray[np.float64], upper_mm: NDArray[np.float64],
          *, pad_mm: float) -> tuple[NDArray[Any], VolumeGeometry]:
    """The part of ``series`` holding the box ``[lower, upper]`` given in the series'
    own frame (any orientation: the eight corners are mapped), padded by ``pad_mm``."""
    g = series.geometry
    corners = np.array([[x, y, z] for x in (lower_mm[0], upper_mm[0])
                        for y in (lower_mm[1], upper_mm[1]) for z in (lower_mm[2], upper_mm[2])])
    idx = g.patient_to_index(corners)
    pad = pad_mm / g.spacing_mm[::-1]
    lo = np.maximum(np.floor(idx.min(axis=0) - pad).astype(int), 0)
    hi = np.minimum(np.ceil(idx.max(axis=0) + pad).astype(int), np.asarray(g.shape) - 1)
    if np.any(hi < lo):
        raise FusionError("the box lies outside the image.")
    sl = tuple(slice(int(a), int(b) + 1) for a, b in zip(lo, hi))
    origin = g.index_to_patient(lo.astype(np.float64))
    n_k, n_j, n_i = (int(b - a + 1) for a, b in zip(lo, hi))
    crop = VolumeGeometry(shape=(n_k, n_j, n_i), origin_mm=origin, spacing_mm=g.spacing_mm,
                          direction=g.direction)
    return np.asarray(series.pixels[sl]), crop


def _axis_angle(r: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
    angle = float(np.arccos(np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0)))
    axis = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    n = float(np.linalg.norm(axis))
    return float(np.degrees(angle)), (axis / n if n > 1e-12 else np.zeros(3))


def measure_alignment(*, ct: ImageSeries, mr: ImageSeries, mr_to_ct: NDArray[np.float64],
                      box_lower_mm: ArrayLike, box_upper_mm: ArrayLike,
                      settings: FusionSettings = FusionSettings()) -> FusionResidual:
    """Fit the residual rigid transform of the registered MR against the CT in a box.

    Parameters
    ----------
    ct : ImageSeries
        Planning CT (its frame is the reference).
    mr : ImageSeries
        MR series, in its own frame.
    mr_to_ct : ndarray of shape (4, 4)
        ``p_ct = mr_to_ct @ p_mr`` (from :func:`mr_to_ct_matrix`).
    box_lower_mm, box_upper_mm : array_like of shape (3,)
        Opposite corners of the box in CT LPS mm (axis-aligned in patient space).
    settings : FusionSettings

    Returns
    -------
    FusionResidual

    Raises
    ------
    FusionError
        The box lies outside the CT, the registered MR covers less than
        ``settings.min_mr_coverage`` of it, or the fit failed, did not converge or
        ended with a worse mutual information than the REG as given (it measured
        nothing: the caller reports not evaluated, never a pass).
    """
    sitk = _sitk()
    m = np.asarray(mr_to_ct, dtype=np.float64)
    if m.shape != (4, 4) or not np.all(np.isfinite(m)):
        raise FusionError('Argument "mr_to_ct" must be a finite 4x4 matrix.')
    lower = np.minimum(np.asarray(box_lower_mm, float), np.asarray(box_upper_mm, float))
    upper = np.maximum(np.asarray(box_lower_mm, float), np.asarray(box_upper_mm, float))
    _, box_geom = _crop(ct, lower, upper, pad_mm=0.0)
    if min(box_geom.shape) < 4:
        raise FusionError(f"the box covers only {box_geom.shape} CT voxels.")
    # coverage: the box's voxel centres (subsampled) mapped into the MR
    kk, jj, ii = (np.linspace(0, n - 1, min(n, 12)) for n in box_geom.shape)
    grid = np.stack(np.meshgrid(kk, jj, ii, indexing="ij"), axis=-1).reshape(-1, 3)
    pts_ct = box_geom.index_to_patient(grid)
    ct_to_mr = np.linalg.inv(m)
    pts_mr = pts_ct @ ct_to_mr[:3, :3].T + ct_to_mr[:3, 3]
    coverage = float(mr.geometry.contains(pts_mr, tol_voxels=0.5).mean())
    if coverage < settings.min_mr_coverage:
        raise FusionError(f"the registered MR covers {coverage:.0%} of the box around the "
                          f"treated level (at least {settings.min_mr_coverage:.0%} needed).")
    # The MR is the fixed image (its voxels inside the box, by a mask) and the CT the
    # moving one: interpolating the finer CT keeps the metric smooth when the MR has
    # thick slices (3-5 mm), where interpolating the MR put a kink at every slice.
    fixed_px, fixed_geom = _crop(mr, pts_mr.min(axis=0), pts_mr.max(axis=0), pad_mm=0.0)
    kji = np.stack(np.meshgrid(*(np.arange(n) for n in fixed_geom.shape), indexing="ij"),
                   axis=-1).reshape(-1, 3)
    at_ct = fixed_geom.index_to_patient(kji.astype(np.float64)) @ m[:3, :3].T + m[:3, 3]
    in_box = np.all((at_ct >= lower) & (at_ct <= upper), axis=1).reshape(fixed_geom.shape)
    if int(in_box.sum()) < 64:
        raise FusionError(f"only {int(in_box.sum())} MR voxels lie in the box.")
    moving_px, moving_geom = _crop(ct, lower, upper, pad_mm=15.0)

    fixed = _image(fixed_px, fixed_geom)
    moving = _image(moving_px, moving_geom)
    mask = sitk.GetImageFromArray(in_box.astype(np.uint8))
    mask.CopyInformation(fixed)
    if settings.smoothing_mm > 0:
        fixed = sitk.SmoothingRecursiveGaussian(fixed, settings.smoothing_mm)
        moving = sitk.SmoothingRecursiveGaussian(moving, settings.smoothing_mm)
    centre = (lower + upper) / 2.0
    centre_mr = ct_to_mr[:3, :3] @ centre + ct_to_mr[:3, 3]
    # The REG matrix (MR -> CT) as an affine centred on the box centre in the MR frame
    # (y -> A (y - c) + c + t' with t' = b - c + A c is y -> A y + b).  SimpleITK 2.5
    # gives the optimised transform the moving initial transform's centre (fixed
    # parameters); with both centred on the box the rotation is about the box, as
    # intended, and the final transform is read with its own centre below.
    a_mat, b_vec = m[:3, :3], m[:3, 3]
    c3 = tuple(float(v) for v in centre_mr)
    initial = sitk.AffineTransform(3)
    initial.SetCenter(c3)
    initial.SetMatrix(tuple(float(v) for v in a_mat.ravel()))
    initial.SetTranslation(tuple(float(v) for v in b_vec - centre_mr + a_mat @ centre_mr))

    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=settings.histogram_bins)
    reg.SetMetricSamplingStrategy(reg.NONE)  # every voxel: deterministic, the box is small
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(
        learningRate=settings.initial_step_mm, minStep=settings.min_step_mm,
        numberOfIterations=settings.max_iterations, relaxationFactor=0.5,
        gradientMagnitudeTolerance=1e-8)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel(list(settings.shrink_factors))
    reg.SetSmoothingSigmasPerLevel([0.0] * len(settings.shrink_factors))
    reg.SetMetricFixedMask(mask)
    reg.SetMovingInitialTransform(initial)
    reg.SetNumberOfThreads(1)  # the sum over voxels in one order: the same answer every run
    # a shift d along the CT's z is S y = y + A^-1 d (A: the REG's rotation)
    along = np.linalg.solve(a_mat, np.array([0.0, 0.0, 1.0]))
    as_given = sitk.Euler3DTransform()
    as_given.SetCenter(c3)
    reg.SetInitialTransform(as_given, inPlace=False)
    try:
        start = float(reg.MetricEvaluate(fixed, moving))  # the REG as given
        best_dz = 0.0
        if settings.search_z_mm > 0 and settings.search_step_mm > 0:
            # on a regular tenth of the voxels (the same ones each time): a coarse look
            search = sitk.ImageRegistrationMethod()
            search.SetMetricAsMattesMutualInformation(
                numberOfHistogramBins=settings.histogram_bins)
            search.SetMetricSamplingStrategy(search.REGULAR)
            search.SetMetricSamplingPercentage(0.1, 1)
            search.SetInterpolator(sitk.sitkLinear)
            search.SetMetricFixedMask(mask)
            search.SetMovingInitialTransform(initial)
            search.SetNumberOfThreads(1)
            best = np.inf
            n = int(np.floor(settings.search_z_mm / settings.search_step_mm))
            steps = sorted(range(-n, n + 1), key=lambda k: (abs(k), k))  # ties: the smaller
            for dz in np.asarray(steps, dtype=np.float64) * settings.search_step_mm:
                trial = sitk.Euler3DTransform()
                trial.SetCenter(c3)
                trial.SetTranslation(tuple(float(v) for v in dz * along))
                search.SetInitialTransform(trial, inPlace=False)
                value = float(search.MetricEvaluate(fixed, moving))
                if value < best - 1e-9:
                    best, best_dz = value, float(dz)
        # from the search's best; if that fit fails, from the REG as given
        problem = ""
        for dz in dict.fromkeys((best_dz, 0.0)):
            # SimpleITK transforms are copy-on-write: a fresh one per start, handed over
            euler = sitk.Euler3DTransform()
            euler.SetCenter(c3)
            euler.SetTranslation(tuple(float(v) for v in dz * along))
            reg.SetInitialTransform(euler, inPlace=True)
            reg.Execute(fixed, moving)
            iterations = int(reg.GetOptimizerIteration())
            final = float(reg.MetricEvaluate(fixed, moving))  # at the fit, full resolution
            # a fit that did not settle, or ended worse than the REG, measured nothing
            if iterations >= settings.max_iterations:
                problem = f"the fit did not converge in {settings.max_iterations} iterations."
            elif final > start + 1e-3 * abs(start):
                problem = (f"the fit ended with a worse mutual information ({final:.4f}) "
                           f"than the registration as given ({start:.4f}).")
            else:
                problem = ""
                break
    except RuntimeError as exc:
        raise FusionError(f"the registration failed: {str(exc).strip().splitlines()[-1]}") \
            from exc
    if problem:
        raise FusionError(problem)
    # the fit S maps MR points to where the REG should have sent them: CT(M S y) = MR(y);
    # the MR's anatomy sits, in CT space, at D(p) = M S^-1 M^-1 p where the CT's is at p
    r_s = np.asarray(euler.GetMatrix(), dtype=np.float64).reshape(3, 3)
    about = np.asarray(euler.GetCenter(), dtype=np.float64)
    s4 = np.eye(4)
    s4[:3, :3] = r_s
    s4[:3, 3] = about + np.asarray(euler.GetTranslation(), float) - r_s @ about
    d4 = m @ np.linalg.inv(s4) @ ct_to_mr
    rot = d4[:3, :3]
    t = rot @ centre + d4[:3, 3] - centre
    angle, axis = _axis_angle(rot)
    corners = np.array([[x, y, z] for x in (lower[0], upper[0]) for y in (lower[1], upper[1])
                        for z in (lower[2], upper[2])])
    moved = corners @ rot.T + d4[:3, 3]
    return FusionResidual(
        centre_mm=centre, translation_mm=t, rotation_matrix=rot, rotation_deg=angle,
        rotation_axis=axis,
        max_displacement_mm=float(np.linalg.norm(moved - corners, axis=1).max()),
        box_lower_mm=lower, box_upper_mm=upper,
        mutual_information=final, iterations=iterations,
        stop_reason=str(reg.GetOptimizerStopConditionDescription()))


@dataclass(frozen=True)
class FusionBox:
    """The box the alignment is measured in (CT LPS mm).

    Attributes
    ----------
    lower_mm, upper_mm : ndarray of shape (3,)
    level : str or None
        Treated vertebral level (``"T10"``), when a vertebra ROI gave the box.
    roi_name : str
        The vertebra ROI, or the target ROI when no vertebra ROI holds the target.
    basis : str
        How the box was chosen (for the message).
    """

    lower_mm: NDArray[np.float64]
    upper_mm: NDArray[np.float64]
    level: str | None
    roi_name: str
    basis: str

    def to_json(self) -> dict[str, Any]:
        return {"level": self.level, "roi": self.roi_name, "basis": self.basis,
                "lower_mm": [round(float(v), 2) for v in self.lower_mm],
                "upper_mm": [round(float(v), 2) for v in self.upper_mm]}


def _bounds(roi: ROI) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    pts = np.concatenate([c.points_mm for c in roi.closed_contours])
    return pts.min(axis=0), pts.max(axis=0)


def _same_level(a: str | None, b: str) -> bool:
    if a is None:
        return False
    try:
        return parse_level(a) == parse_level(b)
    except ValueError:
        return False


def treated_box(*, vertebrae: Sequence[tuple[str | None, ROI]], targets: Sequence[ROI],
                level: str | None, box_margin_mm: float, target_box_margin_mm: float
                ) -> FusionBox | None:
    """The box around the treated vertebra.

    The vertebra ROI of ``level`` when given; else the vertebra ROI whose z range
    overlaps the first target's most; its bounding box plus ``box_margin_mm``.
    Without such a vertebra ROI, the first target's bounding box plus
    ``target_box_margin_mm`` (bone around the target).  None when neither exists.

    Parameters
    ----------
    vertebrae : sequence of (level or None, ROI)
        Vertebra ROIs (non-empty).
    targets : sequence of ROI
        Target ROIs, most specific first (GTV, CTV, PTV); non-empty ROIs.
    level : str or None
        Treated level given by the user (``--level``).
    box_margin_mm, target_box_margin_mm : float
    """
    chosen: tuple[str | None, ROI] | None = None
    if level is not None:
        chosen = next(((lv, r) for lv, r in vertebrae if _same_level(lv, level)), None)
    target = targets[0] if targets else None
    if chosen is None and target is not None and vertebrae:
        t_lo, t_hi = _bounds(target)

        def overlap(item: tuple[str | None, ROI]) -> float:
            v_lo, v_hi = _bounds(item[1])
            return float(min(v_hi[2], t_hi[2]) - max(v_lo[2], t_lo[2]))

        best = max(vertebrae, key=overlap)
        if overlap(best) > 0:
            chosen = best
    if chosen is not None:
        lo, hi = _bounds(chosen[1])
        how = ("the vertebra of --level" if level is not None and _same_level(chosen[0], level)
               else f"the vertebra holding most of {target.name}" if target is not None
               else "the vertebra")
        return FusionBox(lower_mm=lo - box_margin_mm, upper_mm=hi + box_margin_mm,
                         level=chosen[0], roi_name=chosen[1].name,
                         basis=f"{chosen[1].name} ({how}) + {box_margin_mm:g} mm")
    if target is None:
        return None
    lo, hi = _bounds(target)
    return FusionBox(lower_mm=lo - target_box_margin_mm, upper_mm=hi + target_box_margin_mm,
                     level=None, roi_name=target.name,
                     basis=f"{target.name} + {target_box_margin_mm:g} mm (no vertebra ROI "
                           "holds the target)")


@dataclass(frozen=True)
class SeriesFusion:
    """The alignment of one MR series at the treated level.

    ``residual`` is None when it could not be measured; ``reason`` says why.
    """

    series: str
    series_instance_uid: str | None
    frame_of_reference_uid: str | None
    registration: str | None
    residual: FusionResidual | None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"series": self.series, "series_instance_uid": self.series_instance_uid,
                "frame_of_reference_uid": self.frame_of_reference_uid,
                "registration": self.registration,
                "residual": self.residual.to_json() if self.residual is not None else None,
                "reason": self.reason}


@dataclass(frozen=True)
class FusionReading:
    """MR-CT fusion at the treated level for one case.

    Attributes
    ----------
    box : FusionBox or None
    series : tuple of SeriesFusion
        One per MR series of the case (empty without MR).
    not_applicable : str or None
        Why the check does not concern the case (no MR, nothing from another frame).
    not_evaluated : str or None
        Why the check concerns the case but cannot be made (structures in another
        frame with no registration or no image).
    """

    box: FusionBox | None
    series: tuple[SeriesFusion, ...] = ()
    not_applicable: str | None = None
    not_evaluated: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"box": self.box.to_json() if self.box is not None else None,
                "series": [s.to_json() for s in self.series],
                "not_applicable": self.not_applicable, "not_evaluated": self.not_evaluated}
