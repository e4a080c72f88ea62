"""Forked workers (contourqa.parallel): the same results as one process, whatever
happens to a child; DVHs and structure sets do not depend on the number of workers.

The checks that need a child to be forked run in a fresh interpreter (:func:`_fresh`):
``map_forked`` runs sequentially in a process with other threads, and earlier tests
leave library threads behind (dask's offload thread)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from datapaths import REPO
from phantom_loading import load_single_case

from contourqa.dvh import compute_dvhs, dvh_report
from contourqa.parallel import default_workers, map_forked, shared_array

PARENT = os.getpid()


def _square_or_die(x: int) -> int:
    if os.getpid() != PARENT:
        os._exit(7)  # the child crashes on its first item: the parent computes them all
    sum(range(100_000))  # slow enough for the child to take an item
    return x * x


def _fails_on_five(x: int) -> int:
    if x == 5:
        raise ValueError("five")
    return x


def _pid(_: int) -> int:
    return os.getpid()


def test_results_keep_the_order_of_the_items() -> None:
    assert map_forked(lambda x: x * x, list(range(50)), workers=2) == [x * x for x in range(50)]
    assert map_forked(lambda x: x, [], workers=2) == []


def _fresh(check: str) -> None:
    """Run ``check`` (a function of this module) in a fresh interpreter, no threads."""
    here = Path(__file__).parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(here), str(here.parent)])}
    proc = subprocess.run([sys.executable, "-c", f"import test_parallel as t; t.{check}()"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_work_is_shared_between_processes() -> None:
    _fresh("_check_work_is_shared")


def test_a_crashed_childs_items_are_computed_here() -> None:
    _fresh("_check_crashed_child")


def test_children_write_into_a_shared_array() -> None:
    _fresh("_check_shared_array")


def test_dvhs_do_not_depend_on_the_number_of_workers() -> None:
    _fresh("_check_dvhs_independent_of_workers")


def _check_work_is_shared() -> None:
    assert threading.active_count() == 1
    pids = set(map_forked(lambda x: (os.sched_yield(), sum(range(200_000)), _pid(x))[2],
                          list(range(40)), workers=2))
    assert PARENT in pids
    assert len(pids) == 2


def _check_crashed_child() -> None:
    assert map_forked(_square_or_die, list(range(10)), workers=2) == [x * x for x in range(10)]


def test_an_exception_surfaces_in_the_caller() -> None:
    with pytest.raises(ValueError, match="five"):
        map_forked(_fails_on_five, list(range(10)), workers=2)


def _check_shared_array() -> None:
    out = shared_array(1000)

    def fill(i: int) -> int:
        sum(range(200_000))  # long enough for the child to take items
        out[i * 100:(i + 1) * 100] = np.arange(100) + 1000 * i + (os.getpid() != PARENT)
        return os.getpid()

    pids = map_forked(fill, list(range(10)), workers=2)
    from_child = [i for i, p in enumerate(pids) if p != PARENT]
    assert from_child  # the child's writes are seen here
    for i in range(10):
        expected = np.arange(100) + 1000 * i + (i in from_child)
        np.testing.assert_array_equal(out[i * 100:(i + 1) * 100], expected)
    assert shared_array(0).size == 0


def test_default_workers_follows_the_cpus_this_process_may_use() -> None:
    """Restricted to one CPU (as a batch scheduler or taskset does), one worker, not
    every CPU of the machine."""
    cpu = min(os.sched_getaffinity(0))
    code = ("import os; from contourqa.parallel import default_workers; "
            f"os.sched_setaffinity(0, {{{cpu}}}); print(default_workers())")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "1"
    assert default_workers() == len(os.sched_getaffinity(0)) >= 1


def _check_dvhs_independent_of_workers() -> None:
    pids = set(map_forked(lambda x: (sum(range(200_000)), _pid(x))[1], list(range(20)), workers=2))
    assert len(pids) == 2  # forking does happen here
    case = load_single_case(REPO / "test_data" / "demo_case" / "dicom")
    one = compute_dvhs(case.structure_set.rois, case.dose, workers=1)
    two = compute_dvhs(case.structure_set.rois, case.dose, workers=2)
    assert list(one) == list(two) == list(dict.fromkeys(r.name for r in case.structure_set.rois))
    for name, d in one.items():
        np.testing.assert_array_equal(d.cumulative_cc, two[name].cumulative_cc)
        assert (d.min_gy, d.max_gy, d.mean_gy, d.volume_cc) == \
            (two[name].min_gy, two[name].max_gy, two[name].mean_gy, two[name].volume_cc)
    a = dvh_report(case.structure_set, case.dose, uncertainty=True, workers=1)
    b = dvh_report(case.structure_set, case.dose, uncertainty=True, workers=2)
    assert a.values == b.values and a.bands == b.bands


def test_dvhs_pickle_compactly_and_whole() -> None:
    import pickle

    case = load_single_case(REPO / "test_data" / "demo_case" / "dicom")
    for d in compute_dvhs(case.structure_set.rois, case.dose).values():
        payload = pickle.dumps(d)
        back = pickle.loads(payload)
        for name in ("dose_edges_gy", "cumulative_cc", "differential_cc"):
            np.testing.assert_array_equal(getattr(back, name), getattr(d, name))
        assert (back.roi_name, back.volume_cc, back.conventions, back.problems) == \
            (d.roi_name, d.volume_cc, d.conventions, d.problems)
        if len(d.cumulative_cc) > 100:  # edges and differential are not sent
            assert len(payload) < 1.5 * d.cumulative_cc.nbytes + 10_000


def test_a_process_with_other_threads_runs_sequentially() -> None:
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        pids = set(map_forked(lambda x: (sum(range(200_000)), _pid(x))[1], list(range(20)),
                              workers=2))
    finally:
        stop.set()
        thread.join()
    assert pids == {PARENT}
