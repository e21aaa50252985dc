import itertools
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.interpolate import CubicSpline

from runtime.culane_metric import (
    count_image,
    interpolate_lane,
    iou_matrix,
    match_lanes,
    opencv_draws_like_official,
    rasterize_lane,
    spline_interp_times,
)

GOLDEN = json.loads((Path(__file__).parent / "data" / "official_iou.json").read_text())


def lane(x0: float, slope: float, curv: float = 0.0, y0: float = 590, y1: float = 300) -> np.ndarray:
    y = np.arange(y0, y1 - 1, -10.0)
    t = y0 - y
    return np.stack([x0 + slope * t + curv * t * t, y], 1)


LANES = [lane(500, 0.9), lane(1100, -1.0, 0.0005), lane(-30, 2.4, 0, 590, 420), lane(1670, -2.2, -0.001, 560, 330)]


def test_identical_lanes_score_one():
    c = count_image(LANES, [l.copy() for l in LANES])
    assert (c.tp, c.fp, c.fn, c.f1) == (4, 0, 0, 1.0)
    c = count_image(LANES, LANES[:3] + [LANES[3] + [60.0, 0]])
    assert (c.precision, c.recall, c.f1) == (0.75, 0.75, 0.75)


def test_a_shift_wider_than_the_line_matches_nothing():
    c = count_image(LANES[:2], [l + [31.0, 0] for l in LANES[:2]])
    assert (c.tp, c.fp, c.fn) == (0, 2, 2)
    c = count_image(LANES[:2], [l + [8.0, 0] for l in LANES[:2]])  # well inside 30 px: still TP
    assert c.tp == 2


def test_lanes_with_fewer_than_two_points_count_but_match_nothing():
    one_point = np.array([[800.0, 500.0]])
    c = count_image(LANES[:1], [LANES[0], one_point])
    assert (c.tp, c.fp, c.fn) == (1, 1, 0)
    c = count_image([LANES[0], one_point], [LANES[0]])
    assert (c.tp, c.fp, c.fn) == (1, 0, 1)
    c = count_image([np.zeros((0, 2))], [])  # an empty annotation line is still an annotation
    assert (c.tp, c.fp, c.fn) == (0, 0, 1)
    assert c.precision is None and c.f1 == 0.0  # nothing detected: F1 0, not undefined


def test_no_annotations_means_false_positives_only():
    c = count_image([], LANES)
    assert (c.tp, c.fp, c.fn) == (0, 4, 0)
    assert c.recall is None and c.f1 is None and c.precision == 0.0


def test_matching_maximises_total_similarity_not_greedy():
    # Greedy (row 0 takes its best, 0.9) leaves row 1 with 0.1: one TP. The optimum pairs
    # (0, 1) and (1, 0): 0.8 + 0.85, two TPs.
    sim = np.array([[0.9, 0.8], [0.85, 0.1]])
    assert match_lanes(sim) == [1, 0]
    assert match_lanes(sim.T) == [1, 0]
    wide = np.array([[0.1, 0.7, 0.6], [0.2, 0.65, 0.0]])  # more detections than annotations
    assert match_lanes(wide) == [2, 1]
    tall = wide.T  # more annotations than detections: one stays unmatched
    assert match_lanes(tall) == [-1, 1, 0]


def test_matching_reaches_the_optimum_on_random_matrices():
    rng = np.random.default_rng(0)
    for _ in range(300):
        m, n = (int(v) for v in rng.integers(1, 5, size=2))
        sim = rng.choice(np.linspace(0, 1, 21), size=(m, n))  # values >= 0.05 apart: no near ties
        match = match_lanes(sim)
        got = sum(sim[i, j] for i, j in enumerate(match) if j >= 0)
        if m <= n:
            best = max(sum(sim[i, c] for i, c in enumerate(cols)) for cols in itertools.permutations(range(n), m))
        else:
            best = max(sum(sim[r, j] for j, r in enumerate(rows)) for rows in itertools.permutations(range(m), n))
        assert got == pytest.approx(best)
        assert len({j for j in match if j >= 0}) == sum(j >= 0 for j in match)  # one-to-one


def test_spline_is_the_natural_cubic_spline_over_chord_length():
    rng = np.random.default_rng(1)
    for _ in range(20):
        n = int(rng.integers(3, 30))
        y = 590 - 10.0 * np.arange(n)
        x = 700 + np.cumsum(rng.normal(0, 6, n))
        pts = np.stack([x, y], 1).astype(np.float32).astype(np.float64)
        ours = spline_interp_times(pts, 50)
        t = np.concatenate([[0], np.cumsum(np.hypot(*np.diff(pts, axis=0).T))])
        ref = CubicSpline(t, pts, bc_type="natural")
        ts = np.concatenate([np.concatenate([t[i] + (t[i + 1] - t[i]) / 50 * np.arange(50) for i in range(n - 1)]), t[-1:]])
        np.testing.assert_allclose(ours, ref(ts), atol=2e-3)


def test_drawing_one_polyline_equals_drawing_each_segment_on_the_full_canvas():
    rng = np.random.default_rng(2)
    for _ in range(30):
        pts = lane(rng.uniform(-150, 1790), rng.uniform(-3, 3), rng.uniform(-0.003, 0.003), 590, rng.uniform(250, 450))
        pts = pts[: int(rng.integers(2, len(pts) + 1))]
        full = np.zeros((590, 1640), np.uint8)
        poly = interpolate_lane(pts)
        for a, b in zip(poly[:-1], poly[1:]):  # the official loop of cv::line calls
            cv2.line(full, tuple(int(v) for v in np.rint(a)), tuple(int(v) for v in np.rint(b)), 1, 30)
        mask = rasterize_lane(pts)
        ours = np.zeros_like(full)
        ours[mask.y0 : mask.y0 + mask.mask.shape[0], mask.x0 : mask.x0 + mask.mask.shape[1]] = mask.mask
        np.testing.assert_array_equal(ours, full)
        assert mask.area == int(full.sum())


def test_opencv_draws_border_crossing_lanes_like_the_official_build():
    assert opencv_draws_like_official(), f"OpenCV {cv2.__version__}: install opencv-python-headless<4.13"


@pytest.mark.parametrize("case", range(len(GOLDEN["cases"])))
def test_iou_and_counts_equal_the_official_evaluator(case):
    c = GOLDEN["cases"][case]
    annotations = [np.array(a).reshape(-1, 2) for a in c["annotations"]]
    detections = [np.array(d).reshape(-1, 2) for d in c["detections"]]
    if annotations and detections:
        official = np.array([[np.nan if v is None else v for v in row] for row in c["iou"]])  # 0/0 = NaN
        np.testing.assert_allclose(iou_matrix(annotations, detections), official, atol=1e-6, equal_nan=True)
    counts = count_image(annotations, detections)
    assert [counts.tp, counts.fp, counts.fn] == c["counts"]
