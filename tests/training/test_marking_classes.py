"""N classes: the class tables, models without the existence head, the loss, IntRA-KD with 36
classes against the float64 reference, and a marking model trained, distilled and scored end to end."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from runtime import marking_classes
from runtime.classes import class_table
from runtime.draw import LANE_COLORS
from runtime.errors import DataError
from runtime.miou import evaluated_iou
from tests.helpers import TINY_TRAIN
from tests.training.test_intra_kd import reference_loss
from training.data.augment import MIRROR_LANES
from training.distill.intra_kd import aoi_maps, intra_kd_loss
from training.losses import LaneSegLoss
from training.models import build_model

ROOT = Path(__file__).resolve().parents[2]


def test_tables_keep_culane_as_it_was_and_describe_apolloscape():
    culane, apollo = class_table("culane"), class_table("apolloscape")
    assert (culane.num_classes, culane.num_lanes, culane.task) == (5, 4, "lanes")
    np.testing.assert_array_equal(culane.mirror_lut(), MIRROR_LANES)
    assert [culane.colors[k] for k in (1, 2, 3, 4)] == [tuple(LANE_COLORS[k]) for k in (1, 2, 3, 4)]
    assert (apollo.num_classes, apollo.num_lanes, apollo.task, sum(apollo.evaluated)) == (36, 0, "markings", 18)
    lut = apollo.mirror_lut()
    assert (lut[lut] == np.arange(256)).all() and lut[255] == 255  # a mirror twice is no mirror
    assert apollo.names[lut[apollo.names.index("a_w_l")]] == "a_w_r" and lut[0] == 0
    assert apollo.colors[1] == tuple(reversed(marking_classes.LABELS[1].color))  # (B, G, R)
    with pytest.raises(ValueError, match="unknown class table 'kitti'; known: culane, apolloscape"):
        class_table("kitti")


def marking_config(arch: str) -> dict:
    model = {"arch": arch, "depth": 18, "head_channels": 32} if arch == "pspnet" else {"arch": arch}
    return {"dataset": {"classes": "apolloscape"}, "input": {"net_height": 32, "net_width": 64},
            "model": {"input": "image", "dropout": 0.1, "pretrained": None, **model}}


@pytest.mark.parametrize("arch", ["erfnet", "pspnet"])
def test_marking_models_have_36_outputs_and_no_existence_head(arch):
    model = build_model(marking_config(arch)).eval()
    assert model.lane_exist is None
    tap = "block2" if arch == "erfnet" else "layer3"
    with torch.no_grad():
        seg, exist, taps = model(torch.randn(2, 3, 32, 64), taps=(tap,))
    assert seg.shape == (2, 36, 32, 64) and exist is None and set(taps) == {tap}
    lanes = build_model({**marking_config(arch), "dataset": {"classes": "culane"}}).eval()
    with torch.no_grad():
        assert lanes(torch.randn(1, 3, 32, 64))[1].shape == (1, 4)  # CULane keeps its existence head


def test_the_loss_without_existence_is_the_weighted_cross_entropy():
    g = torch.Generator().manual_seed(0)
    logits, label = torch.randn(2, 36, 6, 7, generator=g), torch.randint(0, 36, (2, 6, 7), generator=g)
    label[0, 0] = 255
    weight = torch.ones(36)
    weight[0] = 0.05  # the paper's background weight for ApolloScape
    out = LaneSegLoss(36, background_weight=0.05)(logits, None, label, torch.zeros(2, 0))
    assert set(out) == {"seg", "total"}
    expected = F.cross_entropy(logits, label, weight=weight, ignore_index=255)
    assert out["total"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_intra_kd_with_36_classes_matches_the_float64_reference():
    g = torch.Generator().manual_seed(3)
    label = torch.zeros(2, 32, 48, dtype=torch.long)
    for k in range(1, 30, 3):  # 10 classes present as stripes, the rest absent; some only in one image
        label[: 1 + (k % 2), :, k : k + 1] = k
    label[1, 20:, 40:] = 35
    label[:, :3] = 255
    fs = torch.randn(2, 6, 8, 12, generator=g) * 2 + 1
    ft = torch.randn(2, 9, 8, 12, generator=g) + 1e3  # offset features: the float32 cancellation case
    loss = intra_kd_loss(fs, ft, label, 36, 5).item()
    m = aoi_maps(label, 36, 5, (8, 12)).numpy()
    ref = np.mean([reference_loss(fs[i].double().numpy(), ft[i].double().numpy(), m[i], m[i]) for i in range(2)])
    assert loss == pytest.approx(ref, rel=2e-3, abs=1e-6) and loss > 0


def evaluated_reference(matrix: np.ndarray, evaluated: np.ndarray) -> np.ndarray:
    """The official rule pixel by pixel: FP of c = pixels predicted c whose ground truth is another evaluated class."""
    out = np.full(len(evaluated), np.nan)
    for c in np.flatnonzero(evaluated):
        tp = matrix[c, c]
        fn = matrix[c].sum() - tp
        fp = sum(matrix[r, c] for r in np.flatnonzero(evaluated) if r != c)
        if tp + fp + fn:
            out[c] = tp / (tp + fp + fn)
    return out


def test_the_generic_evaluated_iou_is_the_official_rule():
    rng = np.random.default_rng(4)
    evaluated = np.array(class_table("apolloscape").evaluated)
    for _ in range(10):
        matrix = rng.integers(0, 5, (36, 36)) * (rng.random((36, 36)) < 0.3)
        np.testing.assert_allclose(evaluated_iou(matrix, evaluated), evaluated_reference(matrix, evaluated), rtol=1e-12, equal_nan=True)


# -- end to end on a tiny marking dataset -----------------------------------------------------
def marking_root(root: Path, count: int = 8) -> Path:
    """Images with coloured blobs and their train-ID label maps (some classes, background 0), CULane
    layout with ``image label`` lists (no existence flags)."""
    rng = np.random.default_rng(5)
    (root / "list").mkdir(parents=True)
    rows = []
    for i in range(count):
        image = np.full((90, 160, 3), 60, np.uint8)
        label = np.zeros((90, 160), np.uint8)
        for k in rng.choice([1, 2, 7, 12, 18, 20], size=3, replace=False):
            x, y = int(rng.integers(0, 130)), int(rng.integers(30, 75))
            colour = tuple(int(v) for v in class_table("apolloscape").colors[k])
            cv2.rectangle(image, (x, y), (x + 25, y + 12), colour, -1)
            cv2.rectangle(label, (x, y), (x + 25, y + 12), int(k), -1)
        cv2.imwrite(str(root / f"{i}.jpg"), image)
        cv2.imwrite(str(root / f"{i}.png"), label)
        rows.append(f"/{i}.jpg /{i}.png")
    for name, part in (("train_gt.txt", rows[:6]), ("val_gt.txt", rows[6:]), ("test_gt.txt", rows[6:])):
        (root / "list" / name).write_text("\n".join(part) + "\n")
    return root


MARKING = ["dataset.classes=apolloscape", "input.src_width=160", "input.src_height=90", "input.crop_top=10",
           "input.net_width=64", "input.net_height=32", "loss.background_weight=0.05", "augment.flip=0.5"]


def test_a_marking_model_trains_distils_and_is_scored(tmp_path):
    from training.config import load_config
    from training.distributed import Dist
    from training.evaluate import evaluate_checkpoint
    from training.train import Trainer

    root = marking_root(tmp_path / "marks")
    base = ROOT / "training/configs/synthetic/erfnet.yaml"
    teacher_dir = tmp_path / "teacher"
    cfg = load_config(base, [f"dataset.root={root}", f"output.dir={teacher_dir}", *TINY_TRAIN, *MARKING])
    summary = Trainer(cfg, Dist()).run()
    assert 0.0 <= summary["last_val"]["val/miou"] <= 1.0 and "best_val_miou" in summary and "val/f1" not in summary["last_val"]
    ckpt = torch.load(teacher_dir / "last.pt", weights_only=True)
    assert ckpt["best_score"] == summary["best_val_miou"] and "best_f1" not in ckpt

    student = load_config(base, [f"dataset.root={root}", f"output.dir={tmp_path / 'student'}", *TINY_TRAIN, *MARKING,
                                 "train.iterations=2", "train.val_every=2", "train.checkpoint_every=2",
                                 f"distill={{method: [intra_kd, at], teacher: {teacher_dir / 'last.pt'}, pairs: [[block2, block2]]}}"])
    trainer = Trainer(student, Dist())
    assert trainer.distiller.num_classes == 36
    trainer.run()

    report = evaluate_checkpoint(tmp_path / "student" / "last.pt", split="test", out=tmp_path / "eval", progress=False, workers=0)
    saved = json.loads((tmp_path / "eval" / "miou.json").read_text())
    assert saved["images"] == 2 and saved["classes"] == "apolloscape" and report["miou"] == saved["miou"]
    matrix = np.array(saved["confusion"])
    assert matrix.sum() == 2 * 32 * 64  # every pixel of both test images at the network size, none ignored here
    assert set(saved["iou"]) == {n for n, e in zip(class_table("apolloscape").names, class_table("apolloscape").evaluated) if e}

    import onnxruntime as ort

    from export.to_onnx import export_checkpoint
    from runtime.artifacts import read_sidecar

    # the logits graph (one export; the default probabilities graph: tests/export/test_marking_export.py)
    export_checkpoint(tmp_path / "student" / "last.pt", tmp_path / "m.onnx", probabilities=False, parity_count=1, save_pt2=False)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    outputs = session.run(None, {"image": np.zeros((1, 3, 32, 64), np.float32)})
    assert [o.shape for o in outputs] == [(1, 36, 32, 64)]  # class scores, no existence output
    side = read_sidecar(tmp_path / "m.onnx")
    assert side.class_table == "apolloscape" and [o["kind"] for o in side.outputs] == ["seg_logits"] and side.extra["parity"]["passed"]


def test_the_training_command_trains_a_marking_model_and_says_its_miou(tmp_path, capsys):
    from training.train import main

    root = marking_root(tmp_path / "marks")
    sets = [f"dataset.root={root}", f"output.dir={tmp_path / 'run'}", *TINY_TRAIN, *MARKING, "train.iterations=2",
            "train.val_every=2", "train.checkpoint_every=2"]
    assert main(["--config", str(ROOT / "training/configs/synthetic/erfnet.yaml"), *[a for s in sets for a in ("--set", s)]]) == 0
    assert "best val mIoU" in capsys.readouterr().out
    assert "val/miou" in (tmp_path / "run" / "scalars.csv").read_text()


def test_a_teacher_of_other_classes_is_refused(tiny_checkpoint, tmp_path):
    from training.config import load_config
    from training.distill.distiller import load_frozen

    student = load_config(ROOT / "training/configs/synthetic/erfnet.yaml", [*TINY_TRAIN, "dataset.classes=apolloscape"])
    with pytest.raises(DataError, match="teacher was trained on the 'culane' classes, the student on 'apolloscape'"):
        load_frozen(str(tiny_checkpoint), student, torch.device("cpu"), False)


@pytest.mark.parametrize("name", ["erfnet", "resnet101_psp", "erfnet_intra_kd"])
def test_the_apolloscape_configs_follow_the_paper(name):
    from training.config import load_config

    cfg = load_config(ROOT / f"training/configs/apolloscape/{name}.yaml")
    inp = cfg["input"]
    assert cfg["dataset"]["classes"] == "apolloscape" and cfg["loss"]["background_weight"] == 0.05 and cfg["augment"]["flip"] == 0.0
    assert (inp["src_width"], inp["src_height"] - inp["crop_top"]) == (3384, 1010)  # the paper's crop
    assert abs(inp["net_width"] - 1692) <= 4 and abs(inp["net_height"] - 505) <= 7  # its 1692x505, to multiples of 16
    assert cfg["train"]["batch_size"] == 8 and cfg["train"]["iterations"] == 180000


@pytest.mark.parametrize("name", ["erfnet", "resnet101_psp", "erfnet_intra_kd"])
def test_the_llamas_configs_follow_the_paper(name):
    from training.config import load_config

    cfg = load_config(ROOT / f"training/configs/llamas/{name}.yaml")
    inp = cfg["input"]
    assert cfg["dataset"]["classes"] == "culane" and cfg["loss"]["background_weight"] == 0.4
    assert (inp["src_width"], inp["src_height"] - inp["crop_top"], inp["net_width"], inp["net_height"]) == (1276, 384, 960, 288)
    assert (cfg["train"]["batch_size"], cfg["train"]["iterations"]) == (12, 80000)


def test_the_tusimple_configs_decode_on_tusimple_rows():
    from training.config import load_config

    for name in ("erfnet", "resnet101_psp", "erfnet_intra_kd"):
        cfg = load_config(ROOT / f"training/configs/tusimple/{name}.yaml")
        d, inp = cfg["decode"], cfg["input"]
        rows = [d["first_row"] - i * d["row_step"] for i in range(d["num_rows"])]
        assert sorted(rows) == list(range(160, 720, 10)) and inp["crop_top"] == 160 and (inp["src_width"], inp["src_height"]) == (1280, 720)
