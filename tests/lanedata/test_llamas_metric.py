"""lanedata.llamas.metric: label cleaning, official segmentation labels, the official per-image AP and mAP, the CLI."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from lanedata.llamas import evaluate as llamas_evaluate
from lanedata.llamas import metric as llamas
from runtime.errors import DataError, DataWarning

FX = FY = 1000.0
CX, CY = 638.0, 300.0
CAM_Y = 1.5  # world y of every marker point: v = CY + FY * 1.5 / z
NEAR = (5.0, 10.0)  # near marker: z 5 -> 10 m, rows 600 -> 450, half-widths 10 -> 5 px
FAR = (12.5, 20.0)  # far marker: rows 420 -> 375


def _project(x: float, z: float) -> tuple[float, float]:
    return CX + FX * x / z, CY + FY * CAM_Y / z


def _marker(x: float, z1: float, z2: float, x2: float | None = None) -> dict:
    """A marker in the official schema: every number a string, pixels rounded ints."""
    x2 = x if x2 is None else x2
    (u1, v1), (u2, v2) = _project(x, z1), _project(x2, z2)
    return {"lane_marker_id": "270744565274742865124995683857206534660",
            "world_start": {"x": repr(x), "y": repr(CAM_Y), "z": repr(z1)},
            "pixel_start": {"x": str(round(u1)), "y": str(round(v1))},
            "world_end": {"x": repr(x2), "y": repr(CAM_Y), "z": repr(z2)},
            "pixel_end": {"x": str(round(u2)), "y": str(round(v2))}}


def _lane(lane_id: str, x: float) -> dict:
    return {"lane_id": lane_id, "markers": [_marker(x, *NEAR), _marker(x, *FAR)]}


# file lane -> (x in m, cleaned id or None when dropped)
LANES = {"l4": (-5.0, "l2"), "l3": (-3.5, "l1"), "l1": (-2.5, None), "l0": (-1.5, "l0"),
         "r0": (0.5, None), "r2": (1.5, "r0"), "r5": (3.5, "r1")}


def _content() -> dict:
    lanes = [_lane(i, x) for i, (x, _) in LANES.items() if i not in ("l1", "r0")]
    # l1: tall in pixel_end but its pixel_start rows span 3 px (< 20): dropped
    short = {"lane_id": "l1", "markers": [_marker(-2.5, 30.0, 5.0), _marker(-2.5, 32.0, 6.0)]}
    # r0: one marker (also a zero pixel_start span): dropped
    single = {"lane_id": "r0", "markers": [_marker(0.5, *NEAR)]}
    lanes.insert(2, short)
    lanes.insert(4, single)
    # r5 gets a marker whose two ends are on one row (z 25 -> 25, row 360): never drawn
    lanes[-1]["markers"].append(_marker(3.5, 25.0, 25.0, x2=4.5))
    return {"image_name": "1419283521_0744236000",
            "projection_matrix": [[FX, 0, CX], [0, FY, CY], [0, 0, 1]], "lanes": lanes}


def _write(path: Path, content: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def label_file(tmp_path_factory) -> Path:
    return _write(tmp_path_factory.mktemp("llamas") / "1419283521_0744236000.json", _content())


@pytest.fixture(scope="module")
def label(label_file) -> llamas.Label:
    return llamas.read_label(label_file)


@pytest.fixture(scope="module")
def targets(label) -> tuple[np.ndarray, np.ndarray]:
    return llamas.segmentation_label(label, False), llamas.segmentation_label(label, True)


# ----------------------------------------------------------------------------- reading and cleaning


def test_read_label_filters_and_renames(label):
    assert [(lane.source_id, lane.lane_id) for lane in label.lanes] == [
        ("l4", "l2"), ("l3", "l1"), ("l0", "l0"), ("r2", "r0"), ("r5", "r1")]
    assert label.projection.dtype == np.float64 and label.projection[0, 0] == FX
    first = label.lanes[0].markers[0]
    assert first.world_start == (-5.0, CAM_Y, 5.0) and first.pixel_start == (round(CX - 1000), 600)
    assert isinstance(first.pixel_start[0], int)


def test_one_marker_lane_is_dropped_even_without_height_filter(label_file):
    ids = [lane.source_id for lane in llamas.read_label(label_file, min_lane_height=0).lanes]
    assert "l1" in ids and "r0" not in ids


def test_renumber_lanes_like_official():
    assert llamas.renumber_lanes(["l3", "l2", "l0", "r0", "r2"]) == ["l2", "l1", "l0", "r0", "r1"]
    assert llamas.renumber_lanes(["r1", "l1", "r3"]) == ["r0", "l0", "r1"]
    assert llamas.renumber_lanes(["l0", "l0"]) == ["l1", "l1"]  # official quirk: a repeated id takes the last number


def test_plain_json_numbers_read_the_same(tmp_path, label):
    content = _content()
    for lane in content["lanes"]:
        for m in lane["markers"]:
            for key in ("world_start", "world_end"):
                m[key] = {k: float(v) for k, v in m[key].items()}
            for key in ("pixel_start", "pixel_end"):
                m[key] = {k: int(v) for k, v in m[key].items()}
    again = llamas.read_label(_write(tmp_path / "n.json", content))
    assert again.lanes == label.lanes and np.array_equal(again.projection, label.projection)


def _one_line_error(path: Path, match: str) -> None:
    with pytest.raises(DataError) as info:
        llamas.read_label(path)
    text = str(info.value)
    assert "\n" not in text and text.startswith(str(path)) and match in text, text


def test_bad_label_files_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    _one_line_error(bad, "not valid JSON")
    bad.write_bytes(b"\xff\xfe\x00")
    _one_line_error(bad, "not valid JSON")

    content = _content()
    del content["lanes"][1]["markers"][1]["world_end"]
    _one_line_error(_write(tmp_path / "missing.json", content), "missing key 'lanes[1].markers[1].world_end'")
    content = _content()
    del content["projection_matrix"]
    _one_line_error(_write(tmp_path / "noproj.json", content), "missing key 'projection_matrix'")

    content = _content()
    content["lanes"][0]["markers"][0]["world_start"]["x"] = "abc"
    _one_line_error(_write(tmp_path / "nan.json", content), "lanes[0].markers[0].world_start.x: not a number: 'abc'")
    content = _content()
    content["lanes"][2]["markers"][0]["pixel_start"]["y"] = "600.5"  # int() of the string fails, as in read_json
    _one_line_error(_write(tmp_path / "float.json", content), "pixel_start.y: not an integer")
    content = _content()
    content["lanes"][0]["lane_id"] = "x1"
    _one_line_error(_write(tmp_path / "id.json", content), "lane_id")
    _one_line_error(tmp_path / "absent.json", "not found")


def test_what_the_official_reader_fails_on_is_refused(tmp_path):
    """Never more lenient than the official tools (a lenient reader hid the generator's string matrix)."""
    content = _content()  # published: numbers in the matrix; the official project_point fails on a string
    content["projection_matrix"][0][0] = str(FX)
    _one_line_error(_write(tmp_path / "kstr.json", content), "projection_matrix[0][0]: a string ('1000.0')")
    content = _content()  # the official _filter_lanes_by_size takes min() of the lane's markers
    content["lanes"][3]["markers"] = []
    _one_line_error(_write(tmp_path / "empty.json", content), "lanes[3].markers: empty")
    content = _content()  # read_json casts every key of a point
    content["lanes"][0]["markers"][1]["world_end"]["w"] = "n/a"
    _one_line_error(_write(tmp_path / "key.json", content), "lanes[0].markers[1].world_end.w: not a number")
    content["lanes"][0]["markers"][1]["world_end"]["w"] = "1.5"  # a key it can cast: read, as there
    assert llamas.read_label(_write(tmp_path / "key.json", content)).lanes[0].markers[1].world_end == (-5.0, CAM_Y, FAR[1])


def test_what_only_the_official_spline_tools_fail_on_warns(tmp_path, label_file):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        llamas.read_label(label_file)  # a clean label: no warning
    content = _content()  # row 717 of a 717-row frame: spline_creator._sample_points stops in pdb
    content["lanes"][0]["markers"][0]["pixel_start"]["y"] = "717"
    path = _write(tmp_path / "row.json", content)
    with pytest.warns(DataWarning) as record:
        label = llamas.read_label(path)
    assert len(record) == 1 and str(record[0].message).startswith(f"{path}: lane l4: pixel row 717 outside")
    assert label.lanes[0].markers[0].pixel_start[1] == 717  # read all the same: the official mAP reads it
    content = _content()  # every marker on one pixel column: spline_creator._extend_lane has none to extend
    for m in content["lanes"][3]["markers"]:
        m["pixel_end"]["x"] = m["pixel_start"]["x"]
    with pytest.warns(DataWarning, match="lane l0: every marker starts and ends on one pixel row or column"):
        llamas.read_label(_write(tmp_path / "column.json", content))
    content = _content()  # a dropped lane is never handed to those tools: no warning
    content["lanes"][2]["markers"][0]["pixel_start"]["y"] = "-3"
    content["lanes"][2]["markers"][1]["pixel_start"]["y"] = "0"
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        assert "l1" not in [lane.source_id for lane in llamas.read_label(_write(tmp_path / "dropped.json", content)).lanes]


# ----------------------------------------------------------------------------- segmentation labels


def _run(row: np.ndarray, at: int) -> tuple[int, int]:
    """First and last column of the non-zero run of ``row`` through column ``at``."""
    assert row[at], f"column {at} is not set"
    first, last = at, at
    while first > 0 and row[first - 1]:
        first -= 1
    while last < len(row) - 1 and row[last + 1]:
        last += 1
    return first, last


@pytest.mark.parametrize("row", [598, 452])
def test_marker_width_follows_fx_times_width_over_depth(targets, row):
    binary, _ = targets
    (u1, v1), (u2, v2) = _project(-1.5, NEAR[0]), _project(-1.5, NEAR[1])  # the l0 near marker
    hw1, hw2 = FX * 0.1 / NEAR[0] / 2, FX * 0.1 / NEAR[1] / 2  # 10 px and 5 px
    s = (v1 - row) / (v1 - v2)
    centre, half = u1 + s * (u2 - u1), hw1 + s * (hw2 - hw1)
    first, last = _run(binary[row], round(centre))
    assert abs(first - (centre - half)) <= 1.5 and abs(last - (centre + half)) <= 1.5, (first, last, centre, half)


def _centre(x: float, row: int) -> int:
    """Column of a marker at lateral ``x`` on image row ``row`` (both ends share x)."""
    return round(CX + FX * x / (FY * CAM_Y / (row - CY)))


def test_binary_and_multi_class_values_at_known_pixels(targets):
    binary, multi = targets
    assert binary.shape == multi.shape == (717, 1276) and binary.dtype == multi.dtype == np.uint8
    assert set(np.unique(binary)) == {0, 1} and set(np.unique(multi)) == {0, 1, 2, 3, 4}
    for source, (x, cleaned) in LANES.items():
        for row in (455, 400):  # on the near marker (z 9.7 m) and on the far one (z 15 m)
            u = _centre(x, row)
            assert binary[row, u] == (cleaned is not None), (source, row)
            assert multi[row, u] == {"l1": 1, "l0": 2, "r0": 3, "r1": 4}.get(cleaned, 0), (source, row)
    assert binary[455, _centre(-5.0, 455)] == 1 and multi[455, _centre(-5.0, 455)] == 0  # l2: background
    # the one-row marker of r5 (row 360, columns 778..818) is not drawn
    assert not binary[355:366, 770:826].any()
    # multi-class pixels are a subset of the binary ones, thinner: anti-aliased edges are background
    assert not ((multi > 0) & (binary == 0)).any()
    near_l0 = (slice(450, 601), slice(320, 500))
    assert (multi[near_l0] == 2).sum() > 0 and ((binary[near_l0] == 1) & (multi[near_l0] == 0)).sum() > 0


# ----------------------------------------------------------------------------- the metric


def official_approx_auc(prediction: np.ndarray, label: np.ndarray) -> dict:
    """segmentation_metrics.binary_approx_auc, re-written from its logic: 101 full threshold passes."""
    num_steps = 100
    auc_value = 0
    corner = (0, 0, 0, 0)  # (precision * recall, precision, recall, threshold)
    precisions, recalls = [1], [0]
    for i in range(num_steps + 1):
        threshold = (num_steps - i) / num_steps
        thresholded = (prediction >= threshold).astype(int)
        tp = np.sum(np.logical_and(label != 0, thresholded == label))
        fn = np.sum(np.logical_and(label != 0, thresholded == 0))
        fp = np.sum(np.logical_and(label == 0, thresholded != 0))
        precision = 0 if (tp + fp) == 0 else tp / (tp + fp)
        recall = 0 if (tp + fn) == 0 else tp / (tp + fn)
        if precision * recall > corner[0]:
            corner = (precision * recall, precision, recall, threshold)
        precisions.append(precision)
        recalls.append(recall)
        auc_value += (recalls[-1] - recalls[-2]) * precisions[-2]
    return {"auc": auc_value, "precision": corner[1], "recall": corner[2], "threshold": corner[3]}


def official_means(per_image: list[dict[int, dict]]) -> dict[int, dict]:
    """evaluate_set's reduce step: per class and metric, sum over images in order, divided by N."""
    out = {}
    for lane in per_image[0]:
        out[lane] = {}
        for metric in per_image[0][lane]:
            mean = 0
            for result in per_image:
                mean += result[lane][metric]
            out[lane][metric] = mean / len(per_image)
    return out


def _target(n_pos: int, size: int = 100) -> np.ndarray:
    t = np.zeros(size, dtype=np.uint8)
    t[:n_pos] = 1
    return t.reshape(10, -1)


def test_perfect_prediction_scores_one():
    t = _target(10)
    assert llamas.average_precision(t.astype(float), t) == 1.0
    assert llamas.average_precision(llamas.prob_u8(t * np.uint8(255)), t) == 1.0
    assert llamas.average_precision(np.ones(t.shape), t) == 1.0  # a constant 1.0 map: quirk, still 1


def test_hard_mask_scores_recall_plus_missing_recall_times_precision():
    t = _target(10)
    mask = np.zeros(100, dtype=np.uint8)
    mask[4:14] = 255  # 6 true positives, 4 false positives: P = R = 0.6
    mask = mask.reshape(t.shape)
    r = llamas.binary_approx_auc(llamas.prob_u8(mask), t)
    assert r.auc == pytest.approx(0.6 + (1 - 0.6) * 0.6, abs=1e-15)
    assert (r.precision, r.recall, r.threshold) == (pytest.approx(0.6), pytest.approx(0.6), 1.0)
    # the same mask stored as 254: nothing passes t = 1.00, the R term earns P = 0
    below = llamas.binary_approx_auc(llamas.prob_u8(np.where(mask > 0, np.uint8(254), np.uint8(0))), t)
    assert below.auc == pytest.approx((1 - 0.6) * 0.6, abs=1e-15) and below.threshold == 0.99


def test_all_zero_prediction_and_empty_ground_truth_score_zero():
    t = _target(10)
    assert llamas.average_precision(np.zeros(t.shape), t) == 0.0
    empty = np.zeros_like(t)
    for prob in (np.zeros(t.shape), np.ones(t.shape), t.astype(float)):
        r = llamas.binary_approx_auc(prob, empty)
        assert (r.auc, r.precision, r.recall, r.threshold) == (0.0, 0.0, 0.0, 0.0)
    # an image where the class is absent still counts in the mean
    report = llamas.segmentation_map([{1: t.astype(float)}, {1: np.zeros(t.shape)}], [t, empty], multi_class=False)
    assert report["classes"]["markers"]["ap"] == 0.5 and report["mAP"] == 0.5 and report["images"] == 2


def test_bad_metric_inputs():
    with pytest.raises(ValueError, match="differ in shape"):
        llamas.average_precision(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        llamas.average_precision(np.full((2, 2), np.nan), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="0 or 1"):
        llamas.average_precision(np.zeros((2, 2)), np.full((2, 2), 2))
    with pytest.raises(ValueError, match="uint8"):
        llamas.prob_u8(np.zeros((2, 2)))


def _random_image(rng: np.random.Generator, k: int) -> tuple[np.ndarray, np.ndarray]:
    """A multi-class index label (some classes absent) and 5 probability maps of varied kinds."""
    shape = (int(rng.integers(8, 30)), int(rng.integers(8, 40)))
    label = np.zeros(shape, dtype=np.uint8)
    for c in rng.choice([1, 2, 3, 4], size=int(rng.integers(0, 5)), replace=False):
        r0, c0 = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        label[r0:r0 + int(rng.integers(1, 8)), c0:c0 + int(rng.integers(1, 6))] = c
    probs = np.empty((5, *shape))
    for c in range(5):
        truth = (label == c).astype(float)
        kind = (k + c) % 6
        if kind == 0:  # noisy but informative, continuous
            probs[c] = np.clip(truth * rng.uniform(0.3, 1.0) + rng.normal(0, 0.3, shape), 0, 1)
        elif kind == 1:  # through 8 bits, like the PNG files
            probs[c] = llamas.prob_u8(llamas.prob_to_u8(np.clip(truth * 0.8 + rng.random(shape) * 0.5, 0, 1)))
        elif kind == 2:  # values exactly on the thresholds
            probs[c] = rng.integers(0, 101, shape) / 100
        elif kind == 3:  # hard mask with errors
            probs[c] = np.where(rng.random(shape) < 0.1, 1 - truth, truth)
        elif kind == 4:
            probs[c] = rng.random(shape)
        else:
            probs[c] = np.zeros(shape) if k % 2 else np.ones(shape)
    return probs, label


def test_matches_official_arithmetic_on_random_images():
    rng = np.random.default_rng(20190303)
    images = [_random_image(rng, k) for k in range(30)]
    official = []
    for probs, label in images:
        per_class = {}
        for c in range(5):
            target = np.stack([label == i for i in range(5)], axis=2).astype(np.uint8)[:, :, c]
            per_class[c] = official_approx_auc(probs[c], target)
            mine = llamas.binary_approx_auc(probs[c], target)
            for metric, value in per_class[c].items():
                assert abs(getattr(mine, metric) - value) <= 1e-12, (metric, c)
        official.append(per_class)
    assert any(r[c]["auc"] == 0 for r in official for c in range(1, 5))  # absent classes are in the mix
    assert any(0 < r[c]["auc"] < 1 for r in official for c in range(1, 5))
    means = official_means(official)
    report = llamas.segmentation_map([p for p, _ in images], [lab for _, lab in images], multi_class=True)
    assert report["images"] == 30 and list(report["classes"]) == ["background", "l1", "l0", "r0", "r1"]
    for name, row in report["classes"].items():
        expected = means[row["class"]]
        assert abs(row["ap"] - expected["auc"]) <= 1e-12
        assert abs(row["corner_precision"] - expected["precision"]) <= 1e-12
        assert abs(row["corner_recall"] - expected["recall"]) <= 1e-12
        assert abs(row["corner_threshold"] - expected["threshold"]) <= 1e-12
    assert abs(report["mAP"] - sum(means[c]["auc"] for c in (1, 2, 3, 4)) / 4) <= 1e-12
    assert report["mAP_classes"] == ["l1", "l0", "r0", "r1"]


# ----------------------------------------------------------------------------- layout, crop, command line


def test_layout_paths(tmp_path):
    label = tmp_path / "labels" / "valid" / "rec_a" / "1419283521_0744236000.json"
    assert llamas.image_path(label) == tmp_path / "color_images/valid/rec_a/1419283521_0744236000_color_rect.png"
    assert llamas.image_path(label, "/g", kind="gray") == Path("/g/valid/rec_a/1419283521_0744236000_gray_rect.png")
    assert llamas.prediction_path("/p", label, 3) == Path("/p/rec_a/1419283521_0744236000.json_3.png")
    for name in ("rec_b/2.json", "rec_a/1.json", "rec_a/deeper/3.json", "rec_a/notes.txt"):
        _write(tmp_path / "labels" / "valid" / name, {})
    expected = [tmp_path / "labels/valid" / n for n in ("rec_a/1.json", "rec_a/deeper/3.json", "rec_b/2.json")]
    assert llamas.list_labels(tmp_path / "labels", "valid") == expected
    assert llamas.list_labels(tmp_path, "valid") == expected  # the dataset root works too
    with pytest.raises(DataError, match="no labels for split 'test'"):
        llamas.list_labels(tmp_path / "labels", "test")


def test_crop_constants_and_full_frame():
    assert llamas.CROP_TOP + llamas.CROP_HEIGHT == 717 and llamas.CROP_SIZE == (1276, 384)
    assert llamas.NET_SIZE == (960, 288)
    cropped = np.full((5, 384, 1276), 0.25, dtype=np.float32)
    full = llamas.full_frame(cropped)
    assert full.shape == (5, 717, 1276) and full.dtype == np.float32
    assert (full[0, :333] == 1).all() and (full[1:, :333] == 0).all() and (full[:, 333:] == 0.25).all()
    assert llamas.prob_to_u8(np.array([0.0, 0.5, 1.0, 1.2])).tolist() == [0, 128, 255, 255]


def _dataset(tmp_path: Path) -> tuple[Path, Path, list[Path]]:
    labels = [_write(tmp_path / "labels/valid/rec_a/1419283521_0744236000.json", _content()),
              _write(tmp_path / "labels/valid/rec_b/1419283522_0000000000.json", _content())]
    pred = tmp_path / "pred"
    multi = llamas.segmentation_label(llamas.read_label(labels[0]), True)
    perfect = np.stack([multi == c for c in range(5)]).astype(np.float64)
    llamas.write_predictions(pred, labels[0], perfect)
    noisy = np.clip(perfect * 0.5 + np.random.default_rng(1).random(perfect.shape) * 0.6, 0, 1)
    llamas.write_predictions(pred, labels[1], noisy)
    return tmp_path / "labels", pred, labels


def test_cli_scores_prediction_pngs(tmp_path, capsys):
    labels_root, pred, labels = _dataset(tmp_path)
    out = tmp_path / "reports" / "llamas.json"
    rc = llamas_evaluate.main(["--labels-root", str(labels_root), "--pred-root", str(pred), "--split", "valid",
                      "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    report = json.loads(out.read_text())
    assert report["images"] == 2 and report["split"] == "valid" and report["mode"] == "multi_class"
    # the same numbers in process, from the PNGs as the official script reads them
    probs = [{c: llamas.read_prediction(llamas.prediction_path(pred, p, c)) for c in range(5)} for p in labels]
    targets = [llamas.segmentation_label(llamas.read_label(p), True) for p in labels]
    expected = llamas.segmentation_map(probs, targets)
    assert report["classes"] == expected["classes"] and report["mAP"] == expected["mAP"]
    assert 0.5 < report["mAP"] < 1.0
    assert "mAP (l1, l0, r0, r1)" in capsys.readouterr().out


def test_cli_names_the_first_missing_prediction(tmp_path, capsys):
    labels_root, pred, labels = _dataset(tmp_path)
    first = llamas.prediction_path(pred, labels[0], 2)
    first.unlink()
    llamas.prediction_path(pred, labels[1], 0).unlink()
    out = tmp_path / "report.json"
    rc = llamas_evaluate.main(["--labels-root", str(labels_root), "--pred-root", str(pred), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and err.startswith(f"error: {first}: prediction file missing (2 of 10")
    assert not out.exists()


def test_cli_binary_mode_and_a_wrong_size_png(tmp_path, capsys):
    labels_root, pred, labels = _dataset(tmp_path)
    for p in labels:
        for c in (0, 2, 3, 4):
            llamas.prediction_path(pred, p, c).unlink()  # binary mode reads only *_1.png
    rc = llamas_evaluate.main(["--labels-root", str(labels_root), "--pred-root", str(pred), "--binary", "--json"])
    out = capsys.readouterr().out
    report = json.loads(out.strip().splitlines()[-1])
    assert rc == 0 and report["mode"] == "binary" and list(report["classes"]) == ["markers"]
    assert report["mAP"] == report["classes"]["markers"]["ap"] and report["mAP_classes"] == ["markers"]

    small = llamas.prediction_path(pred, labels[1], 1)
    cv2.imwrite(str(small), np.zeros((384, 1276), dtype=np.uint8))
    rc = llamas_evaluate.main(["--labels-root", str(labels_root), "--pred-root", str(pred), "--binary"])
    err = capsys.readouterr().err
    assert rc == 2 and err == f"error: {small}: prediction is 1276x384, expected 1276x717\n"
