"""Spine phantoms for the contouring-rule tests, with planted errors the generator lacks.

Planted errors edit the generated RTSTRUCT with pydicom (or, for hardware, the loaded
CT in memory); each is documented with the truth it changes.  Helper module: import
it by plain name (``from _rule_phantoms import ...``).
"""

from __future__ import annotations

import dataclasses
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


def copy_item(item: pydicom.Dataset) -> pydicom.Dataset:
    import copy

    return copy.deepcopy(item)


PLANTS: dict[str, Callable[[pydicom.Dataset], None]] = {
    "gtv_outside_ctv": plant_gtv_outside_ctv,
    "missing_plane": plant_missing_plane,
    "stray_island": plant_stray_island,
    "self_crossing": plant_self_crossing,
    "nonuniform_prv": plant_nonuniform_prv,
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
    """Phantom cases generated (or planted) once per session, keyed by recipe."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cases: dict[str, Case] = {}

    def get(self, recipe: str = "demo", *, overrides: dict[str, Any] | None = None,
            plant: str | None = None, hardware: bool = False) -> Case:
        key = f"{recipe}|{sorted((overrides or {}).items())}|{plant}"
        if key not in self._cases:
            self._cases[key] = self._build(key, recipe, overrides or {}, plant)
        case = self._cases[key]
        return with_hardware(case) if hardware else case

    def _build(self, key: str, recipe: str, overrides: dict[str, Any], plant: str | None) -> Case:
        out = self.root / f"case{len(self._cases):03d}"
        if recipe == "demo" and not overrides:
            dicom = out / "dicom"
            shutil.copytree(DEMO_DIR, dicom)
        else:
            r = PRESETS[recipe]
            if overrides:
                r = r.replace(**overrides)
            dicom = generate_case(r, out).dicom_dir
        if plant is not None:
            rs = dicom / "RS.dcm"
            ds = pydicom.dcmread(rs)
            PLANTS[plant](ds)
            ds.save_as(rs)
        return load_dir(dicom)
