"""Image-paired bootstrap intervals of a CULane F1 difference (numpy only, torch-free).

Two models scored on the same images are compared by resampling the *images* with replacement
(the same draw for both), recomputing each model's CULane F1 from its pooled tp/fp/fn, and taking
the 2.5/97.5 percentiles of the difference. The interval says whether the image set is large
enough to see the difference; a change whose interval holds 0 is not shown by these images.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

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
