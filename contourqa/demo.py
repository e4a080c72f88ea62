"""Where the bundled demo case lives (the synthetic spine phantom in ``test_data/``)."""

from __future__ import annotations

from pathlib import Path

from contourqa.errors import NoCaseFoundError

__all__ = ["demo_case_path"]


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
