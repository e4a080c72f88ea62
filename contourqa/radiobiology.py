"""Linear-quadratic dose conversions: BED, EQD2, EQDX and their inverses.

Formulas from the knowledge base, section 4c (implemented exactly)::

    BED  = D * (1 + d / (alpha/beta))
    EQD2 = D * (d + alpha/beta) / (2 + alpha/beta)
    EQDX = D * (d + alpha/beta) / (X + alpha/beta)

with ``D`` the total dose, ``d = D / n`` the dose per fraction and ``X`` the
reference dose per fraction (2 Gy for EQD2).  Sahgal's nBED (Gy2/2) equals EQD2 at
alpha/beta = 2 Gy.  The alpha/beta of each tissue is data
(``constraints/data/rules/radiobiology.toml``), never a constant in code.

A prior course is a :class:`Course` (``Course.parse("30Gy/10fx")``).
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from dataclasses import dataclass

__all__ = [
    "EQD2_REFERENCE_DOSE_PER_FRACTION_GY",
    "Course",
    "bed_gy",
    "eqd2_gy",
    "eqdx_gy",
    "total_dose_for_bed_gy",
    "total_dose_for_eqd2_gy",
]

#: The reference fraction size that defines EQD2 (by definition, not a clinical choice).
EQD2_REFERENCE_DOSE_PER_FRACTION_GY = 2.0


def _check(total_dose_gy: float, n_fractions: int, alpha_beta_gy: float) -> None:
    if not (isinstance(total_dose_gy, (int, float)) and math.isfinite(total_dose_gy)
            and total_dose_gy >= 0):
        raise ValueError(f'Argument "total_dose_gy" must be a finite dose >= 0 Gy, '
                         f'got {total_dose_gy!r}.')
    if isinstance(n_fractions, bool) or not isinstance(n_fractions, int) or n_fractions < 1:
        raise ValueError(f'Argument "n_fractions" must be a positive integer, got {n_fractions!r}.')
    if not (isinstance(alpha_beta_gy, (int, float)) and math.isfinite(alpha_beta_gy)
            and alpha_beta_gy > 0):
        raise ValueError(f'Argument "alpha_beta_gy" must be a positive dose in Gy, '
                         f'got {alpha_beta_gy!r}.')


def bed_gy(*, total_dose_gy: float, n_fractions: int, alpha_beta_gy: float) -> float:
    """Biologically effective dose, Gy.

    Parameters
    ----------
    total_dose_gy : float
        Total physical dose over all fractions, Gy.
    n_fractions : int
        Number of equal fractions.
    alpha_beta_gy : float
        alpha/beta ratio of the tissue, Gy.

    Returns
    -------
    float
        ``D * (1 + d / (alpha/beta))``, Gy.

    Examples
    --------
    >>> bed_gy(total_dose_gy=8.0, n_fractions=1, alpha_beta_gy=2.0)
    40.0
    """
    _check(total_dose_gy, n_fractions, alpha_beta_gy)
    d = total_dose_gy / n_fractions
    return total_dose_gy * (1.0 + d / alpha_beta_gy)


def eqdx_gy(*, total_dose_gy: float, n_fractions: int, alpha_beta_gy: float,
            reference_dose_per_fraction_gy: float) -> float:
    """Equieffective dose in fractions of ``reference_dose_per_fraction_gy``, Gy.

    ``D * (d + alpha/beta) / (X + alpha/beta)`` (ICRPaedia, knowledge base 4c).
    """
    _check(total_dose_gy, n_fractions, alpha_beta_gy)
    if not reference_dose_per_fraction_gy > 0:
        raise ValueError('Argument "reference_dose_per_fraction_gy" must be positive, got '
                         f'{reference_dose_per_fraction_gy!r}.')
    d = total_dose_gy / n_fractions
    return total_dose_gy * (d + alpha_beta_gy) / (reference_dose_per_fraction_gy + alpha_beta_gy)


def eqd2_gy(*, total_dose_gy: float, n_fractions: int, alpha_beta_gy: float) -> float:
    """Equivalent dose in 2-Gy fractions, Gy (= nBED in Gy2/2 when alpha/beta = 2 Gy).

    Examples
    --------
    >>> eqd2_gy(total_dose_gy=8.0, n_fractions=1, alpha_beta_gy=2.0)
    20.0
    """
    return eqdx_gy(total_dose_gy=total_dose_gy, n_fractions=n_fractions,
                   alpha_beta_gy=alpha_beta_gy,
                   reference_dose_per_fraction_gy=EQD2_REFERENCE_DOSE_PER_FRACTION_GY)


def total_dose_for_bed_gy(*, bed_gy: float, n_fractions: int, alpha_beta_gy: float) -> float:
    """Total dose in ``n_fractions`` equal fractions that gives ``bed_gy``, Gy.

    Solves ``n d (1 + d / ab) = BED`` for the positive root ``d``.
    """
    _check(bed_gy, n_fractions, alpha_beta_gy)
    ab = alpha_beta_gy
    d = ab / 2.0 * (math.sqrt(1.0 + 4.0 * bed_gy / (n_fractions * ab)) - 1.0)
    return n_fractions * d


def total_dose_for_eqd2_gy(*, eqd2_gy: float, n_fractions: int, alpha_beta_gy: float) -> float:
    """Total dose in ``n_fractions`` equal fractions that gives ``eqd2_gy``, Gy.

    Examples
    --------
    >>> round(total_dose_for_eqd2_gy(eqd2_gy=25.0, n_fractions=1, alpha_beta_gy=2.0), 2)
    9.05
    """
    _check(eqd2_gy, n_fractions, alpha_beta_gy)
    bed = eqd2_gy * (1.0 + EQD2_REFERENCE_DOSE_PER_FRACTION_GY / alpha_beta_gy)
    return total_dose_for_bed_gy(bed_gy=bed, n_fractions=n_fractions, alpha_beta_gy=alpha_beta_gy)


_COURSE_RE = re.compile(
    r"^\s*(?P<dose>\d+(?:\.\d*)?|\.\d+)\s*gy\s*(?:/|in|x)\s*(?P<n>\d+)\s*(?:fx|fractions?|f)?\s*$",
    re.IGNORECASE)


@dataclass(frozen=True)
class Course:
    """A radiotherapy course: total dose, fractions, and what is known about it.

    Attributes
    ----------
    total_dose_gy : float
        Prescribed total dose, Gy.
    n_fractions : int
    cord_max_gy : float or None
        Maximum dose of this course to the cord or thecal sac (Pmax), Gy, if known.
    end_date : datetime.date or None
        Date the course ended (or was delivered), for the re-irradiation interval.
    label : str
        How the course was given (for messages).
    """

    total_dose_gy: float
    n_fractions: int
    cord_max_gy: float | None = None
    end_date: _dt.date | None = None
    label: str = ""

    def __post_init__(self) -> None:
        _check(self.total_dose_gy, self.n_fractions, 1.0)
        if self.cord_max_gy is not None and not (math.isfinite(self.cord_max_gy)
                                                 and self.cord_max_gy >= 0):
            raise ValueError(f'Argument "cord_max_gy" must be a dose >= 0 Gy, got '
                             f'{self.cord_max_gy!r}.')
        if not self.label:
            object.__setattr__(self, "label", f"{self.total_dose_gy:g} Gy/{self.n_fractions} fx")

    @property
    def dose_per_fraction_gy(self) -> float:
        return self.total_dose_gy / self.n_fractions

    @classmethod
    def parse(cls, text: str) -> Course:
        """Parse ``"30Gy/10fx"``, optionally followed by ``,cord_max=28Gy`` and
        ``,date=2023-05-01`` (ISO date the course ended).

        Raises
        ------
        ValueError
            The text does not follow this form (the message shows it).
        """
        head, *parts = [p.strip() for p in str(text).split(",")]
        m = _COURSE_RE.match(head)
        if not m:
            raise ValueError(f"Cannot read the course {text!r}: write it as '30Gy/10fx', "
                             "optionally with ',cord_max=28Gy' and ',date=YYYY-MM-DD'.")
        cord_max = None
        date = None
        for part in parts:
            key, sep, value = part.partition("=")
            key = key.strip().lower()
            value = value.strip()
            if not sep:
                raise ValueError(f"Course {text!r}: {part!r} must be key=value.")
            if key in ("cord_max", "cordmax", "pmax"):
                v = value.lower().removesuffix("gy").strip()
                try:
                    cord_max = float(v)
                except ValueError:
                    raise ValueError(f"Course {text!r}: cord_max must be a dose in Gy, "
                                     f"got {value!r}.") from None
            elif key == "date":
                try:
                    date = _dt.date.fromisoformat(value)
                except ValueError:
                    raise ValueError(f"Course {text!r}: date must be YYYY-MM-DD, "
                                     f"got {value!r}.") from None
            else:
                raise ValueError(f"Course {text!r}: unknown key {key!r} (known: cord_max, date).")
        return cls(total_dose_gy=float(m.group("dose")), n_fractions=int(m.group("n")),
                   cord_max_gy=cord_max, end_date=date, label=head.replace(" ", ""))

    def matches(self, other: Course, *, dose_tolerance_gy: float) -> bool:
        """Same number of fractions and total dose within ``dose_tolerance_gy``."""
        return (self.n_fractions == other.n_fractions
                and abs(self.total_dose_gy - other.total_dose_gy) <= dose_tolerance_gy)
