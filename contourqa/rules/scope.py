"""Whether a case's target is a spine target, so that the spine rules concern it.

A lung or chest-wall SBRT plan beside the spine is not a spine SBRT: the ISRC sector
rules, the spine margin ranges and the post-operative rules do not apply to it, and
reporting them as failures would fill a batch audit of a mixed archive with false
fails.  The evidence comes from the ISRC sector analysis (thresholds in
``rules/data/mode.toml`` ``[spine_target]``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from contourqa.sectors import SectorAnalysis

__all__ = ["GTV_OUTSIDE_CODE", "spine_target"]

#: The sector analysis's finding when the GTV touches no vertebra found.
GTV_OUTSIDE_CODE = "sectors.gtv_outside_vertebrae"


def _by_names(names: Sequence[str], params: Mapping[str, Any]) -> tuple[bool | None, str]:
    """The names' evidence when the image cannot tell: False when some target or plan
    name names a non-spine site and none names the spine or a vertebral level."""
    other = params.get("non_spine_site_pattern")
    spine = params.get("spine_site_pattern")
    if not other or not spine:
        return None, ""
    if any(re.search(str(spine), n, re.I) for n in names):
        return None, ""
    hits = [n for n in names if re.search(str(other), n, re.I)]
    if not hits:
        return None, ""
    return False, (f"no vertebra could be analysed, and the target or plan names "
                   f"({', '.join(hits[:4])}) name a site other than the spine, none a "
                   "vertebral level")


def spine_target(sectors: SectorAnalysis | None, params: Mapping[str, Any],
                 names: Sequence[str] = ()) -> tuple[bool | None, str]:
    """Is the target a spine target?

    Parameters
    ----------
    sectors : SectorAnalysis or None
    params : mapping
        The ``[spine_target]`` table (``min_gtv_in_spine_pct``, the name patterns).
    names : sequence of str
        The target ROIs' names and the plan's label: evidence only when the image
        cannot tell (no sector analysis, no vertebra analysed).

    Returns
    -------
    verdict : bool or None
        True: a spine target; False: the target involves no vertebra (spine rules not
        applicable); None: cannot tell (no sector analysis, no vertebra found).
    why : str
        The evidence, one sentence.
    """
    if sectors is None:
        verdict, why = _by_names(names, params)
        return verdict, why or "no ISRC sector analysis"
    ctv_levels = [v.level or f"vertebra #{v.index}" for v in sectors.vertebrae if v.ctv_sectors]
    if ctv_levels:
        return True, f"the CTV covers vertebral sectors at {', '.join(ctv_levels)}"
    if any(v.epidural for v in sectors.vertebrae):
        return True, "the GTV has an epidural component"
    if any(f.code == GTV_OUTSIDE_CODE for f in sectors.findings):
        return False, ("the GTV involves no vertebra found (no bone, no canal) and the CTV "
                       "covers no vertebral sector")
    if not sectors.vertebrae:
        verdict, why = _by_names(names, params)
        return verdict, why or "no vertebra analysed"
    spine_cc = sum(sum(v.gtv_sector_cc) + v.epidural_cc for v in sectors.vertebrae)
    total_cc = spine_cc + sum(v.paraspinal_cc for v in sectors.vertebrae)
    if total_cc <= 0:
        return False, "the GTV involves no vertebral sector and the CTV covers none"
    pct = 100.0 * spine_cc / total_cc
    need = float(params["min_gtv_in_spine_pct"])
    if pct < need:
        return False, (f"only {pct:.0f}% of the GTV ({spine_cc:.1f} of {total_cc:.1f} cc) lies "
                       f"in vertebral bone or the canal (a spine target from {need:g}%) and no "
                       "CTV covers a vertebral sector")
    return True, f"{pct:.0f}% of the GTV lies in vertebral bone or the canal"
