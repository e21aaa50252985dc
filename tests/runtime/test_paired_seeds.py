"""Paired intervals: seed-paired Student-t and image-paired bootstrap."""
import math
import shutil

import numpy as np
import pytest

from runtime.culane import CulaneDataset
from runtime.paired import bootstrap_interval, f1_of, per_image_counts, seed_interval, t975


def test_seed_interval_is_the_t_interval_of_the_differences():
    mean, low, high = seed_interval([61.0, 62.0, 63.0], [60.0, 60.0, 60.0])  # differences 1, 2, 3: sd 1
    assert mean == pytest.approx(2.0)
    assert (high - mean) == pytest.approx(4.303 / math.sqrt(3)) and (mean - low) == pytest.approx(high - mean)
    # a constant offset is exact however noisy the seeds are: pairing removes the seed noise
    assert seed_interval([50.0, 70.0, 60.0], [49.0, 69.0, 59.0]) == pytest.approx((1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="differ in number"):
        seed_interval([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="at least 2 seeds"):
        t975(0)


def test_bootstrap_interval_is_zero_for_equal_methods_and_positive_for_a_uniformly_better_one():
    rng = np.random.default_rng(0)
    base = np.stack([np.stack([rng.integers(0, 4, 200), rng.integers(0, 3, 200), rng.integers(0, 3, 200)], axis=1) for _ in range(3)])
    assert bootstrap_interval(base, base) == (0.0, 0.0, 0.0)
    better = base.copy()
    better[..., 1] = 0  # the same hits without any false positive, on every image
    point, low, high = bootstrap_interval(better, base)
    assert 0 < low <= point <= high
    assert point == pytest.approx(float(f1_of(better.sum(axis=(0, 1))) - f1_of(base.sum(axis=(0, 1)))))
    with pytest.raises(ValueError, match="seeds, images, 3"):
        bootstrap_interval(better[0], base[0])


def test_a_few_images_give_a_wide_interval_many_a_narrow_one():
    rng = np.random.default_rng(1)

    def counts(n):
        tp = rng.integers(0, 4, (1, n))
        return np.stack([tp, rng.integers(0, 3, (1, n)), rng.integers(0, 3, (1, n))], axis=2)

    few = bootstrap_interval(counts(20), counts(20))
    many = bootstrap_interval(counts(2000), counts(2000))
    assert (many[2] - many[1]) < 0.5 * (few[2] - few[1])


def test_per_image_counts_read_the_predictions_a_run_wrote(tiny_dataset, tmp_path):
    data = CulaneDataset(tiny_dataset)
    samples = data.read_list("test.txt").samples
    pred = tmp_path / "pred"
    for s in samples:  # the ground truth as predictions: every lane a hit
        (pred / s.lines_name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(tiny_dataset / s.lines_name, pred / s.lines_name)
    images, counts = per_image_counts(tiny_dataset, pred)
    assert images == sorted(s.image for s in samples) and counts.shape == (len(samples), 3)
    assert counts[:, 0].sum() > 0 and counts[:, 1:].sum() == 0
    (pred / samples[0].lines_name).unlink()
    with pytest.raises(Exception, match="no prediction"):
        per_image_counts(tiny_dataset, pred)
