"""Where the bundled demo case lives (the synthetic spine phantom in ``test_data/``)."""

from __future__ import annotations

from pathlib import Path

from contourqa.errors import NoCaseFoundError

__all__ = ["DEMO_CLINICAL_INPUTS", "demo_case_path"]

#: What the DICOM files cannot say about the demo's (fictional) patient, stated by
#: ``contourqa demo`` unless the command line states otherwise
#: (:func:`contourqa.options.build_check_options` keywords).  The phantom is built with
#: an intact, straight column and a GTV of bone density (test_data/demo_case/truth:
#: lytic and blastic false), so no baseline fracture, no deformity, not lytic; the age
#: is the scenario's, chosen over 55 so the demo shows a VCF risk warning.
DEMO_CLINICAL_INPUTS: dict[str, object] = {
    "age_years": 62.0, "lytic": False, "baseline_vcf": False, "deformity": False,
}


def demo_case_path() -> Path:
    """The bundled phantom case folder of a source checkout.

    Raises
    ------
    NoCaseFoundError
        contourqa was installed without its source tree (the demo case is not
        part of the wheel); regenerate it with ``python -m test_data.phantom DIR``.
    """
    path = Path(__file__).resolve().parents[1] / "test_data" / "demo_case" / "dicom"
    if not path.is_dir():
        raise NoCaseFoundError(
            f"{path}: the bundled demo case is missing; run contourqa from a source checkout "
            "(pip install -e .) or regenerate it with: python -m test_data.phantom DIR")
    return path
