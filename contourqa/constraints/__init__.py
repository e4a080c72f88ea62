"""Fraction-aware, cited constraint sets (data) and their loader.

>>> from contourqa.constraints import builtin_sets, select_sets
>>> sorted(builtin_sets())                                   # doctest: +SKIP
['bmc2025', 'cox2012', 'hytec2021', 'quantec2010', 'redmond2017', 'rtog0631', 'sahgal2013',
 'tg101']
>>> sets = select_sets(["hytec2021"], files=["institution.toml"])   # doctest: +SKIP
"""

from contourqa.constraints.library import (
    AUTO,
    builtin_sets,
    check_coverage_gaps,
    coverage_gaps,
    load_rules,
    select_sets,
)
from contourqa.constraints.model import (
                                         POINT_METRIC,
                                         STATUSES,
                                         Comparison,
                                         Constraint,
                                         ConstraintFileError,
                                         ConstraintSet,
                                         CoverageGap,
                                         load_constraint_set,
                                         parse_constraint_set,
                                         parse_coverage_gaps,
)

__all__ = [
    "AUTO", "POINT_METRIC", "STATUSES", "Comparison", "Constraint", "ConstraintFileError",
    "ConstraintSet", "CoverageGap", "builtin_sets", "check_coverage_gaps", "coverage_gaps",
    "load_constraint_set", "load_rules", "parse_constraint_set", "parse_coverage_gaps",
    "select_sets",
]
