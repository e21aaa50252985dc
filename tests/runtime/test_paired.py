"""runtime.paired: the image-paired change of two models' F1, keyed by image."""
from __future__ import annotations

import numpy as np
import pytest

from runtime.paired import change_interval, f1_of, format_change


def test_change_pairs_images_by_name_not_by_order():
    rng = np.random.default_rng(3)
    base = {f"d/{i:03d}.jpg": [int(rng.integers(0, 4)), int(rng.integers(0, 2)), int(rng.integers(0, 2))] for i in range(120)}
    worse = {k: [max(tp - 1, 0), fp, fn + (tp > 0)] for k, (tp, fp, fn) in base.items()}  # one hit lost per image with hits
    shuffled = dict(sorted(worse.items(), reverse=True))
    change = change_interval(shuffled, base)
    pooled = lambda d: np.array(list(d.values())).sum(axis=0)
    assert change["points"] == pytest.approx(100 * float(f1_of(pooled(worse)) - f1_of(pooled(base))))
    assert change["high"] < 0 and change["low"] <= change["points"] <= change["high"]  # every image worse: the interval excludes 0
    assert change["images"] == 120
    same = change_interval(dict(reversed(list(base.items()))), base)  # the same counts in another order: paired, no change
    assert (same["points"], same["low"], same["high"]) == (0.0, 0.0, 0.0)


def test_only_the_shared_images_count_and_none_shared_is_an_error():
    a = {"x.jpg": [2, 0, 0], "y.jpg": [1, 1, 0], "only_a.jpg": [0, 5, 0]}
    b = {"x.jpg": [2, 0, 0], "y.jpg": [1, 1, 0], "only_b.jpg": [0, 0, 5]}
    change = change_interval(a, b)
    assert change["images"] == 2 and change["points"] == 0.0
    with pytest.raises(ValueError, match="share no scored image"):
        change_interval({"x.jpg": [1, 0, 0]}, {"z.jpg": [1, 0, 0]})


def test_format_change_gives_signed_points_and_the_interval():
    assert format_change({"points": -0.864, "low": -2.123, "high": 0.39}) == "-0.86 [-2.12, +0.39]"
    assert format_change(None) == "-"
