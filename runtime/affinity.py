"""Which CPU cores the video loop's threads run on: the model's kept apart from decoding and encoding.

On a CPU the loop runs three kinds of work at once: the model (the main thread, plus ONNX Runtime's
pool when it has more than one intra-op thread), the reader (decode + warp) and the writer (draw +
encode). When the model runs on fewer threads than there are cores, the reader and writer are
pinned to the last allowed core and the model's thread to the others, so the scheduler does not
move the model onto the core the I/O is using (nor the I/O onto the model's). Measured on 2 cores
(AMD EPYC, 320x64 ERFNet INT8, one intra-op thread, output video on, 6 interleaved rounds of
benchmarks/video_loop.py ``--pin on off``): loop / model-only FPS 0.90 pinned against 0.86 (medians
over rounds), pinned faster in 5 of 6 paired rounds; without the output video (the I/O core is
then mostly idle) and for the 10 ms FP32 model (0.97 both) the difference is within noise.

With a thread trial (:mod:`runtime.thread_trial`) the candidate with every core runs unpinned
(its thread is given every core back) and, once it is chosen, the reader and writer get every
core back too. ONNX Runtime's intra-op pool threads are created while the loading thread is on the
model's cores, so they stay off the I/O core.

Linux only (``os.sched_setaffinity``); elsewhere, or with a single allowed core,
:func:`plan_cores` returns None and nothing is pinned. The cores allowed to the process
(``taskset``, a container's cpuset) are the ones divided.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


def usable_cores() -> int:
    """CPU cores this process may run on."""
    cores = allowed_cores()
    return len(cores) if cores is not None else os.cpu_count() or 1


def allowed_cores() -> frozenset[int] | None:
    """Cores the calling thread may run on; None where threads cannot be pinned (not Linux)."""
    if not hasattr(os, "sched_getaffinity") or not hasattr(os, "sched_setaffinity"):
        return None
    return frozenset(os.sched_getaffinity(0))


@dataclass(frozen=True)
class CorePlan:
    """``cores``: all allowed cores; ``io``: those of the reader and writer threads."""

    cores: frozenset[int]
    io: frozenset[int]

    def model_cores(self, threads: int | None) -> frozenset[int] | None:
        """Cores for the model's threads running ``threads`` intra-op threads: those the I/O does not
        use when they are enough, else None (the model needs every core)."""
        if threads is None:
            return None
        rest = self.cores - self.io
        return rest if threads <= len(rest) else None

    def model_threads_cores(self, threads: int | None) -> frozenset[int]:
        """The model's cores as they are to be set: :meth:`model_cores`, else all cores (a thread
        pinned by an earlier candidate of a thread trial is given every core back)."""
        return self.model_cores(threads) or self.cores

    def io_cores(self, threads: int | None) -> frozenset[int]:
        """The reader's and writer's cores beside a model of ``threads`` threads: the I/O core when
        the model leaves it free, else all cores (nothing to keep apart)."""
        return self.io if self.model_cores(threads) is not None else self.cores


def plan_cores(cores: Collection[int] | None = None) -> CorePlan | None:
    """The last allowed core for the reader and writer, the rest for the model; None with fewer
    than two cores or where threads cannot be pinned."""
    cores = allowed_cores() if cores is None else frozenset(cores)
    if not cores or len(cores) < 2:
        return None
    return CorePlan(frozenset(cores), frozenset({max(cores)}))


_set_here = threading.local()  # the cores this module last gave the calling thread


def pin_current_thread(cores: Collection[int] | None) -> None:
    """Restrict the calling thread to ``cores`` (None: leave it as it is). No system call when
    this module already gave the thread exactly these cores (the video loop calls it per frame)."""
    if cores is None or not hasattr(os, "sched_setaffinity"):
        return
    wanted = frozenset(cores)
    if getattr(_set_here, "cores", None) == wanted:
        return
    os.sched_setaffinity(0, wanted)
    _set_here.cores = wanted


def pin_thread(thread: threading.Thread | None, cores: Collection[int] | None) -> None:
    """Restrict another running thread to ``cores`` (by its native ID; nothing if it has not started
    or ended, or where threads cannot be pinned)."""
    native = getattr(thread, "native_id", None)
    if cores is None or native is None or not hasattr(os, "sched_setaffinity") or not thread.is_alive():
        return
    try:
        os.sched_setaffinity(native, set(cores))
    except ProcessLookupError:  # ended meanwhile
        pass


@contextmanager
def pinned(cores: Collection[int] | None) -> Iterator[None]:
    """The calling thread on ``cores`` for the block, then its cores back: threads created inside
    (ONNX Runtime's intra-op pool, made when a session is created) inherit ``cores``."""
    with restored_affinity():
        pin_current_thread(cores)
        yield


@contextmanager
def restored_affinity() -> Iterator[None]:
    """Give the calling thread back the cores it had on entry, however the block ends."""
    before = allowed_cores()
    try:
        yield
    finally:
        pin_current_thread(before)
