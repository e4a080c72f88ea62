"""DVH metric grammar: strings such as ``"D0.03cc"`` parsed once into typed objects.

Grammar (case-insensitive on input; :func:`str` gives the canonical spelling)::

    volume            structure volume, cc
    Dmin | Dmax | Dmean                          Gy
    D<x>%             minimum dose to the hottest x % of the volume, Gy
    D<x>cc            minimum dose to the hottest x cc, Gy
    V<x>Gy            volume receiving at least x Gy, cc
    V<x>Gy%           the same as a percentage of the structure volume, %
    V<x>%             volume receiving at least x % of the prescription, % of the volume

``x`` is a non-negative decimal number (``0.03``, ``95``, ``.5``).
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass

from contourqa.errors import MetricError

__all__ = ["DEFAULT_METRICS", "DVHMetric", "MetricKind"]


class MetricKind(str, enum.Enum):
    """What a metric measures; the value is the unit of its result."""

    VOLUME = "volume"
    DMIN = "Dmin"
    DMAX = "Dmax"
    DMEAN = "Dmean"
    DOSE_AT_PERCENT = "D%"
    DOSE_AT_CC = "Dcc"
    VOLUME_CC_AT_GY = "VGy"
    VOLUME_PERCENT_AT_GY = "VGy%"
    VOLUME_PERCENT_AT_RX_PERCENT = "V%"

    @property
    def unit(self) -> str:
        if self is MetricKind.VOLUME or self is MetricKind.VOLUME_CC_AT_GY:
            return "cc"
        if self in (MetricKind.VOLUME_PERCENT_AT_GY, MetricKind.VOLUME_PERCENT_AT_RX_PERCENT):
            return "%"
        return "Gy"


_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_PATTERNS: tuple[tuple[re.Pattern[str], MetricKind], ...] = (
    (re.compile(rf"^D{_NUMBER}%$", re.IGNORECASE), MetricKind.DOSE_AT_PERCENT),
    (re.compile(rf"^D{_NUMBER}\s*cc$", re.IGNORECASE), MetricKind.DOSE_AT_CC),
    (re.compile(rf"^V{_NUMBER}\s*Gy%$", re.IGNORECASE), MetricKind.VOLUME_PERCENT_AT_GY),
    (re.compile(rf"^V{_NUMBER}\s*Gy$", re.IGNORECASE), MetricKind.VOLUME_CC_AT_GY),
    (re.compile(rf"^V{_NUMBER}%$", re.IGNORECASE), MetricKind.VOLUME_PERCENT_AT_RX_PERCENT),
)
_NAMED = {"volume": MetricKind.VOLUME, "dmin": MetricKind.DMIN, "dmax": MetricKind.DMAX,
          "dmean": MetricKind.DMEAN}


def _format_number(x: float) -> str:
    text = repr(float(x))
    text = text.removesuffix(".0")
    return text


@dataclass(frozen=True)
class DVHMetric:
    """One DVH metric.

    Attributes
    ----------
    kind : MetricKind
    x : float or None
        The number in the metric (percent, cc or Gy, by ``kind``); ``None`` for
        ``volume``, ``Dmin``, ``Dmax`` and ``Dmean``.
    """

    kind: MetricKind
    x: float | None = None

    def __post_init__(self) -> None:
        needs_x = self.kind not in (MetricKind.VOLUME, MetricKind.DMIN, MetricKind.DMAX,
                                    MetricKind.DMEAN)
        if needs_x != (self.x is not None):
            raise MetricError(f"Metric kind {self.kind.value!r} "
                              f"{'needs' if needs_x else 'takes no'} number x.")
        if self.x is not None:
            x = float(self.x)
            if not math.isfinite(x) or x < 0:
                raise MetricError(f"Metric number must be finite and >= 0, got {self.x}.")
            if self.kind in (MetricKind.DOSE_AT_PERCENT,) and x > 100:
                raise MetricError(f"D{_format_number(x)}%: a percentage of volume cannot exceed 100.")
            object.__setattr__(self, "x", x)

    @classmethod
    def parse(cls, text: str | DVHMetric) -> DVHMetric:
        """Parse a metric string such as ``"D95%"``, ``"D0.03cc"``, ``"V20Gy"``.

        Raises
        ------
        MetricError
            The text does not follow the grammar (the message lists it).
        """
        if isinstance(text, DVHMetric):
            return text
        if not isinstance(text, str):
            raise MetricError(f"A DVH metric must be a string, got {type(text).__name__}.")
        s = text.strip()
        if s.lower() in _NAMED:
            return cls(_NAMED[s.lower()])
        for pattern, kind in _PATTERNS:
            m = pattern.match(s)
            if m:
                return cls(kind, float(m.group(1)))
        hint = ""
        if re.match(rf"^[DV]{_NUMBER}$", s, re.IGNORECASE):
            hint = f" Add a unit: {s}% or {s}cc (D) / {s}Gy or {s}% (V)."
        raise MetricError(
            f"Cannot parse DVH metric {text!r}.{hint} Known forms: volume, Dmin, Dmax, Dmean, "
            "D<x>%, D<x>cc, V<x>Gy, V<x>Gy%, V<x>% (of prescription).")

    @property
    def unit(self) -> str:
        """Unit of the metric's value: ``"Gy"``, ``"cc"`` or ``"%"``."""
        return self.kind.unit

    @property
    def needs_prescription(self) -> bool:
        return self.kind is MetricKind.VOLUME_PERCENT_AT_RX_PERCENT

    def __str__(self) -> str:
        k = self.kind
        if self.x is None:
            return k.value
        x = _format_number(self.x)
        return {
            MetricKind.DOSE_AT_PERCENT: f"D{x}%",
            MetricKind.DOSE_AT_CC: f"D{x}cc",
            MetricKind.VOLUME_CC_AT_GY: f"V{x}Gy",
            MetricKind.VOLUME_PERCENT_AT_GY: f"V{x}Gy%",
            MetricKind.VOLUME_PERCENT_AT_RX_PERCENT: f"V{x}%",
        }[k]


DEFAULT_METRICS: tuple[DVHMetric, ...] = tuple(DVHMetric.parse(s) for s in (
    "volume", "Dmin", "Dmax", "Dmean", "D99%", "D98%", "D95%", "D50%", "D2%", "D1%",
    "D0.03cc", "D0.035cc"))
"""Metrics reported when none are requested (issue 3)."""
