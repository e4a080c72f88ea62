"""When a received study is ready to check.

A study is *complete* when it holds at least one RT Plan and, for every plan, the RT
Structure Set the plan references, the images that structure set's contours
reference (or, when it lists none, at least one image of the series it references)
and an RT Dose that references the plan.  A complete study is checked as soon as no
association that delivered to it is still open (or ``settle_s`` after its last
object, whichever is first); an incomplete one is checked ``idle_s`` after its last
object, with what it has, and the report says what was missing.

Every object received bumps the study's *generation*; a study is checked once per
generation, so a re-sent object re-runs the check.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from contourqa.io.discovery import IndexedObject

__all__ = ["DueStudy", "StudyTracker", "missing_parts"]


def missing_parts(objects: dict[str, IndexedObject]) -> tuple[str, ...]:
    """What a study lacks to be complete (empty: complete).

    Parameters
    ----------
    objects : dict of SOP instance UID to IndexedObject
        The study's objects.

    Returns
    -------
    tuple of str
        One sentence per missing part, in a stable order.
    """
    plans = sorted((o for o in objects.values() if o.modality in ("RTPLAN", "RTIONPLAN")),
                   key=lambda o: o.sop_instance_uid or "")
    if not plans:
        return ("no RT Plan was received",)
    images_by_series: dict[str, int] = {}
    for o in objects.values():
        if o.modality in ("CT", "MR", "PT") and o.series_instance_uid:
            images_by_series[o.series_instance_uid] = images_by_series.get(
                o.series_instance_uid, 0) + 1
    doses = [o for o in objects.values() if o.modality == "RTDOSE"]
    out: list[str] = []
    for plan in plans:
        name = f"plan {plan.label or plan.sop_instance_uid}"
        if not plan.referenced_instances:
            out.append(f"{name} references no RT Structure Set")
        else:
            ss = objects.get(plan.referenced_instances[0])
            if ss is None or ss.modality != "RTSTRUCT":
                out.append(f"RT Structure Set {plan.referenced_instances[0]} referenced by "
                           f"{name} was not received")
            else:
                refs = ss.referenced_instances
                if refs:
                    absent = [u for u in refs if u not in objects]
                    if absent:
                        out.append(f"{len(absent)} of the {len(refs)} images referenced by the "
                                   f"structure set of {name} were not received")
                elif not any(images_by_series.get(s) for s in ss.referenced_series):
                    out.append(f"no image of the series referenced by the structure set of "
                               f"{name} was received")
        if not any(plan.sop_instance_uid in d.referenced_instances for d in doses):
            out.append(f"no RT Dose referencing {name} was received")
    return tuple(out)


@dataclass(frozen=True)
class DueStudy:
    """A study to check now."""

    study_uid: str
    generation: int
    complete: bool
    missing: tuple[str, ...]
    last_object_at: float   # time.monotonic() of the last object received


@dataclass
class _Study:
    objects: dict[str, IndexedObject] = field(default_factory=dict)
    generation: int = 0
    scheduled: int = 0             # last generation handed to a worker
    last_object_at: float = 0.0
    open_associations: set[int] = field(default_factory=set)


class StudyTracker:
    """Thread-safe record of every study received and which generation was checked.

    Parameters
    ----------
    idle_s : float
        Seconds after the last object at which an incomplete study is checked.
    settle_s : float
        Seconds after the last object at which a complete study is checked even
        though an association that delivered to it is still open.
    clock : callable
        ``time.monotonic`` (tests may pass another).
    """

    def __init__(self, *, idle_s: float, settle_s: float = 2.0,
                 clock: Callable[[], float] | None = None) -> None:
        self.idle_s = idle_s
        self.settle_s = min(settle_s, idle_s)
        self._clock = clock or time.monotonic
        self._lock = threading.Lock()
        self._studies: dict[str, _Study] = {}
        self.changed = threading.Event()

    def add(self, study_uid: str, obj: IndexedObject, *, association: int | None = None) -> int:
        """Record an object (a re-sent one replaces its earlier copy); returns the generation."""
        with self._lock:
            st = self._studies.setdefault(study_uid, _Study())
            if obj.sop_instance_uid:
                st.objects[obj.sop_instance_uid] = obj
            st.generation += 1
            st.last_object_at = self._clock()
            if association is not None:
                st.open_associations.add(association)
            gen = st.generation
        self.changed.set()
        return gen

    def association_ended(self, association: int) -> None:
        with self._lock:
            for st in self._studies.values():
                st.open_associations.discard(association)
        self.changed.set()

    def mark_checked(self, study_uid: str, generation: int) -> None:
        """A generation already checked (e.g. found on disk at start-up)."""
        with self._lock:
            st = self._studies.setdefault(study_uid, _Study())
            st.scheduled = max(st.scheduled, generation)

    def n_objects(self, study_uid: str) -> int:
        with self._lock:
            st = self._studies.get(study_uid)
            return len(st.objects) if st else 0

    def pending(self) -> list[str]:
        """Studies whose latest generation has not been handed to a worker."""
        with self._lock:
            return [u for u, st in self._studies.items() if st.generation > st.scheduled]

    def due(self, *, busy: Collection[str] = ()) -> list[DueStudy]:
        """Studies to check now, each marked as handed over; ``busy`` ones wait."""
        now = self._clock()
        out = []
        with self._lock:
            for uid, st in self._studies.items():
                if st.generation <= st.scheduled or uid in busy:
                    continue
                quiet = now - st.last_object_at
                missing = missing_parts(st.objects)
                ready = (quiet >= self.idle_s) or (not missing and (
                    not st.open_associations or quiet >= self.settle_s))
                if ready:
                    st.scheduled = st.generation
                    out.append(DueStudy(uid, st.generation, not missing, missing,
                                        st.last_object_at))
        return out

    def next_deadline(self) -> float | None:
        """Seconds until the earliest idle or settle deadline, or None."""
        now = self._clock()
        best: float | None = None
        with self._lock:
            for st in self._studies.values():
                if st.generation <= st.scheduled:
                    continue
                t = st.last_object_at + (self.settle_s if st.open_associations else self.idle_s)
                best = t - now if best is None else min(best, t - now)
        return None if best is None else max(best, 0.0)
