"""TuSimple accuracy / FP / FN: hand-computed cases, and agreement with a re-implementation of the
official ``LaneEval`` arithmetic (TuSimple/tusimple-benchmark ``evaluate/lane.py``) on random images."""
from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from runtime.errors import DataError
from lanedata.tusimple.evaluate import main
from lanedata.tusimple.metric import bench_files, bench_image, lane_slope, lane_threshold

YS = list(range(240, 720, 10))  # 48 rows, as in the TuSimple readme
N = len(YS)


def vertical(x: float) -> list[float]:
    return [float(x)] * N


def slanted(offset: float, k: float = 1.0) -> list[float]:
    """x = k*y + offset on every row (all x >= 0 for the offsets used)."""
    return [k * y + offset for y in YS]


def shifted(lane: list[float], dx: float) -> list[float]:
    return [x + dx if x >= 0 else x for x in lane]


def with_absent(lane: list[float], rows: slice) -> list[float]:
    out = list(lane)
    out[rows] = [-2.0] * len(out[rows])
    return out


# ----------------------------------------------------------------------------------------------
# The official arithmetic, re-stated (sklearn's LinearRegression slope: numpy.linalg.lstsq of the
# centred x on the centred y, as sklearn's _preprocess_data + scipy.linalg.lstsq compute it)
# ----------------------------------------------------------------------------------------------
class ReferenceLaneEval:
    pixel_thresh = 20
    pt_thresh = 0.85

    @staticmethod
    def get_angle(xs, y_samples):
        valid = xs >= 0
        xs, ys = xs[valid], y_samples[valid]
        if len(xs) > 1:
            X, t = ys.astype(float)[:, None], xs.astype(float)
            return np.arctan(np.linalg.lstsq(X - X.mean(axis=0), t - t.mean(), rcond=None)[0][0])
        return 0

    @staticmethod
    def line_accuracy(pred, gt, thresh):
        pred = np.array([p if p >= 0 else -100 for p in pred])
        gt = np.array([g if g >= 0 else -100 for g in gt])
        return np.sum(np.where(np.abs(pred - gt) < thresh, 1.0, 0.0)) / len(gt)

    @classmethod
    def bench(cls, pred, gt, y_samples, running_time):
        if any(len(p) != len(y_samples) for p in pred):
            raise ValueError("Format of lanes error.")
        if running_time > 200 or len(gt) + 2 < len(pred):
            return 0.0, 0.0, 1.0
        threshs = [cls.pixel_thresh / np.cos(cls.get_angle(np.array(g), np.array(y_samples))) for g in gt]
        line_accs, fn, matched = [], 0.0, 0.0
        for g, thresh in zip(gt, threshs):
            accs = [cls.line_accuracy(np.array(p), np.array(g), thresh) for p in pred]
            max_acc = np.max(accs) if len(accs) > 0 else 0.0
            if max_acc < cls.pt_thresh:
                fn += 1
            else:
                matched += 1
            line_accs.append(max_acc)
        fp = len(pred) - matched
        if len(gt) > 4 and fn > 0:
            fn -= 1
        s = sum(line_accs)
        if len(gt) > 4:
            s -= min(line_accs)
        return s / max(min(4.0, len(gt)), 1.0), fp / len(pred) if len(pred) > 0 else 0.0, fn / max(min(len(gt), 4.0), 1.0)

    @classmethod
    def bench_one_submit(cls, pred_file, gt_file):
        json_pred = [json.loads(line) for line in open(pred_file).readlines()]
        json_gt = [json.loads(line) for line in open(gt_file).readlines()]
        assert len(json_gt) == len(json_pred)
        gts = {g["raw_file"]: g for g in json_gt}
        accuracy, fp, fn = 0.0, 0.0, 0.0
        for pred in json_pred:
            gt = gts[pred["raw_file"]]
            a, p, n = cls.bench(pred["lanes"], gt["lanes"], gt["h_samples"], pred["run_time"])
            accuracy += a
            fp += p
            fn += n
        num = len(gts)
        return [{"name": "Accuracy", "value": accuracy / num, "order": "desc"},
                {"name": "FP", "value": fp / num, "order": "asc"},
                {"name": "FN", "value": fn / num, "order": "asc"}]


# ----------------------------------------------------------------------------------------------
# Hand-computed cases
# ----------------------------------------------------------------------------------------------
FOUR = [vertical(200), slanted(-100, 0.8), slanted(300, 0.5), vertical(1000)]


def test_a_perfect_prediction():
    assert bench_image(FOUR, FOUR, YS, 10.0) == (1.0, 0.0, 0.0)
    assert bench_image(FOUR[::-1], FOUR, YS, 10.0) == (1.0, 0.0, 0.0)  # order does not matter


def test_a_vertical_lane_shifted_past_the_threshold_is_a_false_negative():
    gt = [vertical(500)]
    assert lane_threshold(np.array(gt[0]), np.array(YS, float)) == 20.0
    assert bench_image([vertical(519.9)], gt, YS, 0) == (1.0, 0.0, 0.0)
    assert bench_image([vertical(520)], gt, YS, 0) == (0.0, 1.0, 1.0)  # |dx| < 20 is strict
    # 7 of 48 rows off: 41/48 = 0.854 >= 0.85 is matched; 8 off: 40/48 = 0.833 is not
    for off, matched in ((7, True), (8, False)):
        pred = vertical(500)
        pred[:off] = [540.0] * off
        acc, fp, fn = bench_image([pred], gt, YS, 0)
        assert acc == pytest.approx((N - off) / N, abs=1e-15)
        assert (fp, fn) == ((0.0, 0.0) if matched else (1.0, 1.0))


def test_the_lane_angle_widens_the_threshold():
    # the same 25 px offset: beyond 20 px on a vertical lane, within 20/cos(45 deg) = 28.3 px on a slanted one
    assert lane_slope(np.array(slanted(-200, 1.0)), np.array(YS, float)) == pytest.approx(1.0, abs=1e-12)
    assert lane_threshold(np.array(slanted(-200, 1.0)), np.array(YS, float)) == pytest.approx(20 * 2 ** 0.5, abs=1e-9)
    assert bench_image([shifted(vertical(600), 25)], [vertical(600)], YS, 0) == (0.0, 1.0, 1.0)
    assert bench_image([shifted(slanted(-200), 25)], [slanted(-200)], YS, 0) == (1.0, 0.0, 0.0)
    assert bench_image([shifted(slanted(-200), 29)], [slanted(-200)], YS, 0) == (0.0, 1.0, 1.0)


# Drawn lanes (integer x, as TuSimple's labels; the top rows absent, -2) whose least-squares slope is
# exactly 21/20 or 3/4, so that 20 / cos(arctan k) is exactly 29 or 25 px in exact arithmetic. The
# official script's sklearn fit lands on one side of the integer, the closed form
# sum(dy*dx) / sum(dy*dy) on the other (as on clips/0313-2/1110 and clips/0313-1/840 of
# label_data_0313.json: 28.999999999999996 and 52.00000000000002 official).
TIE_29 = [-2.0] * 11 + [265, 276, 284, 296, 308, 318, 326, 339, 350, 360, 368, 381, 391, 402, 410, 421, 434, 443, 453,
                        465, 476, 484, 495, 507, 518, 527, 537, 548, 558, 568, 579, 591, 604, 612, 620, 631, 644]
TIE_25 = [-2.0] * 7 + [338, 347, 355, 362, 370, 377, 386, 391, 399, 406, 414, 422, 428, 437, 446, 453, 459, 467, 474, 483,
                       488, 498, 504, 512, 518, 526, 535, 543, 550, 556, 565, 571, 580, 588, 595, 602, 609, 615, 624, 632, 640]


def exact_slope(lane: list[float]) -> Fraction:
    pts = [(Fraction(y), Fraction(int(x))) for x, y in zip(lane, YS) if x >= 0]
    ym, xm = sum(y for y, _ in pts) / len(pts), sum(x for _, x in pts) / len(pts)
    return sum((y - ym) * (x - xm) for y, x in pts) / sum((y - ym) ** 2 for y, _ in pts)


@pytest.mark.parametrize("lane, k, tie, official", [
    (TIE_29, Fraction(21, 20), 29, 28.999999999999996),  # official: a point 29 px off misses
    (TIE_25, Fraction(3, 4), 25, 25.000000000000004),  # official: a point 25 px off hits
])
def test_a_point_exactly_at_an_integer_threshold_is_scored_as_the_official_script_scores_it(lane, k, tie, official):
    assert exact_slope(lane) == k and (1 + k * k) * 20 ** 2 == tie ** 2  # a tie in exact arithmetic
    xs, ys = np.array(lane, float), np.array(YS, float)
    assert lane_threshold(xs, ys) == official
    absent = lane.count(-2.0)
    hit = official > tie
    # the lane shifted by exactly the threshold's integer: every drawn row hits or every one misses
    expected = (1.0, 0.0, 0.0) if hit else (absent / N, 1.0, 1.0)
    assert bench_image([shifted(lane, tie)], [lane], YS, 0) == expected
    assert ReferenceLaneEval.bench([shifted(lane, tie)], [lane], YS, 0) == expected


def test_the_tie_frame_scores_as_the_official_script_from_files(tmp_path):
    """The issue's minimal case, drawn: one frame, its lanes, and a prediction moving one lane 29 px."""
    gt = write_jsonl(tmp_path / "gt.json", [{"raw_file": "clips/t/20.jpg", "lanes": [vertical(100), TIE_29], "h_samples": YS}])
    pred = write_jsonl(tmp_path / "pred.json", [{"raw_file": "clips/t/20.jpg", "run_time": 10,
                                                 "lanes": [vertical(100), shifted(TIE_29, 29)]}])
    # the vertical lane: 1; the tie lane: only its 11 absent rows agree; 1 of 2 predictions matched
    expected = {"Accuracy": (1 + 11 / N) / 2, "FP": 0.5, "FN": 0.5, "images": 1, "penalised": 0}
    assert bench_files(pred, gt) == expected
    assert [r["value"] for r in ReferenceLaneEval.bench_one_submit(pred, gt)] == [0.6145833333333334, 0.5, 0.5]


def test_extra_predictions_are_false_positives_and_matching_is_not_one_to_one():
    gt = [vertical(300), vertical(900)]
    assert bench_image(gt + [vertical(600)], gt, YS, 0) == (1.0, 1 / 3, 0.0)
    assert bench_image(gt + [vertical(600), vertical(700)], gt, YS, 0) == (1.0, 0.5, 0.0)  # gt + 2: still scored
    assert bench_image(gt + [vertical(600), vertical(700), vertical(800)], gt, YS, 0) == (0.0, 0.0, 1.0)  # gt + 3
    # one prediction serves two ground-truth lanes 5 px apart: FP = 1 - 2 matched = -1
    assert bench_image([vertical(300)], [vertical(300), vertical(305)], YS, 0) == (1.0, -1.0, 0.0)
    # no predictions, and no ground truth
    assert bench_image([], gt, YS, 0) == (0.0, 0.0, 1.0)
    assert bench_image([vertical(300)], [], YS, 0) == (0.0, 1.0, 0.0)
    assert bench_image([], [], YS, 0) == (0.0, 0.0, 0.0)


def test_more_than_four_lanes_drop_the_worst_and_forgive_one_miss():
    five = [vertical(x) for x in (100, 350, 600, 850, 1100)]
    # four perfect, the fifth missed: accuracies 1,1,1,1,0 -> (4 - 0) / 4; the one FN is forgiven; FP 1 of 5
    preds = five[:4] + [vertical(1200)]
    assert bench_image(preds, five, YS, 0) == (1.0, 0.2, 0.0)
    # three perfect, one half right (24/48), one missed: (3 + 0.5 + 0 - 0) / 4; 2 FN - 1; FP 2 of 5
    half = vertical(850)
    half[:24] = [900.0] * 24
    preds = five[:3] + [half, vertical(1200)]
    assert bench_image(preds, five, YS, 0) == (3.5 / 4, 0.4, 0.25)
    # with four ground-truth lanes nothing is dropped nor forgiven
    assert bench_image(five[:3] + [vertical(1200)], five[:4], YS, 0) == (0.75, 0.25, 0.25)


def test_the_run_time_penalty():
    assert bench_image(FOUR, FOUR, YS, 200.0) == (1.0, 0.0, 0.0)
    assert bench_image(FOUR, FOUR, YS, 200.5) == (0.0, 0.0, 1.0)


def test_absent_points_on_both_sides():
    gt = with_absent(slanted(100, 0.6), slice(0, 24))  # top half absent
    # all absent: the 24 absent rows agree (-100 against -100), the others do not
    assert bench_image([[-2.0] * N], [gt], YS, 0) == (0.5, 1.0, 1.0)
    # absent where the ground truth is absent, right elsewhere; any negative value counts as absent
    assert bench_image([gt], [gt], YS, 0) == (1.0, 0.0, 0.0)
    assert bench_image([[(-7.5 if x < 0 else x) for x in gt]], [gt], YS, 0) == (1.0, 0.0, 0.0)
    # a prediction where the ground truth is absent is wrong there, even at x = 0 (100 px from -100)
    pred = list(gt)
    pred[:24] = [0.0] * 24
    assert bench_image([pred], [gt], YS, 0) == (0.5, 1.0, 1.0)
    # absent rows of the ground truth do not enter its slope
    xs = np.array(gt)
    assert lane_slope(xs, np.array(YS, float)) == pytest.approx(0.6, abs=1e-12)
    assert ReferenceLaneEval.get_angle(xs, np.array(YS, float)) == pytest.approx(np.arctan(0.6), abs=1e-12)


def test_lanes_must_have_one_value_per_row():
    with pytest.raises(DataError, match="lane 1 has 47"):
        bench_image([vertical(1), vertical(2)[:-1]], [vertical(1)], YS, 0)
    with pytest.raises(DataError, match="lane 0 has 49"):
        bench_image([], [vertical(1) + [3.0]], YS, 0)


# ----------------------------------------------------------------------------------------------
# Agreement with the reference on random images
# ----------------------------------------------------------------------------------------------
def random_image(rng: np.random.Generator, index: int) -> tuple[dict, dict]:
    """A ground-truth entry and a prediction for it: curved and straight lanes, absent runs and
    holes, noise around the thresholds, missed and extra lanes, slow and crowded predictions."""
    ys = np.arange(160 if index % 2 else 240, 720, 10, dtype=float)
    n_gt = int(rng.integers(0, 6))
    gt = []
    for _ in range(n_gt):
        x0, k, c = rng.uniform(0, 1280), rng.uniform(-2.5, 2.5), rng.uniform(-2e-3, 2e-3)
        xs = np.round(x0 + k * (ys - 710) + c * (ys - 710) ** 2, int(rng.integers(0, 3)))
        top = int(rng.integers(0, len(ys) // 2))
        xs[:top] = -2
        xs[rng.random(len(ys)) < 0.08] = -2
        xs[(xs < 0) | (xs >= 1280)] = -2
        gt.append(xs)
    preds = []
    for xs in gt:
        if rng.random() < 0.15:
            continue  # missed
        noise = rng.normal(0, rng.choice([3.0, 12.0, 25.0]), len(ys))
        pred = np.where(xs >= 0, xs + noise, -2.0)
        pred[rng.random(len(ys)) < 0.05] = -2
        preds.append(pred)
    for _ in range(int(rng.choice([0, 0, 1, 2, 3]))):
        preds.append(np.where(rng.random(len(ys)) < 0.7, rng.uniform(0, 1280, len(ys)), -2.0))  # extra
    if rng.random() < 0.1 and preds:
        preds.append(np.full(len(ys), -2.0))  # all absent
    order = rng.permutation(len(preds))
    run_time = float(rng.choice([5.0, 199.9, 200.0, 250.0], p=[0.7, 0.1, 0.1, 0.1]))
    raw = f"clips/{index:04d}/20.jpg"
    gt_entry = {"raw_file": raw, "lanes": [g.tolist() for g in gt], "h_samples": ys.astype(int).tolist()}
    pred_entry = {"raw_file": raw, "lanes": [preds[i].tolist() for i in order], "run_time": run_time}
    return gt_entry, pred_entry


def write_jsonl(path: Path, entries: list[dict]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return path


def test_agrees_with_the_official_arithmetic_on_random_images(tmp_path):
    rng = np.random.default_rng(2024)
    pairs = [random_image(rng, i) for i in range(60)]
    outcomes = []
    for gt, pred in pairs:
        ours = bench_image(pred["lanes"], gt["lanes"], gt["h_samples"], pred["run_time"])
        theirs = ReferenceLaneEval.bench(pred["lanes"], gt["lanes"], gt["h_samples"], pred["run_time"])
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
        outcomes.append((ours, len(gt["lanes"]), pred["run_time"]))
    # the random set exercises every branch: matches, misses, 5-lane images, penalties, partial accuracies
    assert sum(n == 5 for _, n, _ in outcomes) >= 3
    assert sum(rt > 200 for _, _, rt in outcomes) >= 3
    assert any(0 < r[2] < 1 and rt <= 200 for r, _, rt in outcomes)  # some but not all lanes missed
    assert any(0 < r[1] < 1 for r, _, _ in outcomes)  # some false positives
    assert any(0 < r[0] < 1 and r[0] not in (0.25, 0.5, 0.75) for r, _, _ in outcomes)  # partial accuracy
    # whole files, in a shuffled prediction order
    gt_file = write_jsonl(tmp_path / "gt.json", [g for g, _ in pairs])
    pred_file = write_jsonl(tmp_path / "pred.json", [pairs[i][1] for i in rng.permutation(len(pairs))])
    result = bench_files(pred_file, gt_file)
    reference = ReferenceLaneEval.bench_one_submit(pred_file, gt_file)
    assert result["images"] == len(pairs)
    for item in reference:
        assert result[item["name"]] == pytest.approx(item["value"], abs=1e-12)
    assert result["penalised"] == sum(rt > 200 or len(p["lanes"]) > len(g["lanes"]) + 2
                                      for (g, p), (_, _, rt) in zip(pairs, outcomes))
    # the command line writes the official shape
    out = tmp_path / "report.json"
    assert main(["--pred", str(pred_file), "--gt", str(gt_file), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert [(r["name"], r["order"]) for r in report] == [("Accuracy", "desc"), ("FP", "asc"), ("FN", "asc")]
    assert [r["value"] for r in report] == pytest.approx([r["value"] for r in reference], abs=1e-12)


# ----------------------------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------------------------
GOOD_GT = [{"raw_file": "clips/a/20.jpg", "lanes": [vertical(300)], "h_samples": YS},
           {"raw_file": "clips/b/20.jpg", "lanes": [vertical(600), vertical(900)], "h_samples": YS}]
GOOD_PRED = [{"raw_file": "clips/a/20.jpg", "lanes": [vertical(305)], "run_time": 12},
             {"raw_file": "clips/b/20.jpg", "lanes": [vertical(600)], "run_time": 12.5}]


def test_good_files_score_as_computed_by_hand(tmp_path):
    gt, pred = write_jsonl(tmp_path / "gt.json", GOOD_GT), write_jsonl(tmp_path / "pred.json", GOOD_PRED)
    # image a: (1, 0, 0); image b: one of two lanes: (0.5, 0, 0.5)
    assert bench_files(pred, gt) == {"Accuracy": 0.75, "FP": 0.0, "FN": 0.25, "images": 2, "penalised": 0}


@pytest.mark.parametrize("case, file, line, problem", [
    ("bad json", "pred", 2, "not valid JSON"),
    ("nan", "pred", 1, "not valid JSON"),
    ("no run_time", "pred", 1, "missing 'run_time'"),
    ("no raw_file", "gt", 2, "missing 'raw_file'"),
    ("short pred lane", "pred", 2, "lane 0 has 47 x values but h_samples has 48"),
    ("long gt lane", "gt", 1, "lane 0 has 49 x values but h_samples has 48"),
    ("unknown image", "pred", 2, "'clips/c/20.jpg' is not in the ground truth"),
    ("missing image", "pred", None, "no prediction for 'clips/b/20.jpg' (ground truth"),
    ("repeated image", "gt", 2, "repeats line 1"),
    ("run_time list", "pred", 1, "'run_time' must be one finite number"),
    ("string x", "pred", 1, "lane 0 must be a list of finite numbers"),
    ("blank pred line", "pred", 2, "blank line"),  # official: json.loads('\n') fails
    ("blank gt line", "gt", 3, "blank line"),
])
def test_bad_input_is_one_line_naming_the_file_and_line(tmp_path, capsys, case, file, line, problem):
    gt, pred = json.loads(json.dumps(GOOD_GT)), json.loads(json.dumps(GOOD_PRED))
    pred_text = None
    if case == "bad json":
        pred_text = json.dumps(pred[0]) + "\n" + json.dumps(pred[1])[:-5] + "\n"
    elif case == "nan":
        pred_text = json.dumps(pred[0]).replace("305.0", "NaN", 1) + "\n" + json.dumps(pred[1]) + "\n"
    elif case == "no run_time":
        del pred[0]["run_time"]
    elif case == "no raw_file":
        del gt[1]["raw_file"]
    elif case == "short pred lane":
        pred[1]["lanes"][0].pop()
    elif case == "long gt lane":
        gt[0]["lanes"][0].append(3.0)
    elif case == "unknown image":
        pred[1]["raw_file"] = "clips/c/20.jpg"
    elif case == "missing image":
        pred.pop()
    elif case == "repeated image":
        gt[1]["raw_file"] = gt[0]["raw_file"]
    elif case == "run_time list":
        pred[0]["run_time"] = [12, 13]
    elif case == "string x":
        pred[0]["lanes"][0][3] = "300"
    elif case == "blank pred line":
        pred_text = json.dumps(pred[0]) + "\n\n" + json.dumps(pred[1]) + "\n"
    gt_file = write_jsonl(tmp_path / "gt.json", gt)
    pred_file = write_jsonl(tmp_path / "pred.json", pred)
    if pred_text is not None:
        pred_file.write_text(pred_text)
    if case == "blank gt line":
        gt_file.write_text(gt_file.read_text() + "   \n")
    named = {"gt": gt_file, "pred": pred_file}[file]
    with pytest.raises(DataError) as err:
        bench_files(pred_file, gt_file)
    assert (err.value.path, err.value.line) == (str(named), line)
    assert problem in err.value.problem
    out = tmp_path / "report.json"
    assert main(["--pred", str(pred_file), "--gt", str(gt_file), "--out", str(out)]) == 2
    stderr = capsys.readouterr().err.strip().splitlines()
    where = f"{named}:{line}" if line else str(named)
    assert len(stderr) == 1 and stderr[0].startswith(f"error: {where}: ") and problem in stderr[0], stderr
    assert not out.exists()
