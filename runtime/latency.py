"""Latency: timing a backend's calls (alone or interleaved with others, as trtexec times) and the
statistics shared by the benchmark, the video loop and the comparison report.

All times are milliseconds. Percentiles use numpy's default (linear interpolation), so a report's
figures can be recomputed from its per-frame records with ``numpy.percentile``.
"""
from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Iterable

import numpy as np

if TYPE_CHECKING:
    from runtime.backends import Backend

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


DEVICE_TIMES = (("compute", "compute_ms"), ("h2d", "h2d_ms"), ("d2h", "d2h_ms"))
def _progress(total: int, enabled: bool):
    """A tqdm bar on stderr (disabled when ``enabled`` is false), or None if tqdm is missing."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc="benchmark", unit="it", file=sys.stderr, disable=not enabled, leave=False)


def time_once(backend: Backend, batch: np.ndarray) -> dict[str, float]:
    """One timed ``backend.infer(batch)``: ``host`` ms, plus the device times the backend reported."""
    start = time.perf_counter()
    backend.infer(batch)
    record = {"host": (time.perf_counter() - start) * 1000.0}
    device_times = backend.last_device_times or {}
    record.update({key: float(device_times[src]) for key, src in DEVICE_TIMES if src in device_times})
    return record


def time_inference(backend: Backend, batch: np.ndarray, iterations: int, warmup: int,
                   progress: bool = False) -> list[dict[str, float]]:
    """Run ``warmup`` untimed then ``iterations`` timed ``backend.infer(batch)`` calls.

    Returns one record per timed call: ``host`` (ms, perf_counter around infer) plus ``compute``,
    ``h2d``, ``d2h`` (ms) where the backend reported device times for that call.
    """
    bar = _progress(warmup + iterations, progress)
    for _ in range(warmup):
        backend.infer(batch)
        if bar is not None:
            bar.update()
    records: list[dict[str, float]] = []
    for _ in range(iterations):
        records.append(time_once(backend, batch))
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    return records


REWARM_CALLS = 1
"""Untimed calls of a model before each of its timed calls in an interleaved run. A deployment runs
one model; right after another model the caches hold the other's weights: measured here (2-core
EPYC, 976x208), ERFNet took 81 ms right after a ResNet-101 + PSP call against 57 ms after its own."""


def time_interleaved(runners: list[Backend], batches: list[np.ndarray], iterations: int, warmup: int,
                     progress: bool = False, rewarm: int = REWARM_CALLS) -> list[list[dict[str, float]]]:
    """Time several models in one interleaved run: every round runs each model (``rewarm`` untimed
    calls, then one timed call; the order alternates between rounds), so drift of the machine
    (clock, load, other processes) falls on all alike. ``warmup`` untimed rounds first. Returns
    one record list per model (as :func:`time_inference`)."""
    bar = _progress((warmup + iterations) * len(runners), progress)
    records: list[list[dict[str, float]]] = [[] for _ in runners]
    for round_index in range(warmup + iterations):
        order = range(len(runners)) if round_index % 2 == 0 else reversed(range(len(runners)))
        for k in order:
            for _ in range(rewarm):
                runners[k].infer(batches[k])
            record = time_once(runners[k], batches[k])
            if round_index >= warmup:
                records[k].append(record)
            if bar is not None:
                bar.update()
    if bar is not None:
        bar.close()
    return records


def summarize_records(records: list[dict[str, float]]) -> dict[str, dict[str, float | int]]:
    """``{"host": summarize(...)}`` plus each device series present in every record."""
    summary = {"host": summarize(r["host"] for r in records)}
    for key, _ in DEVICE_TIMES:
        if records and all(key in r for r in records):
            summary[key] = summarize(r[key] for r in records)
    return summary
