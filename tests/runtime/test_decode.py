import numpy as np
import pytest

from runtime.culane import CulaneDataset
from runtime.culane_metric import count_image
from runtime.decode import DecodeParams, LaneDecoder, softmax
from runtime.preprocess import Preprocess

PRE = Preprocess()


def probs_from_label(label_small: np.ndarray) -> np.ndarray:
    """A confident network: the one-hot label, slightly softened."""
    onehot = np.eye(5, dtype=np.float32)[label_small].transpose(2, 0, 1)
    return softmax(onehot * 6.0)


def test_decoding_a_label_recovers_its_lanes(tiny_dataset):
    ds = CulaneDataset(tiny_dataset)
    decoder = LaneDecoder(PRE)
    checked = 0
    for sample in ds.read_list("val_gt.txt").samples + ds.read_list("train_gt.txt").samples:
        truth = ds.read_lanes(sample)
        probs = probs_from_label(PRE.label(ds.read_label(sample)))
        lanes = decoder(probs, np.array(sample.exist, np.float32))
        assert [l.lane_id for l in lanes] == [i + 1 for i, e in enumerate(sample.exist) if e]
        counts = count_image(truth, [l.points for l in lanes])
        assert counts.tp == len(truth) and counts.fp == 0, sample.image
        for lane, gt in zip(lanes, truth):
            # points sit on sampled rows; compare x with the annotation on the same rows (the
            # row-argmax convention quantises flat, near-horizontal lanes to a few pixels)
            gt_x = np.interp(lane.points[:, 1], gt[::-1, 1], gt[::-1, 0])
            slope = np.median(np.abs(np.diff(gt[:, 0]) / np.diff(gt[:, 1])))
            if slope < 2.0:  # a flatter lane's label row is wide (16 px * sqrt(1 + slope^2)): argmax sits anywhere on it
                assert np.median(np.abs(lane.points[:, 0] - gt_x)) < 6.0
        checked += 1
    assert checked == 16


def test_rows_are_the_culane_rows():
    decoder = LaneDecoder(PRE)
    np.testing.assert_array_equal(decoder.image_rows, 589 - 20 * np.arange(18))
    assert decoder.net_rows[0] == 207 and decoder.net_rows.min() >= 0


def vertical_lane_probs(x_net: int, peak: float = 0.9, rows: slice = slice(None)) -> np.ndarray:
    probs = np.zeros((5, 208, 976), np.float32)
    probs[0] = 1.0
    profile = peak * (1.0 - np.abs(np.arange(-10, 11)) / 11.0)  # a ridge with its top at x_net
    probs[2, rows, x_net - 10 : x_net + 11] = profile
    return probs


def test_existence_gates_lanes():
    decoder = LaneDecoder(PRE)
    probs = vertical_lane_probs(400)
    assert [l.lane_id for l in decoder(probs, np.array([0.1, 0.9, 0.1, 0.1]))] == [2]
    assert decoder(probs, np.array([0.1, 0.4, 0.1, 0.1])) == []


def test_threshold_and_min_points():
    decoder = LaneDecoder(PRE)
    exist = np.array([0, 1, 0, 0], np.float32)
    assert decoder(vertical_lane_probs(400, peak=0.31), exist) == []  # below 0.3 after the blur
    one_row = vertical_lane_probs(400, rows=slice(203, 208))  # only the bottom sampled row
    assert decoder(one_row, exist) == []
    lanes = LaneDecoder(PRE, DecodeParams(min_points=1))(one_row, exist)
    assert len(lanes) == 1 and len(lanes[0].points) == 1
    x = lanes[0].points[0, 0]
    assert x == pytest.approx(PRE.net_to_image(400, 0)[0])


def test_shape_errors():
    decoder = LaneDecoder(PRE)
    with pytest.raises(ValueError, match=r"\(C, 208, 976\)"):
        decoder(np.zeros((5, 100, 100)), np.zeros(4))
    with pytest.raises(ValueError, match="need 4 existence"):
        decoder(np.zeros((5, 208, 976)), np.zeros(3))


def test_outlier_rule_removes_a_zigzag_point_and_is_off_by_default():
    from runtime.decode import drop_outliers

    y = np.arange(589.0, 249.0, -20.0)
    x = 800.0 + 0.8 * (589.0 - y)
    lane = np.stack([x, y], 1)
    zigzag = lane.copy()
    zigzag[5, 0] += 300.0  # a weak row maximum on a kerb
    kept = drop_outliers(zigzag, 40.0)
    assert len(kept) == len(lane) - 1 and not np.any(np.isclose(kept[:, 0], zigzag[5, 0]))
    assert np.array_equal(drop_outliers(lane, 40.0), lane)  # a clean lane is untouched
    curved = np.stack([800.0 + 0.002 * (589.0 - y) ** 2, y], 1)
    assert np.array_equal(drop_outliers(curved, 5.0), curved)  # a quadratic curve is a trend, not outliers
    assert DecodeParams().outlier_px is None
    assert DecodeParams.from_dict({k: v for k, v in DecodeParams().to_dict().items() if k != "outlier_px"}).outlier_px is None
