"""Paired comparisons of two methods: seed-paired t intervals and image-paired bootstrap intervals.

Two methods trained with the same seeds (same student initialisation, same data order) are
compared by their differences, not their separate means:

- :func:`seed_interval`: the mean of the per-seed differences of total F1 and its 95 % Student-t
  interval (k seeds, k - 1 degrees of freedom). With 3 seeds t = 4.30: only a consistent
  difference excludes 0.
- :func:`bootstrap_interval`: the uncertainty from the *test images*: images are resampled with
  replacement (the same draw for both methods and every seed), the CULane F1 of each method is
  recomputed from its pooled tp/fp/fn, and the 2.5/97.5 percentiles of the difference are
  reported. It says whether the test set is large enough to see the difference, not whether
  another seed would.

Per-image counts come from the predictions a run's evaluation wrote (:func:`per_image_counts`).
numpy only.
"""
from __future__ import annotations

import math
import os
import statistics
from pathlib import Path

import numpy as np

from runtime.culane import CulaneDataset
from runtime.culane_metric import count_image
from runtime.errors import DataError
from runtime.lines import read_lines_file

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


def f1_of(counts: np.ndarray) -> np.ndarray:
    """(..., 3) tp, fp, fn -> (...) CULane F1 (0 where nothing was predicted or annotated)."""
    tp, fp, fn = counts[..., 0], counts[..., 1], counts[..., 2]
    denominator = 2 * tp + fp + fn
    return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)


def bootstrap_interval(method: np.ndarray, baseline: np.ndarray, resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """(seeds, images, 3) per-image counts of two methods on the same images -> (F1 difference of
    the pooled counts, low, high): 95 % percentile interval over image resamples, in F1 units."""
    if method.shape != baseline.shape or method.ndim != 3 or method.shape[2] != 3:
        raise ValueError(f"counts must both be (seeds, images, 3), got {method.shape} and {baseline.shape}")
    images = method.shape[1]
    pooled_m, pooled_b = method.sum(axis=0).astype(np.float64), baseline.sum(axis=0).astype(np.float64)  # (images, 3)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(images, np.full(images, 1.0 / images), size=resamples).astype(np.float64)  # (B, images)
    diff = f1_of(draws @ pooled_m) - f1_of(draws @ pooled_b)
    point = float(f1_of(pooled_m.sum(axis=0)) - f1_of(pooled_b.sum(axis=0)))
    low, high = np.percentile(diff, [2.5, 97.5])
    return point, float(low), float(high)


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
