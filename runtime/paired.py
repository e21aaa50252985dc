"""Paired comparisons of two methods (numpy only, torch-free): image-paired bootstrap intervals of a
CULane F1 difference and seed-paired t intervals.

- :func:`bootstrap_interval`: two models scored on the same images are compared by resampling the
  *images* with replacement (the same draw for both and every seed), recomputing each model's CULane
  F1 from its pooled tp/fp/fn, and taking the 2.5/97.5 percentiles of the difference. It says
  whether the image set is large enough to see the difference (a change whose interval holds 0 is
  not shown by these images), not whether another seed would.
- :func:`seed_interval`: methods trained with the same seeds (same student initialisation, same
  data order) compared by the mean of their per-seed differences of total F1 and its 95 %
  Student-t interval (k seeds, k - 1 degrees of freedom). With 3 seeds t = 4.30: only a consistent
  difference excludes 0.

Per-image counts come from the predictions a run's evaluation wrote (:func:`per_image_counts`).
"""
from __future__ import annotations

import math
import os
import statistics
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from runtime.culane import CulaneDataset
from runtime.culane_metric import count_image
from runtime.errors import DataError
from runtime.lines import read_lines_file

RESAMPLES = 2000
CHUNK = 200  # resamples drawn at once


def f1_of(counts: np.ndarray) -> np.ndarray:
    """(..., 3) tp, fp, fn -> (...) CULane F1 (0 where nothing was predicted or annotated)."""
    tp, fp, fn = counts[..., 0], counts[..., 1], counts[..., 2]
    denominator = 2 * tp + fp + fn
    return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)


def bootstrap_interval(method: np.ndarray, baseline: np.ndarray, resamples: int = RESAMPLES, seed: int = 0) -> tuple[float, float, float]:
    """(seeds, images, 3) per-image counts of two methods on the same images -> (F1 difference of
    the pooled counts, low, high): 95 % percentile interval over image resamples, in F1 units."""
    if method.shape != baseline.shape or method.ndim != 3 or method.shape[2] != 3:
        raise ValueError(f"counts must both be (seeds, images, 3), got {method.shape} and {baseline.shape}")
    images = method.shape[1]
    pooled_m, pooled_b = method.sum(axis=0).astype(np.float64), baseline.sum(axis=0).astype(np.float64)  # (images, 3)
    rng = np.random.default_rng(seed)
    diff = np.empty(resamples)
    for start in range(0, resamples, CHUNK):  # (chunk, images) weights at a time: CULane's 34,680 test images fit in memory
        draws = rng.multinomial(images, np.full(images, 1.0 / images), size=min(CHUNK, resamples - start)).astype(np.float64)
        diff[start : start + len(draws)] = f1_of(draws @ pooled_m) - f1_of(draws @ pooled_b)
    point = float(f1_of(pooled_m.sum(axis=0)) - f1_of(pooled_b.sum(axis=0)))
    low, high = np.percentile(diff, [2.5, 97.5])
    return point, float(low), float(high)


def change_interval(model: Mapping[str, Sequence[int]], baseline: Mapping[str, Sequence[int]],
                    resamples: int = RESAMPLES) -> dict[str, Any]:
    """Per-image [tp, fp, fn] of two models ({image: counts}) -> the F1 change model - baseline in
    points with its 95 % image-paired bootstrap interval, over the images both were scored on."""
    images = sorted(set(model) & set(baseline))
    if not images:
        raise ValueError("the two models share no scored image")
    a = np.array([model[k] for k in images], dtype=np.int64)[None]
    b = np.array([baseline[k] for k in images], dtype=np.int64)[None]
    point, low, high = bootstrap_interval(a, b, resamples)
    return {"points": 100 * point, "low": 100 * low, "high": 100 * high, "images": len(images), "resamples": resamples}


def format_change(change: Mapping[str, Any] | None) -> str:
    """'-0.86 [-2.12, +0.39]' (points, 95 % interval), '-' for none."""
    if not change:
        return "-"
    return f"{change['points']:+.2f} [{change['low']:+.2f}, {change['high']:+.2f}]"

# two-sided 95 % quantiles of Student's t, by degrees of freedom (1..30); 1.96 beyond
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t975(dof: int) -> float:
    if dof < 1:
        raise ValueError("an interval over seeds needs at least 2 seeds")
    return T975[dof - 1] if dof <= len(T975) else 1.96


def seed_interval(method: list[float], baseline: list[float]) -> tuple[float, float, float]:
    """Per-seed paired values (same seed order) -> (mean difference, low, high), 95 %."""
    if len(method) != len(baseline):
        raise ValueError(f"paired seeds differ in number: {len(method)} vs {len(baseline)}")
    diffs = [m - b for m, b in zip(method, baseline)]
    mean = statistics.mean(diffs)
    half = t975(len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(len(diffs))
    return mean, mean - half, mean + half


def per_image_counts(data_root: str | os.PathLike[str], pred_dir: str | os.PathLike[str], list_name: str = "test.txt") -> tuple[list[str], np.ndarray]:
    """The images of ``list_name`` (sorted) and their (images, 3) tp, fp, fn from the predictions
    under ``pred_dir`` (CULane layout, as ``training.evaluate`` writes them)."""
    samples = sorted(CulaneDataset(data_root).read_list(list_name).samples, key=lambda s: s.image)
    counts = np.zeros((len(samples), 3), dtype=np.int64)
    for i, sample in enumerate(samples):
        predicted = Path(pred_dir) / sample.lines_name
        if not predicted.exists():
            raise DataError(predicted, "no prediction for this image: evaluate the run first")
        c = count_image(read_lines_file(Path(data_root) / sample.lines_name), read_lines_file(predicted))
        counts[i] = c.tp, c.fp, c.fn
    return [s.image for s in samples], counts
