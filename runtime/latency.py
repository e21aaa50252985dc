"""Latency statistics shared by the benchmark, the video loop and the comparison report.

All times are milliseconds. Percentiles use numpy's default (linear interpolation), so a report's
figures can be recomputed from its per-frame records with ``numpy.percentile``.
"""
from __future__ import annotations

import time
from typing import Iterable

import numpy as np

PERCENTILES = (50, 90, 95, 99)


def summarize(times_ms: Iterable[float]) -> dict[str, float | int]:
    """Summary of a series of durations (ms): count, mean, std, min, max, p50/p90/p95/p99, cv, fps.

    ``fps`` is 1000 / mean (throughput of a loop doing one item at a time); ``cv`` is std / mean.
    An empty series raises ValueError (there is nothing honest to report).
    """
    values = np.asarray(list(times_ms), dtype=np.float64)
    if values.size == 0:
        raise ValueError("no timings to summarize")
    mean = float(values.mean())
    out: dict[str, float | int] = {
        "count": int(values.size),
        "mean": mean,
        "std": float(values.std()),
        "min": float(values.min()),
        "max": float(values.max()),
    }
    for q in PERCENTILES:
        out[f"p{q}"] = float(np.percentile(values, q))
    out["median"] = out["p50"]
    out["cv"] = float(values.std() / mean) if mean > 0 else 0.0
    out["fps"] = 1000.0 / mean if mean > 0 else float("inf")
    return out


class Stopwatch:
    """``with Stopwatch() as sw: ...`` then ``sw.ms``: wall time of the block (perf_counter, ms)."""

    def __enter__(self) -> "Stopwatch":
        self.start = time.perf_counter()
        self.ms = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.ms = (time.perf_counter() - self.start) * 1000.0
