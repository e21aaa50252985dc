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
numpy only; :func:`bootstrap_interval` and :func:`f1_of` live in :mod:`runtime.paired` (torch-free reports use them).
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
from runtime.paired import bootstrap_interval, f1_of  # the image-paired part lives in the torch-free runtime

__all__ = ["bootstrap_interval", "f1_of", "per_image_counts", "seed_interval", "t975"]

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
