"""Helpers of the DVH benchmarks: the Nelms 2015 cases and the machine description."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nelms_analytical_dvh"
COLUMNS = ("Total Volume (cc)", "Dmin", "Dmax", "Dmean", "D99", "D95", "D5", "D1", "D0.03cc")
METRICS = ("volume", "Dmin", "Dmax", "Dmean", "D99%", "D95%", "D5%", "D1%", "D0.03cc")


@dataclass(frozen=True)
class NelmsCase:
    structure: str
    dose_mm: int
    gradient: str          # "AP" or "SI"
    truth: dict[str, float]  # metric string -> Gy or cc

    @property
    def structure_path(self) -> Path:
        return DATA / "STRUCTURES" / f"{self.structure}.dcm"

    @property
    def dose_path(self) -> Path:
        name = "AntPost" if self.gradient == "AP" else "SupInf"
        return DATA / "DOSE GRIDS" / f"Linear_{name}_{self.dose_mm}mm_Aligned.dcm"

    @property
    def label(self) -> str:
        return f"{self.structure}/{self.dose_mm}mm/{self.gradient}"


def load_cases() -> list[NelmsCase]:
    """The 70 cases whose dose grid is in the copy (630 values)."""
    out = []
    with open(DATA / "ANALYTICAL" / "analytical_values.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            voxel = row["Dose Voxel (mm)"].strip()
            if voxel not in ("1", "2", "3"):
                continue
            truth = {}
            for col, met in zip(COLUMNS, METRICS):
                v = float(row[col])
                truth[met] = v if met == "volume" else v / 100.0  # cGy -> Gy
            grad = "AP" if "AP" in row["Gradient direction"] else "SI"
            out.append(NelmsCase(row["Structure name"].strip(), int(voxel), grad, truth))
    return out


def machine() -> dict[str, str | int]:
    """uname, CPU model, cores, Python version and date, for the results files."""
    import datetime
    import os
    import platform

    from _machine import cpu_model

    cpu = cpu_model()
    return {"uname": " ".join(platform.uname()), "cpu": cpu, "cores": os.cpu_count() or 0,
            "python": platform.python_version(),
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
