"""The anatomical parts of a vertebra and the ISRC sector each belongs to."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["PART_CODES", "PART_NAMES", "PART_SECTOR", "parts_to_sectors"]

#: Part code (1-8, as stored in the part labels) -> name.
PART_NAMES: dict[int, str] = {
    1: "body",
    2: "pedicle_left",
    3: "lamina_left",
    4: "transverse_process_left",
    5: "spinous",
    6: "lamina_right",
    7: "transverse_process_right",
    8: "pedicle_right",
}
PART_CODES: dict[str, int] = {name: code for code, name in PART_NAMES.items()}
#: Part code -> ISRC sector (knowledge base 1a: 3 and 5 hold lamina and transverse process).
PART_SECTOR: dict[int, int] = {1: 1, 2: 2, 3: 3, 4: 3, 5: 4, 6: 5, 7: 5, 8: 6}

_LOOKUP = np.zeros(10, dtype=np.int8)
for _code, _sector in PART_SECTOR.items():
    _LOOKUP[_code] = _sector


def parts_to_sectors(parts: NDArray[np.integer]) -> NDArray[np.int8]:
    """Sector (1-6, 0 off bone) of every part label (0-8)."""
    return _LOOKUP[np.asarray(parts, dtype=np.int64)]
