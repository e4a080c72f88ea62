"""``contourqa inspect``: what was found under a path, and every problem with it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contourqa.case import Case, SeriesCache, load_case
from contourqa.findings import Finding
from contourqa.io.discovery import DicomIndex, discover

__all__ = ["InspectSummary", "inspect_path", "describe"]


@dataclass(frozen=True)
class InspectSummary:
    root: Path
    index: DicomIndex
    cases: tuple[Case, ...]
    roles: tuple[dict[int, Any], ...] = ()
    role_problems: tuple[tuple[Finding, ...], ...] = ()
    series: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"root": str(self.root), "n_objects": len(self.index.objects),
                               "n_ignored_files": self.index.n_ignored_files,
                               "series": self.series,
                               "problems": [p.to_json() for p in self.index.problems], "cases": []}
        for case, roles, rp in zip(self.cases, self.roles, self.role_problems):
            c: dict[str, Any] = {"name": case.files.name, "patient_id": case.patient_id,
                                 "problems": [p.to_json() for p in (*case.problems, *rp)]}
            if case.plan:
                c["plan"] = {"label": case.plan.label, "n_fractions": case.plan.n_fractions,
                             "prescription_gy": case.plan.prescription_gy,
                             "prescription_source": case.plan.prescription_source.value,
                             "file": str(case.plan.path)}
            if case.image:
                im = case.image
                c["image"] = {"modality": im.modality, "n_slices": im.n_slices,
                              # columns, rows, frames: the order of spacing_mm
                              "shape": [int(v) for v in im.geometry.shape[::-1]],
                              "spacing_mm": im.geometry.spacing_mm.round(4).tolist(),
                              "slice_thickness_mm": im.slice_thickness_mm,
                              "patient_position": im.patient_position,
                              "uniform_spacing": im.uniform_spacing}
            if case.dose:
                g = case.dose.geometry
                c["dose"] = {"shape": [int(v) for v in g.shape[::-1]], "spacing_mm": g.spacing_mm.round(4).tolist(),
                             "max_gy": round(case.dose.max_gy, 4),
                             "summation_type": case.dose.summation_type,
                             "files": [str(p) for p in case.dose.paths]}
            if case.structure_set:
                c["rois"] = [{"number": r.number, "name": r.name,
                              "interpreted_type": r.interpreted_type,
                              "role": roles[r.number].role.value if r.number in roles else None,
                              "n_contours": len(r.contours)} for r in case.structure_set.rois]
            out["cases"].append(c)
        return out


def inspect_path(path: str | Path) -> InspectSummary:
    """Index ``path``, group its cases and load each one (problems become findings)."""
    from contourqa.structures import assign_roles

    index, files = discover(path)
    cache = SeriesCache()
    cases = tuple(load_case(f, series_cache=cache) for f in files)
    roles: list[dict[int, Any]] = []
    role_problems: list[tuple[Finding, ...]] = []
    for case in cases:
        if case.structure_set is None:
            roles.append({})
            role_problems.append(())
            continue
        table = assign_roles(case.structure_set.rois)
        roles.append({a.roi_number: a for a in table.assignments if a.roi_number is not None})
        role_problems.append(tuple(table.problems))
    series = {}
    for key, objs in index.series().items():
        series[key] = {"modality": objs[0].modality, "n_files": len(objs),
                       "frame_of_reference_uid": objs[0].frame_of_reference_uid,
                       "description": objs[0].label, "folder": str(objs[0].path.parent)}
    return InspectSummary(root=Path(path), index=index, cases=cases, roles=tuple(roles),
                          role_problems=tuple(role_problems), series=series)


def _problem_lines(problems: tuple[Finding, ...] | list[Finding], indent: str) -> list[str]:
    return [f"{indent}! {p.code} ({p.status.value}): {p.message}"
            + (f" [{', '.join(f.name for f in p.files)}]" if p.files else "") for p in problems]


def describe(s: InspectSummary) -> str:
    lines = [f"{s.root}: {len(s.index.objects)} DICOM objects, {s.index.n_ignored_files} other "
             f"files ignored, {len(s.cases)} case(s)"]
    for info in s.series.values():
        lines.append(f"  series {info['modality']} x{info['n_files']} "
                     f"'{info['description'] or ''}' in {info['folder']}")
    lines += _problem_lines(s.index.problems, "  ")
    for case, roles, rp in zip(s.cases, s.roles, s.role_problems):
        lines.append(f"\ncase: {case.files.name}")
        if case.plan:
            p = case.plan
            rx = f"{p.prescription_gy:g} Gy" if p.prescription_gy is not None else "no prescription"
            lines.append(f"  plan '{p.label}': {rx} in {p.n_fractions} fractions "
                         f"(from {p.prescription_source.value})")
        if case.image:
            im = case.image
            lines.append(f"  image: {im.modality} {im.n_slices} slices of {im.geometry.shape[2]} x "
                         f"{im.geometry.shape[1]} (columns x rows), pixel {im.geometry.spacing_mm[0]:.3f} mm, "
                         f"slice spacing {im.slice_spacing_mm:.3f} mm, thickness "
                         f"{im.slice_thickness_mm} mm, {im.patient_position or 'position unknown'}")
        else:
            lines.append("  image: none")
        if case.dose:
            g = case.dose.geometry
            lines.append(f"  dose: grid {g.shape[2]} x {g.shape[1]} x {g.shape[0]} "
                         f"(columns x rows x frames) at "
                         f"{' x '.join(f'{v:g}' for v in g.spacing_mm.round(3))} mm, max "
                         f"{case.dose.max_gy:.2f} Gy ({case.dose.summation_type})")
        else:
            lines.append("  dose: none")
        if case.structure_set:
            lines.append(f"  structure set '{case.structure_set.label}': "
                         f"{len(case.structure_set.rois)} ROIs")
            for r in case.structure_set.rois:
                a = roles.get(r.number)
                role = a.role.value if a else "-"
                lines.append(f"    {r.number:>3} {r.name:<28} {str(r.interpreted_type or ''):<10} "
                             f"{role:<14} {len(r.contours)} contours")
        lines += _problem_lines([*case.problems, *rp], "  ")
    return "\n".join(lines) + "\n"
