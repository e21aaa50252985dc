"""ApolloScape: the class table against an independent transcription, labels read both ways, and
mIoU against a re-implementation of the official (cityscapesScripts) arithmetic."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from lanedata.apolloscape import labels as apollo
from runtime import marking_classes
from runtime.errors import DataError

# IntRA-KD's label decoding (cardwing/Codes-for-IntRA-KD, utils/transforms_train.py): B*5 + G*3 + R
# of each table colour, in table order: an independent copy of the 38 colours.
INTRA_KD_CODES = [0, 1360, 580, 768, 255, 300, 680, 710, 312, 1509, 800, 1377, 880, 910, 1188, 128, 960, 1784, 1414, 1150,
                  512, 1162, 950, 750, 1575, 708, 2111, 1848, 1071, 1204, 892, 639, 2040, 1524, 832, 1122, 1224, 2295]
# IntRA-KD's road_npy2img.py: the regular IDs in table order.
INTRA_KD_IDS = [0, 200, 204, 213, 209, 206, 207, 201, 203, 211, 208, 216, 217, 215, 218, 219, 210, 232, 214, 202, 220, 221,
                222, 231, 224, 225, 226, 230, 228, 229, 233, 205, 212, 227, 223, 250, 249, 255]


def test_the_table_matches_an_independent_copy_and_its_own_rules():
    labels = marking_classes.LABELS
    assert [b * 5 + g * 3 + r for (r, g, b) in (lab.color for lab in labels)] == INTRA_KD_CODES
    assert [lab.id for lab in labels] == INTRA_KD_IDS
    assert [lab.train_id for lab in labels] == list(range(36)) + [255, 255]
    assert len({lab.color for lab in labels}) == 38
    evaluated = [lab.name for lab in labels if not lab.ignore_in_eval]
    assert len(evaluated) == 18 and evaluated[0] == "void" and "c_wy_z" in evaluated and "a_w_u" not in evaluated
    assert marking_classes.EVALUATED.sum() == 18 and marking_classes.CLASS_NAMES[19] == "a_w_u"


def random_train_ids(rng: np.random.Generator, shape=(40, 60), with_ignore=True) -> np.ndarray:
    ids = rng.integers(0, marking_classes.NUM_CLASSES, shape).astype(np.uint8)
    if with_ignore:
        ids[rng.random(shape) < 0.1] = marking_classes.IGNORE
    return ids


def test_colour_and_id_labels_read_back_as_train_ids(tmp_path):
    ids = random_train_ids(np.random.default_rng(0))
    colour = tmp_path / "a_bin.png"
    cv2.imwrite(str(colour), apollo.color_label(ids)[..., ::-1])  # as released: RGB colours (OpenCV writes BGR)
    np.testing.assert_array_equal(apollo.read_label(colour), ids)
    grey = tmp_path / "b_bin.png"
    regular = np.where(ids == 255, 255, marking_classes.TRAIN_TO_ID[np.minimum(ids, 35)]).astype(np.uint8)
    cv2.imwrite(str(grey), regular)
    np.testing.assert_array_equal(apollo.read_label(grey, expected_shape=(40, 60)), ids)


@pytest.mark.parametrize("case", ["colour", "id", "size", "truncated", "missing"])
def test_bad_labels_are_refused_naming_the_file(case, tmp_path):
    path = tmp_path / "x_bin.png"
    ids = np.zeros((8, 8), np.uint8)
    if case == "colour":
        rgb = apollo.color_label(ids)
        rgb[2, 3] = (1, 2, 3)
        cv2.imwrite(str(path), rgb[..., ::-1])
        match = r"1 pixels of colours outside the ApolloScape table, e.g. RGB \(1, 2, 3\)"
    elif case == "id":
        ids[0, 0] = 7
        cv2.imwrite(str(path), ids)
        match = r"label IDs \[7\] are not in the ApolloScape table"
    elif case == "size":
        cv2.imwrite(str(path), ids)
        match = "label map is 8x8, expected 9x8"
    elif case == "truncated":
        cv2.imwrite(str(path), ids)
        path.write_bytes(path.read_bytes()[:-20])
        match = "truncated PNG"
    else:
        match = "label map not found"
    with pytest.raises(DataError, match=match) as err:
        apollo.read_label(path, expected_shape=(8, 9) if case == "size" else None)
    assert str(err.value).startswith(str(path))


def cityscapes_miou(pred_ids: list[np.ndarray], gt_ids: list[np.ndarray]) -> tuple[float, dict[int, float]]:
    """cityscapesScripts' evalPixelLevelSemanticLabeling arithmetic (commit 4031404) on REGULAR IDs,
    written from its functions: generateMatrix (one 256x256 matrix over all images, all label IDs),
    getIouScoreForLabel (NaN if ignoreInEval; fp from rows of other non-ignored labels), getScoreAverage."""
    matrix = np.zeros((256, 256), np.int64)
    for p, g in zip(pred_ids, gt_ids):
        np.add.at(matrix, (g.ravel().astype(np.int64), p.ravel().astype(np.int64)), 1)
    by_id = {lab.id: lab for lab in marking_classes.LABELS}
    scores = {}
    for label in by_id:
        if by_id[label].ignore_in_eval:
            continue
        tp = matrix[label, label]
        not_ignored = [lid for lid in by_id if not by_id[lid].ignore_in_eval and lid != label]
        fp = matrix[not_ignored, label].sum()
        fn = matrix[label, :].sum() - tp
        denominator = tp + fp + fn
        if denominator == 0:
            continue
        scores[label] = float(tp) / denominator
    return sum(scores.values()) / len(scores), scores


def test_miou_counts_as_the_official_script_on_random_sets():
    rng = np.random.default_rng(1)
    for trial in range(20):
        present = rng.choice(marking_classes.NUM_CLASSES, size=rng.integers(2, 12), replace=False)
        gts, preds = [], []
        for _ in range(3):
            gt = present[rng.integers(0, len(present), (30, 50))].astype(np.uint8)
            gt[rng.random(gt.shape) < 0.05] = 255  # noise / ignored pixels
            pred = np.where(rng.random(gt.shape) < 0.7, np.minimum(gt, 35), rng.integers(0, 36, gt.shape)).astype(np.uint8)
            if trial % 4 == 0:
                pred[:2] = 33  # a class that may be absent from the ground truth: predicted only
            gts.append(gt)
            preds.append(pred)
        matrix = sum(apollo.confusion(p, g) for p, g in zip(preds, gts))
        # the official script sees regular IDs; ground truth 255 is noise (249) or ignored (255) there
        regular_gt = [np.where(g == 255, np.where(rng.random(g.shape) < 0.5, 249, 255), marking_classes.TRAIN_TO_ID[np.minimum(g, 35)])
                      for g in gts]
        expected, per_label = cityscapes_miou([marking_classes.TRAIN_TO_ID[p] for p in preds], regular_gt)
        assert apollo.official_miou(matrix) == pytest.approx(expected, abs=1e-12)
        iou = apollo.official_iou(matrix)
        assert {int(marking_classes.TRAIN_TO_ID[c]): iou[c] for c in np.flatnonzero(np.isfinite(iou))} == pytest.approx(per_label, abs=1e-12)


def test_hand_counted_case_and_the_false_positive_rule():
    # ground truth: 4 void, 3 s_w_d (train 1), 2 a_w_u (train 19, not evaluated), 1 ignored
    gt = np.array([[0, 0, 0, 0, 1, 1, 1, 19, 19, 255]], np.uint8)
    pred = np.array([[0, 0, 0, 1, 1, 1, 0, 1, 1, 1]], np.uint8)
    iou = apollo.official_iou(apollo.confusion(pred, gt))
    # void: TP 3, FN 1 (predicted s_w_d), FP 1 (an s_w_d pixel predicted void) -> 3/5
    # s_w_d: TP 2, FN 1, FP 1 (the void pixel); the a_w_u and ignored pixels predicted s_w_d are not FPs -> 2/4
    assert iou[0] == pytest.approx(3 / 5) and iou[1] == pytest.approx(2 / 4)
    assert np.isnan(iou[19]) and np.isnan(iou[2])  # not evaluated; evaluated but absent from both
    report = apollo.report(apollo.confusion(pred, gt))
    assert report["miou"] == pytest.approx((3 / 5 + 2 / 4) / 2) and report["classes_scored"] == 2
    assert report["iou"]["s_w_d"] == pytest.approx(0.5) and report["iou"]["s_y_d"] is None and "a_w_u" not in report["iou"]
    with pytest.raises(ValueError, match="prediction values outside"):
        apollo.confusion(np.full_like(gt, 36), gt)


def test_label_paths_follow_the_release_layout():
    image = Path("ColorImage_road02/ColorImage/Record001/Camera 5/170927_063811892_Camera_5.jpg")
    assert apollo.label_path(image) == Path("Labels_road02/Label/Record001/Camera 5/170927_063811892_Camera_5_bin.png")
    with pytest.raises(DataError, match="not an ApolloScape image path"):
        apollo.label_path("driver_23_30frame/x.jpg")


def apollo_root(tmp_path: Path, count: int = 3) -> tuple[Path, Path, list[np.ndarray]]:
    """A root in the release layout (colour labels, a camera folder with a space) and its list."""
    rng = np.random.default_rng(2)
    root, rows, gts = tmp_path / "apollo", [], []
    for i in range(count):
        image = Path("ColorImage_road02/ColorImage/Record001/Camera 5") / f"17092706381{i}_Camera_5.jpg"
        (root / image).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / image), np.full((24, 32, 3), 90, np.uint8))
        gt = random_train_ids(rng, (24, 32))
        label = root / apollo.label_path(image)
        label.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(label), apollo.color_label(gt)[..., ::-1])
        rows.append(f"/{image}")
        gts.append(gt)
    (root / "list").mkdir()
    (root / "list" / "val.txt").write_text("\n".join(rows) + "\n")
    return root, root / "list" / "val.txt", gts


def test_the_evaluation_command_scores_official_submissions(tmp_path, capsys):
    from lanedata.apolloscape.evaluate import main

    root, list_path, gts = apollo_root(tmp_path)
    rng = np.random.default_rng(3)
    pred_dir, preds = tmp_path / "pred", []
    for row, gt in zip(list_path.read_text().split("\n"), gts):
        pred = np.where(rng.random(gt.shape) < 0.6, np.minimum(gt, 35), rng.integers(0, 36, gt.shape)).astype(np.uint8)
        out = pred_dir / Path(row.lstrip("/")).with_suffix(".png")
        out.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out), marking_classes.TRAIN_TO_ID[pred])  # regular IDs, one channel
        preds.append(pred)
    report_path = tmp_path / "r.json"
    assert main(["--data-root", str(root), "--list", str(list_path), "--pred-dir", str(pred_dir), "--report", str(report_path)]) == 0
    report = json.loads(report_path.read_text())
    expected = apollo.official_miou(sum(apollo.confusion(p, g) for p, g in zip(preds, gts)))
    assert report["miou"] == pytest.approx(expected, abs=1e-12) and report["images"] == 3
    assert f"mIoU {100 * expected:.2f} %" in capsys.readouterr().out
    # a prediction in train IDs rather than the table's IDs; then a missing one: one line each, exit 2
    first = pred_dir / Path(list_path.read_text().split("\n")[0].lstrip("/")).with_suffix(".png")
    cv2.imwrite(str(first), np.full((24, 32), 3, np.uint8))
    assert main(["--data-root", str(root), "--list", str(list_path), "--pred-dir", str(pred_dir)]) == 2
    assert "label IDs [3] are not in the ApolloScape table" in capsys.readouterr().err
    cv2.imwrite(str(first), apollo.color_label(np.zeros((24, 32), np.uint8)))  # a colour submission
    assert main(["--data-root", str(root), "--list", str(list_path), "--pred-dir", str(pred_dir)]) == 2
    assert "a colour image: a prediction must be one channel" in capsys.readouterr().err
    first.unlink()
    assert main(["--data-root", str(root), "--list", str(list_path), "--pred-dir", str(pred_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"val.txt:1: prediction {first} not found" in err
