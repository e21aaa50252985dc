"""TuSimple end to end: a converted root trains with the TuSimple configs, exports, predicts in the
submission format on TuSimple's own rows, and is scored by the official metric."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lanedata.tusimple import metric as tusimple_metric, predict as predict_tusimple
from runtime.decode import DecodedLane
from tests.helpers import TINY_TRAIN
from tests.lanedata.test_tusimple_convert import make_tusimple_root
from lanedata.tusimple.convert import convert

ROOT = Path(__file__).resolve().parents[2]


def test_a_lane_is_read_at_the_ground_truth_rows():
    lane = DecodedLane(1, np.array([[100.0, 700.0], [120.0, 600.0], [150.0, 500.0]]))  # bottom first
    assert predict_tusimple.lane_at_rows(lane, [450, 500, 550, 600, 650, 700, 710]) == [-2, 150.0, 135.0, 120.0, 110.0, 100.0, -2]


def test_tusimple_end_to_end(tmp_path, capsys):
    from export.to_onnx import export_checkpoint
    from training.config import load_config
    from training.distributed import Dist
    from training.train import Trainer

    tusimple_root = make_tusimple_root(tmp_path)
    out = tmp_path / "root"
    convert(tusimple_root, ["label_data_0313.json"], out, "train", progress=False)
    convert(tusimple_root, ["label_data_0531.json"], out, "val", progress=False)
    cfg = load_config(ROOT / "training/configs/tusimple/erfnet.yaml", [f"dataset.root={out}", f"output.dir={tmp_path / 'run'}", *TINY_TRAIN,
                                                                        "train.batch_size=1", "train.max_val_images=1"])
    Trainer(cfg, Dist()).run()
    onnx_path = tmp_path / "student.onnx"
    export_checkpoint(tmp_path / "run" / "last.pt", onnx_path, parity_count=1, save_pt2=False)
    gt = tusimple_root / "label_data_0313.json"
    pred = tmp_path / "pred.json"
    assert predict_tusimple.main(["--model", str(onnx_path), "--tusimple-root", str(tusimple_root), "--gt", str(gt), "--out", str(pred)]) == 0
    lines = [json.loads(line) for line in pred.read_text().splitlines()]
    gts = [json.loads(line) for line in gt.read_text().splitlines()]
    assert [p["raw_file"] for p in lines] == [g["raw_file"] for g in gts]
    for p, g in zip(lines, gts):
        assert all(len(lane) == len(g["h_samples"]) for lane in p["lanes"]) and p["run_time"] > 0
    result = tusimple_metric.bench_files(pred, gt)
    assert 0.0 <= result["Accuracy"] <= 1.0 and result["images"] == 2
    capsys.readouterr()
    (tusimple_root / gts[0]["raw_file"]).unlink()
    assert predict_tusimple.main(["--model", str(onnx_path), "--tusimple-root", str(tusimple_root), "--gt", str(gt),
                                  "--out", str(tmp_path / "p2.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "label_data_0313.json:1: image" in err and not (tmp_path / "p2.json").exists()
