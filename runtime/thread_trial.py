"""The video loop's CPU thread count, chosen on its own warm-up frames.

On a CPU the model shares the cores with the loop's reader (decode, warp) and writer (drawing,
encoding) threads. Whether the model runs faster in the loop with every core or with one left to
them depends on the model and the machine (measured on 2 cores: a 320x64 ERFNet in INT8 loops at
about 160 FPS with one intra-op thread and 120 with two; at 976x208 two threads win, 26 against
21 FPS): so the loop tries both. :class:`ThreadTrial` stands in for the loop's
:class:`runtime.predictor.FramePredictor`: the first ``frames_each`` warm-up frames go through the
model with ``cores`` threads, the next ``frames_each`` with ``cores - 1``, each candidate is
judged by the median loop period of its frames after the first ``SETTLE`` (the loop's real rate,
I/O contention included), and the faster one runs the rest of the video (the other session is
freed). Warm-up frames are processed and written as usual; only the timed frames come after.
"""
from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

from runtime.affinity import usable_cores

SETTLE = 2  # frames of each candidate not judged (a new session's first calls are slow)
MIN_FRAMES_EACH = SETTLE + 2


def candidate_threads(warmup: int, cores: int | None = None) -> list[int]:
    """Thread counts to try (best first guess first): ``[cores, cores - 1]``, or none when there is
    one core or too few warm-up frames to judge (``2 * MIN_FRAMES_EACH``)."""
    cores = usable_cores() if cores is None else cores
    return [cores, cores - 1] if cores >= 2 and warmup >= 2 * MIN_FRAMES_EACH else []


class ThreadTrial:
    """Calls ``pipelines[threads]`` (callables like :class:`runtime.predictor.FramePredictor`) in turn
    over the first ``frames_each`` frames each, then only the faster one. ``chosen`` (None until
    decided) and ``periods_ms`` (candidate -> judged median loop period) describe the outcome."""

    def __init__(self, pipelines: dict[int, Any], frames_each: int, on_decide: Any = None) -> None:
        if len(pipelines) < 2 or frames_each < MIN_FRAMES_EACH:
            raise ValueError(f"a trial needs 2 candidates and >= {MIN_FRAMES_EACH} frames each")
        self.pipelines = dict(pipelines)
        self.order = list(pipelines)
        self.frames_each = frames_each
        self.periods: dict[int, list[float]] = {t: [] for t in self.order}
        self.periods_ms: dict[int, float] = {}
        self.chosen: int | None = None
        self._calls = 0
        self._last: tuple[int, float] | None = None  # (candidate, start) of the previous call
        self.on_decide = on_decide  # called with the chosen thread count once decided

    @property
    def current(self) -> int:
        return self.chosen if self.chosen is not None else self.order[min(self._calls // self.frames_each, len(self.order) - 1)]

    @property
    def backend(self) -> Any:
        return self.pipelines[self.current].backend

    def preprocess(self, image: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The candidates' common preprocessing (called from the reader thread: any pipeline still held will do)."""
        return next(iter(self.pipelines.values())).preprocess(image, out)

    def __call__(self, image: np.ndarray, prepared: np.ndarray | None = None, prepare_ms: float = 0.0) -> Any:
        now = time.perf_counter()
        if self.chosen is None:
            if self._last is not None:
                candidate, start = self._last
                self.periods[candidate].append((now - start) * 1000.0)
            if self._calls == self.frames_each * len(self.order):
                self._decide()
        candidate = self.current
        self._last = (candidate, now)
        self._calls += 1
        return self.pipelines[candidate](image, prepared, prepare_ms)

    def _decide(self) -> None:
        self.periods_ms = {t: statistics.median(p[SETTLE:]) for t, p in self.periods.items()}
        self.chosen = min(self.order, key=lambda t: self.periods_ms[t])
        self.pipelines = {self.chosen: self.pipelines[self.chosen]}  # the other session is freed
        if self.on_decide is not None:
            self.on_decide(self.chosen)

    def describe(self) -> dict[str, Any]:
        """For the report's meta."""
        return {"candidates": self.order, "frames_each": self.frames_each, "judged_after": SETTLE,
                "loop_period_ms": {str(t): round(ms, 3) for t, ms in self.periods_ms.items()}, "chosen": self.chosen}
