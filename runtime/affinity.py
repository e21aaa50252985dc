"""Which CPU cores the video loop's threads run on: the model's kept apart from decoding and encoding.

On a CPU the loop runs three kinds of work at once: the model (the main thread, plus ONNX Runtime's
pool when it has more than one intra-op thread), the reader (decode + warp) and the writer (draw +
encode). When the model runs on fewer threads than there are cores, the reader and writer are
pinned to the last allowed core and the model's thread to the others, so the scheduler does not
move the model onto the core the I/O is using (nor the I/O onto the model's). Measured on 2 cores
(AMD EPYC, 320x64 ERFNet INT8, one intra-op thread, output video on, 6 interleaved rounds of
benchmarks/video_loop.py ``--pin on off``): loop / model-only FPS 0.90 (0.87-0.92) pinned against
0.85 (0.78-0.91), pinned faster in 5 of 6 rounds; no difference without the output video (the
I/O core is then mostly idle) nor for the 10 ms FP32 model (0.97 both).

Linux only (``os.sched_setaffinity`` pins the calling thread); elsewhere, or with a single allowed
core, :func:`plan_cores` returns None and nothing is pinned. The cores allowed to the process
(``taskset``, a container's cpuset) are the ones divided.
"""
from __future__ import annotations

import os
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


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
        """Cores for the model's thread running ``threads`` intra-op threads: those the I/O does not
        use when they are enough, else None (no pinning: the model needs every core)."""
        if threads is None:
            return None
        rest = self.cores - self.io
        return rest if threads <= len(rest) else None

    def describe(self) -> dict[str, list[int]]:
        return {"cores": sorted(self.cores), "io": sorted(self.io)}


def plan_cores(cores: Collection[int] | None = None) -> CorePlan | None:
    """The last allowed core for the reader and writer, the rest for the model; None with fewer
    than two cores or where threads cannot be pinned."""
    cores = allowed_cores() if cores is None else frozenset(cores)
    if not cores or len(cores) < 2:
        return None
    return CorePlan(frozenset(cores), frozenset({max(cores)}))


def pin_current_thread(cores: Collection[int] | None) -> None:
    """Restrict the calling thread to ``cores`` (None: leave it as it is)."""
    if cores is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(cores))


@contextmanager
def restored_affinity() -> Iterator[None]:
    """Give the calling thread back the cores it had on entry, however the block ends."""
    before = allowed_cores()
    try:
        yield
    finally:
        pin_current_thread(before)
