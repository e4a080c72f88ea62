"""Loading speed on the RIDER chest CT (236 slices, 512x512) against pydicom alone.

The floor is what pydicom needs to read the same files and decode their pixels
(``dcmread`` + ``pixel_array`` per file).  contourqa is timed two ways: the image
reader alone (``read_image_series``), and the whole path a check takes (folder
discovery, header index, case loading).  Each timing is the best of ``REPEATS``
runs with a warm file cache.  Target: reader <= 1.5x the floor.

Run: ``python benchmarks/bench_loading.py``; writes benchmarks/results/loading.md.
"""

from __future__ import annotations

import sys
import tarfile
import tempfile
import time
from pathlib import Path

import pydicom

sys.path.insert(0, str(Path(__file__).parent))
from _machine import machine_stamp  # noqa: E402

from contourqa.case import load_case  # noqa: E402
from contourqa.io.discovery import discover  # noqa: E402
from contourqa.io.images import read_image_series  # noqa: E402

REPEATS = 7
ARCHIVE_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "rider_lung_ct_rtstruct_seg"


def best(fn, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with tarfile.open(next(ARCHIVE_DIR.glob("CT_series_*.tar.xz"))) as tar:
            tar.extractall(folder, filter="data")
        files = sorted(folder.rglob("*.dcm"))

        def floor() -> None:
            for f in files:
                pydicom.dcmread(f).pixel_array

        t_floor = best(floor)
        t_reader = best(lambda: read_image_series(files))

        def whole() -> None:
            _, cases = discover(folder)
            assert not cases  # CT only: time the index, then load the series
            read_image_series(files)

        t_index = best(lambda: discover(folder))
        t_whole = best(whole)
    lines = [
        "# Loading speed: RIDER chest CT, 236 slices 512x512 (uncompressed)",
        "",
        f"Machine and date: {machine_stamp()}",
        f"pydicom {pydicom.__version__}; best of {REPEATS} runs, warm file cache.",
        "",
        "| what | seconds | x floor |",
        "|---|---|---|",
        f"| pydicom floor: dcmread + pixel_array per file | {t_floor:.3f} | 1.00 |",
        f"| contourqa read_image_series (sort, checks, HU volume) | {t_reader:.3f} | {t_reader / t_floor:.2f} |",
        f"| contourqa discovery (header index of the folder) | {t_index:.3f} | {t_index / t_floor:.2f} |",
        f"| contourqa discovery + read_image_series | {t_whole:.3f} | {t_whole / t_floor:.2f} |",
        "",
        "Target (issue 2): reader at most 1.5x the floor.",
    ]
    out = Path(__file__).parent / "results" / "loading.md"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
