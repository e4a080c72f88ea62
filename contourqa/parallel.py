"""Sharing independent work items between forked worker processes: the ROIs of a
DVH run, the contour data of a structure set's ROIs.

The items are handed out one at a time to ``workers`` processes: this one and
``workers - 1`` children forked from it, which inherit the data (dose grid, contours,
file bytes) without copying it.  The work queue is a pipe holding the item indices,
4 bytes each; reading 4 bytes from a pipe is atomic, so every item is taken by
exactly one process, and a slow item does not hold the others back.  Children send
their results back pickled through a second pipe; bulky results (numbers) are better
written by the workers into a :func:`shared_array`, which the children share with
this process, so that nothing has to be pickled and piped.

Results never depend on the number of workers.  Where a child fails (an exception,
a crash, a result that does not unpickle), this process computes that child's items
itself, so an error surfaces here, as it would in a sequential run.  Without
``os.fork`` (Windows), and in a process running other threads (a child would inherit
their locks in whatever state they are, e.g. a progress display's), the run is
sequential.
"""

from __future__ import annotations

import mmap
import multiprocessing
import os
import pickle
import struct
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

__all__ = ["default_workers", "map_forked", "process_pool_context", "shared_array"]

T = TypeVar("T")
R = TypeVar("R")

_INDEX = struct.Struct("<I")
_MAX_QUEUED = 8000  # indices that fit in a pipe's buffer (64 KiB) before anyone reads


def shared_array(size: int) -> NDArray[np.float64]:
    """A float64 array of ``size`` zeros in memory shared with the children that
    :func:`map_forked` forks later (an anonymous shared mapping)."""
    if size <= 0:
        return np.zeros(0)
    buffer = mmap.mmap(-1, size * 8)
    return np.frombuffer(buffer, dtype=np.float64, count=size)


def default_workers() -> int:
    """Processes to use by default: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - platforms without sched_getaffinity
        return max(1, os.cpu_count() or 1)


def map_forked(func: Callable[[T], R], items: Sequence[T], *, workers: int = 1) -> list[R]:
    """``[func(x) for x in items]``, computed by up to ``workers`` processes.

    Items are taken in order, so put the costly ones first.  ``func``'s results must
    pickle.  An exception raised by ``func`` propagates from this process.
    """
    n_children = min(workers, len(items)) - 1
    if n_children <= 0 or not hasattr(os, "fork") or len(items) > _MAX_QUEUED \
            or threading.active_count() > 1:
        return [func(x) for x in items]
    queue_r, queue_w = os.pipe()
    os.write(queue_w, b"".join(_INDEX.pack(i) for i in range(len(items))))
    os.close(queue_w)
    children: list[tuple[int, int]] = []
    for _ in range(n_children):
        result_r, result_w = os.pipe()
        _widen(result_w)
        pid = os.fork()
        if pid == 0:  # child: take items until the queue is empty, send the results
            os.close(result_r)
            code = 0
            try:
                done = {i: func(items[i]) for i in _taken(queue_r)}
                payload = pickle.dumps(done, protocol=pickle.HIGHEST_PROTOCOL)
            except BaseException:  # the parent redoes this child's share
                payload, code = b"", 1
            try:
                with os.fdopen(result_w, "wb") as out:
                    out.write(payload)
            finally:
                os._exit(code)
        os.close(result_w)
        children.append((pid, result_r))
    results: dict[int, R] = {}
    try:
        for i in _taken(queue_r):
            results[i] = func(items[i])
    finally:
        os.close(queue_r)
        for pid, result_r in children:
            with os.fdopen(result_r, "rb") as inp:
                payload = inp.read()
            os.waitpid(pid, 0)
            try:
                results.update(pickle.loads(payload))
            except Exception:  # noqa: S110 - a failed child's items are redone below
                pass
    return [results[i] if i in results else func(items[i]) for i in range(len(items))]


def _widen(fd: int) -> None:
    """Let a result pipe hold 1 MiB (Linux; 64 KiB by default), so that a child writes
    its results in one go instead of waiting on the reader every 64 KiB."""
    try:
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except (ImportError, OSError):
        pass


def _taken(queue_r: int) -> Iterator[int]:
    """Claim items from the queue one at a time, until it is empty."""
    while len(raw := os.read(queue_r, _INDEX.size)) == _INDEX.size:
        yield _INDEX.unpack(raw)[0]


def process_pool_context(*, preload: Sequence[str] = ()) -> multiprocessing.context.BaseContext:
    """The start method of contourqa's process pools (audit, DICOM node).

    ``forkserver`` where available (never ``fork``: the callers run threads), else
    ``spawn``.  The fork server is started here, with ``preload`` imported in it, and
    without the working directory on its ``sys.path``: it runs as ``python -c``, whose
    path starts with the working directory (Python 3.11 does not pass the parent's path
    on), so a ``contourqa/`` folder there (a clone, seen from its parent) would shadow
    an editable install as an empty namespace package and every worker would die on
    import.  ``PYTHONSAFEPATH`` keeps it off; spawned workers get the parent's path.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    from multiprocessing import forkserver

    ctx = multiprocessing.get_context("forkserver")
    if preload:
        ctx.set_forkserver_preload(list(preload))
    with _environment(PYTHONSAFEPATH="1"):
        forkserver.ensure_running()
    return ctx


class _environment:
    """Set environment variables for the duration of a ``with`` block."""

    def __init__(self, **values: str) -> None:
        self._values = values
        self._saved: dict[str, str | None] = {}

    def __enter__(self) -> None:
        for k, v in self._values.items():
            self._saved[k] = os.environ.get(k)
            os.environ[k] = v

    def __exit__(self, *exc: object) -> None:
        for k, old in self._saved.items():
            if old is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = old
