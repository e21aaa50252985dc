"""LLAMAS -> CULane-layout root: official labels as CULane lane IDs, lanes for F1, flags, lists; bad input."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from lanedata.llamas import evaluate as llamas_evaluate
from lanedata.llamas import metric as llamas
from runtime.culane import CulaneDataset
from runtime.lines import read_lines_file
from tests.lanedata.test_llamas_metric import _content
from lanedata.llamas.convert import convert, main

TS = "1419283521_0744236000"


def llamas_root(root: Path) -> Path:
    label = root / "labels/train/rec_1" / f"{TS}.json"
    label.parent.mkdir(parents=True)
    label.write_text(json.dumps(_content()))
    image = llamas.image_path(label)
    image.parent.mkdir(parents=True)
    cv2.imwrite(str(image), np.full((717, 1276, 3), 70, np.uint8))
    return root


def test_a_split_becomes_a_culane_root_with_the_official_labels(tmp_path):
    source = llamas_root(tmp_path / "llamas")
    out = tmp_path / "root"
    assert convert(source, ["train"], out) == {"train": 1}
    data = CulaneDataset(out)
    [sample] = data.read_list("train_gt.txt").samples
    label = llamas.read_label(source / "labels/train/rec_1" / f"{TS}.json")
    expected = llamas.segmentation_label(label, multi_class=True)
    np.testing.assert_array_equal(data.read_label(sample), expected)
    assert sample.exist == tuple(int((expected == c).any()) for c in range(1, 5)) == (1, 1, 1, 1)
    assert (out / sample.image).samefile(source / sample.image)
    lanes = read_lines_file(out / sample.lines_name)
    kept = [lane for lane in label.lanes if lane.lane_id in ("l1", "l0", "r0", "r1")]
    assert len(lanes) == len(kept) == 4  # l2 (a fifth lane) is not one of CULane's four
    for points, lane in zip(lanes, sorted(kept, key=lambda lane: ("l1", "l0", "r0", "r1").index(lane.lane_id))):
        assert set(map(tuple, points.astype(int))) == {p for m in lane.markers for p in (m.pixel_start, m.pixel_end)}
        assert (np.diff(points[:, 1]) <= 0).all()  # bottom first
    assert (out / "list/train.txt").read_text().strip() == f"/{sample.image}"


@pytest.mark.parametrize("case", ["missing-image", "bad-json"])
def test_bad_input_is_one_line_and_writes_nothing(case, tmp_path, capsys):
    source = llamas_root(tmp_path / "llamas")
    label = source / "labels/train/rec_1" / f"{TS}.json"
    if case == "missing-image":
        llamas.image_path(label).unlink()
        expected = f"{label}: its image"
    else:
        label.write_text("{not json")
        expected = f"{label}: "
    assert main(["--llamas-root", str(source), "--split", "train", "--out-root", str(tmp_path / "root")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and expected in err
    assert not (tmp_path / "root").exists()


def test_llamas_end_to_end_train_export_predict_and_score(tmp_path, capsys):
    """A converted LLAMAS root trains with the LLAMAS configs, exports, and is scored by the official mAP."""
    from export.to_onnx import export_checkpoint
    from lanedata.llamas import predict as predict_llamas
    from tests.helpers import TINY_TRAIN
    from training.config import load_config
    from training.distributed import Dist
    from training.train import Trainer

    source = llamas_root(tmp_path / "llamas")
    for split, ts in (("train", "1419283521_0744236001"), ("valid", "1419283521_0744236002")):
        label = source / f"labels/{split}/rec_2" / f"{ts}.json"
        label.parent.mkdir(parents=True)
        label.write_text(json.dumps(_content()))
        image = llamas.image_path(label)
        image.parent.mkdir(parents=True)
        cv2.imwrite(str(image), np.full((717, 1276, 3), 90, np.uint8))
    root = tmp_path / "root"
    assert convert(source, ["train", "valid"], root) == {"train": 2, "valid": 1}
    cfg = load_config(Path(__file__).resolve().parents[2] / "training/configs/llamas/erfnet.yaml",
                      [f"dataset.root={root}", f"output.dir={tmp_path / 'run'}", "dataset.val_list=valid_gt.txt", *TINY_TRAIN])  # no --split-valid here
    assert Trainer(cfg, Dist()).run()["last_val"]["val/f1"] >= 0.0
    onnx_path = tmp_path / "student.onnx"
    export_checkpoint(tmp_path / "run" / "last.pt", onnx_path, parity_count=1, save_pt2=False)
    pred = tmp_path / "pred"
    assert predict_llamas.main(["--model", str(onnx_path), "--llamas-root", str(source), "--split", "valid", "--pred-root", str(pred)]) == 0
    written = sorted(p.name for p in pred.rglob("*.png"))
    assert written == [f"1419283521_0744236002.json_{c}.png" for c in range(5)]
    background = cv2.imread(str(next(pred.rglob("*json_0.png"))), cv2.IMREAD_GRAYSCALE)
    assert background.shape == (717, 1276) and (background[: llamas.CROP_TOP] == 255).all()  # the official fill above the crop
    report = tmp_path / "map.json"
    assert llamas_evaluate.main(["--labels-root", str(source / "labels"), "--pred-root", str(pred), "--split", "valid", "--out", str(report)]) == 0
    assert 0.0 <= json.loads(report.read_text())["mAP"] <= 1.0
    # a CULane model (1640x590 frames cropped at 240) is refused in one line
    from runtime.artifacts import read_sidecar

    sidecar = json.loads(Path(f"{onnx_path}.json").read_text())
    sidecar["preprocess"].update(src_width=1640, src_height=590, crop_top=240)
    Path(f"{onnx_path}.json").write_text(json.dumps(sidecar))
    read_sidecar(onnx_path)
    capsys.readouterr()
    assert predict_llamas.main(["--model", str(onnx_path), "--llamas-root", str(source), "--split", "valid",
                                "--pred-root", str(tmp_path / "pred2")]) == 2
    assert "not LLAMAS' 1276x717 at 333" in capsys.readouterr().err
