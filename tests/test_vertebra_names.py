"""Vertebra ROI names as clinics spell them -> vertebral level (issue: sectors, item 4).

The expected levels are written by hand from the anatomy the names denote (``BWK`` is
the German thoracic vertebra, ``D`` dorsal = thoracic, the dens belongs to C2), not
derived from the patterns in ``contourqa/data/vertebra_names.toml``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from contourqa.findings import Status
from contourqa.structures import Role, assign_roles, classify_name

#: ROI name -> level (single level or range, cranial first)
VERTEBRA_NAMES: dict[str, str] = {
    # TG-263 and its reverse order
    "VB_T09": "T9", "VB_T9": "T9", "T09_VB": "T9", "VB_T10": "T10", "VB_L3": "L3",
    "VB_C2": "C2", "VB_S1": "S1", "VB_C": "C1-C7", "VB_S": "S1-S5",
    # the list
    "Bone_Vertebra_T9": "T9", "Vertebra_T9": "T9", "T9_VB": "T9", "Vert T9": "T9",
    "T09": "T9", "T9 body": "T9", "L3 vert": "L3", "Spine_T9": "T9", "C2": "C2",
    "S1": "S1", "Sacrum": "S1-S5",
    # other clinical spellings
    "T9": "T9", "t9": "T9", "Th9": "T9", "TH09": "T9", "Vert D9": "T9", "Vertebra D10": "T10",
    "vertebra_t9": "T9", "Vertebrae T9": "T9", "Vertebral body T9": "T9",
    "T9 vertebral body": "T9", "T9_Vertebra": "T9", "L1 vertebra": "L1", "VB L1": "L1",
    "VB.T12": "T12", "Bone T12": "T12", "Spine L4": "L4", "L4_spine": "L4", "Wirbel L2": "L2",
    "BWK 9": "T9", "BWK9": "T9", "LWK 3": "L3", "HWK2": "C2", "C7": "C7", "L5": "L5",
    "S2": "S2", "Dens": "C2", "Atlas": "C1", "Axis": "C2",
    # ranges
    "T9-T11": "T9-T11", "T9-11": "T9-T11", "VB_T9-T11": "T9-T11", "VB_T9-11": "T9-T11",
    "T9/10": "T9-T10", "T12-L1": "T12-L1", "L5-S1": "L5-S1", "Vert T11-T9": "T9-T11",
    "BWK 9-10": "T9-T10", "T12_L1_VB": "T12-L1",
}

#: names that must not be read as vertebrae: role expected instead (and the level a
#: target's name carries)
NOT_VERTEBRAE: dict[str, tuple[Role, str | None]] = {
    "Esophagus": (Role.ESOPHAGUS, None),
    "T2_FLAIR": (Role.UNKNOWN, None),
    "T1_post": (Role.UNKNOWN, None),
    "PTV_L": (Role.PTV, None),
    "Lung_L": (Role.LUNG, None),
    "CTV_T10": (Role.CTV, "T10"),
    "PTV_T10": (Role.PTV, "T10"),
    "GTV T9-T10": (Role.GTV, "T9-T10"),
    "SpinalCord": (Role.SPINAL_CORD, None),
    "SpinalCanal": (Role.SPINAL_CANAL, None),
    "Vertebral canal": (Role.SPINAL_CANAL, None),
    "Body": (Role.BODY, None),
    "D10": (Role.UNKNOWN, None),  # a dose metric as easily as a dorsal vertebra
    "PTV 24/2": (Role.PTV, None),
    "Kidney_L": (Role.KIDNEY, None),
}


def test_the_table_is_large_enough() -> None:
    assert len(VERTEBRA_NAMES) >= 40


@pytest.mark.parametrize(("name", "level"), VERTEBRA_NAMES.items(), ids=list(VERTEBRA_NAMES))
def test_vertebra_name_gives_its_level(name: str, level: str) -> None:
    a = classify_name(name)
    assert (a.role, a.level) == (Role.VERTEBRA, level), a.evidence


@pytest.mark.parametrize(("name", "expected"), NOT_VERTEBRAE.items(), ids=list(NOT_VERTEBRAE))
def test_not_a_vertebra(name: str, expected: tuple[Role, str | None]) -> None:
    a = classify_name(name)
    assert (a.role, a.level) == expected, a.evidence


def test_vbs_is_all_vertebral_bodies_not_the_sacrum() -> None:
    # "VBs" and "VB_S" have the same compact form; the underscore decides
    assert classify_name("VBs").level is None
    assert classify_name("VBs").tg263_name == "VBs"
    assert classify_name("VB_S").level == "S1-S5"


@dataclass(frozen=True)
class _R:
    number: int
    name: str
    interpreted_type: str | None = None


@pytest.mark.parametrize("name", ["T13", "L6", "vertebra T13", "VB_T9_old", "Vert",
                                  "VBs", "LWK 6", "C8"])
def test_unreadable_vertebra_name_is_a_finding(name: str) -> None:
    table = assign_roles([_R(1, name), _R(2, "VB_T10")])
    found = [f for f in table.problems if f.code == "structures.vertebra_name"]
    assert len(found) == 1, [f.code for f in table.problems]
    assert found[0].structure == name and found[0].status is Status.WARN
    assert table.of(name).level is None


def test_read_vertebra_names_are_not_findings() -> None:
    table = assign_roles([_R(i, n) for i, n in enumerate(VERTEBRA_NAMES, start=1)
                          if "-" not in n and "/" not in n and n not in ("VB_C", "VB_S",
                                                                        "Sacrum")])
    assert not [f for f in table.problems if f.code == "structures.vertebra_name"]


def test_not_vertebrae_are_not_vertebra_findings() -> None:
    table = assign_roles([_R(i, n) for i, n in enumerate(NOT_VERTEBRAE, start=1)])
    assert not [f for f in table.problems if f.code == "structures.vertebra_name"]


def test_mapping_gives_a_transitional_vertebra_its_level() -> None:
    table = assign_roles([_R(1, "L6")], mapping={"L6": {"role": "vertebra", "level": "S1"}})
    assert table.of("L6").level == "S1"
    assert not [f for f in table.problems if f.code == "structures.vertebra_name"]
