"""Generate phantom cases and load them as contourqa cases (shared by sector tests)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from contourqa.case import Case, load_case
from contourqa.io.discovery import discover
from test_data.phantom import PhantomRecipe, generate_case


def load_single_case(dicom_dir: Path) -> Case:
    """The one case of a phantom folder, loaded."""
    _, cases = discover(dicom_dir)
    assert len(cases) == 1
    return load_case(cases[0])


def generate_and_load(recipes: Mapping[str, PhantomRecipe],
                      root: Path) -> dict[str, tuple[Case, dict[str, Any]]]:
    """Each recipe generated under ``root/<name>`` and loaded, with its truth."""
    out = {}
    for name, recipe in recipes.items():
        gen = generate_case(recipe, root / name)
        out[name] = (load_single_case(gen.dicom_dir), gen.truth)
    return out
