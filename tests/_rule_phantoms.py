"""Spine phantoms for the contouring-rule tests, with planted errors the generator lacks.

Planted errors edit the generated RTSTRUCT with pydicom (or, for hardware, the loaded
CT in memory); each is documented with the truth it changes.  Helper module: import
it by plain name (``from _rule_phantoms import ...``).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pydicom

from contourqa.case import Case, load_case
from contourqa.io.discovery import discover
from test_data.phantom import PRESETS, generate_case

REPO = Path(__file__).resolve().parents[1]
DEMO_DIR = REPO / "test_data" / "demo_case" / "dicom"


def _roi_contours(ds: pydicom.Dataset, name: str) -> pydicom.Sequence:
    number = next(r.ROINumber for r in ds.StructureSetROISequence if r.ROIName == name)
    return next(c for c in ds.ROIContourSequence
                if c.ReferencedROINumber == number).ContourSequence


def _points(item: pydicom.Dataset) -> np.ndarray:
    return np.asarray(item.ContourData, dtype=float).reshape(-1, 3)


def _set_points(item: pydicom.Dataset, pts: np.ndarray) -> None:
    item.ContourData = [f"{v:.3f}" for v in pts.ravel()]
    item.NumberOfContourPoints = len(pts)


def plant_gtv_outside_ctv(ds: pydicom.Dataset) -> None:
    """GTV moved 8 mm anterior: about half of it leaves the vertebral body and the CTV."""
    for item in _roi_contours(ds, "GTV"):
        p = _points(item)
        p[:, 1] -= 8.0
        _set_points(item, p)


def plant_missing_plane(ds: pydicom.Dataset) -> None:
    """One plane removed from the middle of VB_T11 (a vertebra no target touches)."""
    seq = _roi_contours(ds, "VB_T11")
    zs = sorted({round(float(_points(c)[0, 2]), 3) for c in seq})
    z_mid = zs[len(zs) // 2]
    keep = [c for c in seq if round(float(_points(c)[0, 2]), 3) != z_mid]
    seq.clear()
    seq.extend(keep)


def plant_stray_island(ds: pydicom.Dataset) -> None:
    """A 3 x 3 mm square added to SpinalCord on one plane, 30 mm lateral in soft tissue."""
    seq = _roi_contours(ds, "SpinalCord")
    z = float(_points(seq[len(seq) // 2])[0, 2])
    item = copy_item(seq[len(seq) // 2])
    sq = np.array([[30, 40, z], [33, 40, z], [33, 43, z], [30, 43, z]], dtype=float)
    _set_points(item, sq)
    seq.append(item)


def plant_self_crossing(ds: pydicom.Dataset) -> None:
    """Two neighbouring vertices of one BODY polygon swapped: a small bow-tie."""
    item = _roi_contours(ds, "BODY")[10]
    p = _points(item)
    p[[5, 6]] = p[[6, 5]]
    _set_points(item, p)


def plant_nonuniform_prv(ds: pydicom.Dataset) -> None:
    """The cord PRV shifted 1 mm to the patient's left: margin 1 mm right, 3 mm left."""
    for item in _roi_contours(ds, "SpinalCord_PRV02"):
        p = _points(item)
        p[:, 0] += 1.0
        _set_points(item, p)


def plant_target_off_spine(ds: pydicom.Dataset) -> None:
    """GTV, CTV and PTV moved 45 mm to the patient's left, into soft tissue (a lung or
    chest-wall target beside the spine): the body ellipse's semi-axis is 72 mm and the
    PTV reaches 17 + 2 mm from its centre, so the whole target stays in the body, and
    the nearest bone (the left transverse process, x <= 28 mm) is more than 5 mm away
    from the GTV.  No vertebra is involved: the spine rules do not apply."""
    for name in ("GTV", "CTV", "PTV"):
        for item in _roi_contours(ds, name):
            p = _points(item)
            p[:, 0] += 45.0
            _set_points(item, p)


def plant_second_target(ds: pydicom.Dataset, *, ptv_shift_mm: float) -> None:
    """A second target one level down (T11, 24 mm inferior: 18 mm body + 6 mm disc):
    ``GTV_2``, ``CTV_2`` and ``PTV_2``, copies of GTV, CTV and PTV moved by -24 mm in z
    (16 CT slices of 1.5 mm), with ``PTV_2`` also moved ``ptv_shift_mm`` to the
    patient's left.  The phantom's PTV is the CTV expanded by 2 mm, so a 4 mm shift
    leaves a crescent of CTV_2 up to 2 mm outside PTV_2 on the right (cut back only
    where the cord is) and makes the margin 0-6 mm instead of a uniform 2 mm."""
    dz = -24.0
    for name, kind, dx in (("GTV", "GTV", 0.0), ("CTV", "CTV", 0.0), ("PTV", "PTV", ptv_shift_mm)):
        planes: dict[float, list[np.ndarray]] = {}
        for z, items in _planes(ds, name).items():
            planes[round(z + dz, 3)] = [_points(c) + [dx, 0.0, 0.0] for c in items]
        add_gtv_roi(ds, f"{name}_2", planes, interpreted_type=kind)


def _vb_t11_item(ds: pydicom.Dataset) -> pydicom.Dataset:
    """The middle contour of VB_T11 (a vertebra no target touches)."""
    seq = _roi_contours(ds, "VB_T11")
    return seq[len(seq) // 2]


def plant_open_contour(ds: pydicom.Dataset) -> None:
    """One VB_T11 polygon marked OPEN_PLANAR (its points unchanged)."""
    _vb_t11_item(ds).ContourGeometricType = "OPEN_PLANAR"


def plant_duplicate_polygon(ds: pydicom.Dataset) -> None:
    """One VB_T11 polygon written twice on its plane (even-odd: it cancels itself)."""
    seq = _roi_contours(ds, "VB_T11")
    seq.append(copy_item(_vb_t11_item(ds)))


def plant_off_slice(ds: pydicom.Dataset) -> None:
    """One VB_T11 polygon moved 0.5 mm up, between two 1.5 mm CT slices."""
    item = _vb_t11_item(ds)
    p = _points(item)
    p[:, 2] += 0.5
    _set_points(item, p)


def _square(ds: pydicom.Dataset, name: str, x_mm: float, *, kind: str = "ORGAN") -> None:
    """A new ROI ``name``: a 6 x 6 mm square centred at (``x_mm``, 0) on the five middle
    planes of the BODY contour (0.18 cc at 1.5 mm planes)."""
    planes = list(_planes(ds, "BODY"))
    mid = len(planes) // 2
    sq = np.array([[-3, -3, 0], [3, -3, 0], [3, 3, 0], [-3, 3, 0]], dtype=float) + [x_mm, 0, 0]
    add_gtv_roi(ds, name, {z: [sq] for z in planes[mid - 2:mid + 3]}, interpreted_type=kind)


def plant_outside_body(ds: pydicom.Dataset) -> None:
    """``Esophagus``: a 6 mm square 76 mm left of the axis: outside the BODY ellipse
    (semi-axis 72 mm) but inside the CT (160 x 1 mm pixels: +/- 80 mm)."""
    _square(ds, "Esophagus", 76.0)


def plant_off_ct(ds: pydicom.Dataset) -> None:
    """``Esophagus``: a 6 mm square 100 mm left of the axis, off the CT's 160 mm."""
    _square(ds, "Esophagus", 100.0)


def plant_nonstandard_name(ds: pydicom.Dataset) -> None:
    """A small soft-tissue ROI named ``my contour 1`` (no TG-263 name or variant)."""
    _square(ds, "my contour 1", 45.0)


def _empty_roi(ds: pydicom.Dataset, name: str) -> None:
    add_gtv_roi(ds, name, {}, interpreted_type="ORGAN")


def plant_empty_organ(ds: pydicom.Dataset) -> None:
    """An ``Esophagus`` ROI without contours (not a target or the cord: a warning)."""
    _empty_roi(ds, "Esophagus")


def plant_empty_cord_prv(ds: pydicom.Dataset) -> None:
    """A ``SpinalCord_PRV05`` ROI without contours (a cord PRV: a failure)."""
    _empty_roi(ds, "SpinalCord_PRV05")


def plant_oar_at_cutback(ds: pydicom.Dataset) -> None:
    """The shifted second target (:func:`plant_second_target`, PTV_2 4 mm left) with an
    ``Esophagus`` ROI where PTV_2 leaves CTV_2 uncovered: a rectangle x -26..-14.8 mm,
    y -24..14 mm, on CTV_2's planes.  CTV_2 (the body ellipse, semi-axes 17 x 13 mm
    about (0, -5)) reaches x = -17 mm and PTV_2 only about -15 mm, so every uncovered
    voxel of the crescent (centres at x -16.5..-14.5 on the 1 mm grid) lies within 1 mm
    of the rectangle's voxels: a cut-back at a critical OAR, allowed and reported
    apart; the margin on the left (6 mm) still makes PTV_2 non-uniform."""
    plant_second_target(ds, ptv_shift_mm=4.0)
    rect = np.array([[-26, -24, 0], [-14.8, -24, 0], [-14.8, 14, 0], [-26, 14, 0]], dtype=float)
    add_gtv_roi(ds, "Esophagus", {z: [rect] for z in _planes(ds, "CTV_2")},
                interpreted_type="ORGAN")


def copy_item(item: pydicom.Dataset) -> pydicom.Dataset:
    return copy.deepcopy(item)


# ----------------------------------------------------------------- post-operative plants

def _z(item: pydicom.Dataset) -> float:
    return round(float(_points(item)[0, 2]), 3)


def _planes(ds: pydicom.Dataset, name: str) -> dict[float, list[pydicom.Dataset]]:
    """The ROI's contour items by plane z (mm, rounded to the file's 3 decimals)."""
    out: dict[float, list[pydicom.Dataset]] = {}
    for item in _roi_contours(ds, name):
        out.setdefault(_z(item), []).append(item)
    return dict(sorted(out.items()))


def _contour_item(body_item: pydicom.Dataset, pts: np.ndarray) -> pydicom.Dataset:
    """A CLOSED_PLANAR contour of ``pts`` referencing the CT slice of ``body_item``."""
    item = pydicom.Dataset()
    item.ContourImageSequence = copy.deepcopy(body_item.ContourImageSequence)
    item.ContourGeometricType = "CLOSED_PLANAR"
    _set_points(item, pts)
    return item


def _with_z(pts: np.ndarray, z: float) -> np.ndarray:
    out = np.array(pts, copy=True)
    out[:, 2] = z
    return out


def add_gtv_roi(ds: pydicom.Dataset, name: str, planes: dict[float, list[np.ndarray]], *,
                interpreted_type: str = "GTV") -> None:
    """Add a GTV ROI with ``planes`` (z -> polygons, each (N, 3) LPS mm) to the structure set.

    One item each in StructureSetROISequence, ROIContourSequence and
    RTROIObservationsSequence; every contour references the CT slice at its z (taken
    from the BODY contour there, which the phantom writes on every CT slice).
    """
    body = {z: items[0] for z, items in _planes(ds, "BODY").items()}
    number = max(int(r.ROINumber) for r in ds.StructureSetROISequence) + 1
    roi = pydicom.Dataset()
    roi.ROINumber = number
    roi.ReferencedFrameOfReferenceUID = ds.StructureSetROISequence[0].ReferencedFrameOfReferenceUID
    roi.ROIName = name
    roi.ROIGenerationAlgorithm = "MANUAL"
    ds.StructureSetROISequence.append(roi)
    contour = pydicom.Dataset()
    contour.ROIDisplayColor = [255, 128, 0]
    contour.ContourSequence = pydicom.Sequence(
        [_contour_item(body[z], _with_z(p, z)) for z, polys in sorted(planes.items()) for p in polys])
    contour.ReferencedROINumber = number
    ds.ROIContourSequence.append(contour)
    obs = pydicom.Dataset()
    obs.ObservationNumber = max(int(o.ObservationNumber) for o in ds.RTROIObservationsSequence) + 1
    obs.ReferencedROINumber = number
    obs.RTROIInterpretedType = interpreted_type
    obs.ROIInterpreter = ""
    ds.RTROIObservationsSequence.append(obs)


def plant_preop_gtv_body(ds: pydicom.Dataset) -> None:
    """``GTV_preop``: the GTV's cross-section on every CTV plane (the whole body height,
    18 mm, instead of the GTV's 12 mm).  The GTV is z-extruded inside sector-1 bone and
    the CTV holds that bone over the whole treated vertebra, so the pre-operative GTV
    lies inside the CTV (of the consensus or the circumferential recipe); it involves
    sector 1 only (not circumferential)."""
    section = [_points(c) for c in next(iter(_planes(ds, "GTV").values()))]
    add_gtv_roi(ds, "GTV_preop", {z: section for z in _planes(ds, "CTV")})


def plant_preop_gtv_anterior(ds: pydicom.Dataset) -> None:
    """``GTV_preop``: the GTV moved 14 mm anterior, a pre-operative paravertebral mass
    in front of the body.  The GTV is a 7 mm disk centred at (0, -5) over 12 mm; the
    body (and the consensus CTV) is the ellipse 17 x 13 mm about the same centre, so
    the moved disk, centred 1 mm in front of the body, has 0.98 cc (53%) more than
    1 mm outside the CTV (area of the disk beyond the ellipse's 1 mm offset, worked
    out on a 0.01 mm grid, times 12 mm).  The residual GTV is unchanged and covered."""
    planes = {z: [_points(c) - [0.0, 14.0, 0.0] for c in items]
              for z, items in _planes(ds, "GTV").items()}
    add_gtv_roi(ds, "GTV_preop", planes)


def plant_preop_gtv_from_ctv(ds: pydicom.Dataset) -> None:
    """``GTV_preop``: the CTV's own polygons on the GTV's planes, i.e. pre-operative
    disease in every bony sector the CTV holds.  On ``error_circumferential`` (CTV =
    sectors 1-6) that is body + both sides + spinous process: circumferential osseous
    involvement (ISRC-C3 pattern), inside the CTV."""
    ctv = _planes(ds, "CTV")
    add_gtv_roi(ds, "GTV_preop", {z: [_points(c) for c in ctv[z]] for z in _planes(ds, "GTV")})


def plant_target_levels(ds: pydicom.Dataset, *, superior: str, inferior: str) -> None:
    """CTV and PTV stretched cranio-caudally to span the vertebral bodies ``superior``
    to ``inferior`` (ROI names, e.g. ``VB_T09``, ``VB_T12``) as one continuous target.

    The phantom's CTV is z-constant over the treated body, so every plane between the
    new ends gets its cross-section; the PTV's end caps (planes beyond the CTV, the
    3D margin's shrinking sections) are moved out with the ends, so CTV -> PTV stays
    an exact 3D expansion and the cord carve-out is unchanged.  The GTV is unchanged.
    """
    body = {z: items[0] for z, items in _planes(ds, "BODY").items()}
    ctv_z = list(_planes(ds, "CTV"))
    lo, hi = ctv_z[0], ctv_z[-1]
    sup = max(_planes(ds, superior)) - hi
    inf = lo - min(_planes(ds, inferior))

    def source(z: float) -> float:
        if z > hi + sup:
            return round(z - sup, 3)
        if z < lo - inf:
            return round(z + inf, 3)
        return min(max(z, lo), hi)

    for name in ("CTV", "PTV"):
        old = _planes(ds, name)
        seq = _roi_contours(ds, name)
        new = [_contour_item(body[z], _with_z(_points(c), z))
               for z in body for c in old.get(source(z), ())]
        seq.clear()
        seq.extend(new)


def plant_disease_t9_t11(ds: pydicom.Dataset) -> None:
    """Disease over three levels: CTV and PTV stretched over VB_T09-VB_T11
    (:func:`plant_target_levels`) and the GTV's cross-section (inside the body, sector
    1) on every plane from the top of VB_T09 to the bottom of VB_T11, so the GTV
    involves the bodies of T9, T10 and T11 (through the discs between them)."""
    plant_target_levels(ds, superior="VB_T09", inferior="VB_T11")
    section = [_points(c) for c in next(iter(_planes(ds, "GTV").values()))]
    body = {z: items[0] for z, items in _planes(ds, "BODY").items()}
    top, bottom = max(_planes(ds, "VB_T09")), min(_planes(ds, "VB_T11"))
    seq = _roi_contours(ds, "GTV")
    seq.clear()
    seq.extend(_contour_item(body[z], _with_z(p, z)) for z in body if bottom <= z <= top
               for p in section)


PLANTS: dict[str, Callable[[pydicom.Dataset], None]] = {
    "gtv_outside_ctv": plant_gtv_outside_ctv,
    "missing_plane": plant_missing_plane,
    "stray_island": plant_stray_island,
    "self_crossing": plant_self_crossing,
    "nonuniform_prv": plant_nonuniform_prv,
    "target_off_spine": plant_target_off_spine,
    "open_contour": plant_open_contour,
    "duplicate_polygon": plant_duplicate_polygon,
    "off_slice": plant_off_slice,
    "outside_body": plant_outside_body,
    "off_ct": plant_off_ct,
    "nonstandard_name": plant_nonstandard_name,
    "empty_organ": plant_empty_organ,
    "empty_cord_prv": plant_empty_cord_prv,
    "second_target": functools.partial(plant_second_target, ptv_shift_mm=0.0),
    "second_target_shifted_ptv": functools.partial(plant_second_target, ptv_shift_mm=4.0),
    "oar_at_cutback": plant_oar_at_cutback,
    "preop_gtv_body": plant_preop_gtv_body,
    "preop_gtv_anterior": plant_preop_gtv_anterior,
    "preop_gtv_from_ctv": plant_preop_gtv_from_ctv,
    # needs levels T9-T12 in the phantom
    "target_t9_t11": functools.partial(plant_target_levels, superior="VB_T09", inferior="VB_T11"),
    "target_t9_t12": functools.partial(plant_target_levels, superior="VB_T09", inferior="VB_T12"),
    "disease_t9_t11": plant_disease_t9_t11,
}


def with_hardware(case: Case, *, hu: float = 3000.0) -> Case:
    """The case with a 3 x 3 mm 'screw' of ``hu`` through the vertebral body at the
    treated level (inside the CTV), over 9 slices."""
    assert case.image is not None
    im = case.image
    px = np.array(im.pixels, copy=True)
    geo = im.geometry
    zs = np.arange(-6.0, 6.1, 1.5)
    for x in (-1.0, 0.0, 1.0):
        for y in (-6.0, -5.0, -4.0):
            idx = np.rint(geo.patient_to_index(np.array([[x, y, z] for z in zs]))).astype(int)
            px[idx[:, 0], idx[:, 1], idx[:, 2]] = hu
    return dataclasses.replace(case, image=dataclasses.replace(im, pixels=px))


def load_dir(dicom_dir: Path) -> Case:
    _, cases = discover(dicom_dir)
    assert len(cases) == 1, cases
    return load_case(cases[0])


class PhantomCache:
    """Phantom cases generated (or planted) once per session, keyed by recipe.

    Each recipe (preset + overrides) is generated once; planted variants are copies
    of it with the RTSTRUCT edited.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cases: dict[str, Case] = {}
        self._bases: dict[str, Path] = {}

    def get(self, recipe: str = "demo", *, overrides: dict[str, Any] | None = None,
            plant: str | None = None, hardware: bool = False) -> Case:
        key = f"{recipe}|{sorted((overrides or {}).items())}|{plant}"
        if key not in self._cases:
            self._cases[key] = self._build(recipe, overrides or {}, plant)
        case = self._cases[key]
        return with_hardware(case) if hardware else case

    def _base(self, recipe: str, overrides: dict[str, Any]) -> Path:
        """The unplanted DICOM folder of a recipe, generated on first use."""
        key = f"{recipe}|{sorted(overrides.items())}"
        if key not in self._bases:
            if recipe == "demo" and not overrides:
                self._bases[key] = DEMO_DIR
            else:
                r = PRESETS[recipe]
                if overrides:
                    r = r.replace(**overrides)
                out = self.root / f"base{len(self._bases):03d}"
                self._bases[key] = generate_case(r, out).dicom_dir
        return self._bases[key]

    def _build(self, recipe: str, overrides: dict[str, Any], plant: str | None) -> Case:
        dicom = self._base(recipe, overrides)
        if plant is not None:
            planted = self.root / f"case{len(self._cases):03d}" / "dicom"
            shutil.copytree(dicom, planted)
            rs = planted / "RS.dcm"
            ds = pydicom.dcmread(rs)
            PLANTS[plant](ds)
            ds.save_as(rs)
            dicom = planted
        return load_dir(dicom)
