"""ONNX export (parity, sidecar, teacher graph size), FP16 conversion, the .pt2 program, bad inputs."""
from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

import export.to_onnx as to_onnx
from export.to_fp16 import to_fp16
from runtime.artifacts import read_sidecar
from runtime.backends import load_backend
from runtime.culane import CulaneDataset
from runtime.errors import DataError
from training.models import load_trained
from training.models.heads import channel_softmax

ROOT = Path(__file__).resolve().parents[2]


def val_batch(tiny_dataset: Path, onnx_path: Path, count: int = 3) -> np.ndarray:
    pre = read_sidecar(onnx_path).pre
    data = CulaneDataset(tiny_dataset)
    samples = data.read_list("val_gt.txt").samples[:count]
    return np.concatenate([pre(data.read_image(s)) for s in samples])


def test_export_writes_a_checked_graph_whose_outputs_match_pytorch(tiny_onnx, tiny_checkpoint, tiny_dataset):
    model = onnx.load(tiny_onnx)
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version >= 17
    side = read_sidecar(tiny_onnx)
    assert side.format == "onnx" and side.precision == "fp32" and side.input["shape"] == [1, 3, 32, 128]
    assert [o["kind"] for o in side.outputs] == ["seg_prob", "exist_prob"]
    assert side.extra["parity"]["passed"] and side.extra["parity"]["max_abs_logit_diff"] <= 1e-4
    assert side.source["sha256"] and side.extra["dataset"]["root"] == str(tiny_dataset)

    batch = val_batch(tiny_dataset, tiny_onnx)
    out = load_backend(tiny_onnx, "onnxruntime", "cpu").infer(batch)
    net, _ = load_trained(tiny_checkpoint, torch.device("cpu"))
    with torch.no_grad():
        seg, exist = net(torch.from_numpy(batch))[:2]
    np.testing.assert_allclose(out["seg_prob"], torch.softmax(seg, 1).numpy(), atol=1e-5)
    np.testing.assert_allclose(out["exist_prob"], torch.sigmoid(exist).numpy(), atol=1e-5)
    np.testing.assert_allclose(out["seg_prob"].sum(1), 1.0, atol=1e-5)
    ops = Counter(node.op_type for node in model.graph.node)
    assert ops["Softmax"] == 0 and ops["ReduceMax"] == 2 and ops["Cast"] == 0  # the channel softmax, written out (output and existence head)


@pytest.mark.parametrize("case", ["normal", "offset", "flat", "spread"])
def test_the_written_out_channel_softmax_is_torch_softmax_in_value_and_gradient(case):
    """Against a float64 reference on hard inputs: large offsets (exp overflows without the max),
    flat logits (exactly uniform), a huge spread (probabilities of 0 and 1)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, 7, 9, generator=g, dtype=torch.float64)
    x = {"normal": x, "offset": x + 1e4, "flat": torch.zeros_like(x), "spread": x * 300}[case]
    reference = torch.softmax(x, 1)
    x32 = x.float().requires_grad_(True)
    probs = channel_softmax(x32)
    assert torch.isfinite(probs).all()
    tolerance = 1e-2 if case == "offset" else 1e-5  # float32 holds 1e4 + x to ~1e-3 only: the input's own rounding
    torch.testing.assert_close(probs.double(), reference, atol=tolerance, rtol=0)
    weights = torch.randn(x.shape, generator=g, dtype=torch.float64)
    (probs.double() * weights).sum().backward()
    x64 = x.clone().requires_grad_(True)
    (torch.softmax(x64, 1) * weights).sum().backward()
    torch.testing.assert_close(x32.grad.double(), x64.grad, atol=tolerance, rtol=0)


def test_a_graph_that_differs_from_pytorch_fails_the_parity_check(tiny_onnx, tiny_checkpoint, tiny_dataset, tmp_path):
    net, ckpt = load_trained(tiny_checkpoint, torch.device("cpu"))
    with torch.no_grad():
        net.decoder.output_conv.bias.add_(0.5)  # the deployed graph no longer matches this model
    pre = read_sidecar(tiny_onnx).pre
    images = val_batch(tiny_dataset, tiny_onnx, 2)
    from runtime.decode import DecodeParams, LaneDecoder

    decoder = LaneDecoder(pre, DecodeParams.from_dict(ckpt["config"]["decode"]))
    logits = tmp_path / "logits.onnx"
    to_onnx.export_graph(to_onnx.DeployModel(load_trained(tiny_checkpoint, torch.device("cpu"))[0], False),
                         torch.zeros(1, 3, 32, 128), logits, False)
    result = to_onnx.check_parity(net, tiny_onnx, logits, images, decoder, True)
    assert not result["passed"] and result["max_abs_logit_diff"] > 0.4


def test_export_fails_loudly_and_writes_no_model_when_parity_fails(tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setattr(to_onnx, "LOGIT_TOLERANCE", -1.0)  # nothing can pass
    out = tmp_path / "m.onnx"
    with pytest.raises(to_onnx.ParityError, match="ONNX differs from PyTorch"):
        to_onnx.export_checkpoint(tiny_checkpoint, out, parity_count=2, save_pt2=False)
    assert not out.exists() and not Path(f"{out}.json").exists()
    assert json.loads(Path(f"{out}.parity.json").read_text())["passed"] is False
    assert not list(tmp_path.glob(".export-*"))  # no temporary left behind


def test_dynamic_batch_export_runs_any_batch(tiny_checkpoint, tiny_dataset, tmp_path):
    out = tmp_path / "dyn.onnx"
    to_onnx.export_checkpoint(tiny_checkpoint, out, dynamic_batch=True, parity_count=3, save_pt2=False)
    assert read_sidecar(out).input["shape"][0] == "batch"
    backend = load_backend(out, "onnxruntime", "cpu")
    batch = val_batch(tiny_dataset, out, 3)
    together = backend.infer(batch)["seg_prob"]
    alone = np.concatenate([backend.infer(batch[i : i + 1])["seg_prob"] for i in range(3)])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_pt2_program_matches_the_onnx_model(tiny_onnx, tiny_dataset):
    pt2 = tiny_onnx.with_suffix(".pt2")
    assert read_sidecar(pt2).format == "torch.export"
    batch = val_batch(tiny_dataset, tiny_onnx, 2)
    a = load_backend(tiny_onnx, "auto", "cpu").infer(batch)
    b = load_backend(pt2, "auto", "cpu").infer(batch)
    assert load_backend(pt2).name == "torch"
    for kind in a:
        np.testing.assert_allclose(a[kind], b[kind], atol=1e-5)


def test_fp16_model_keeps_float32_io_and_runs_under_onnxruntime(tiny_onnx, tiny_dataset, tmp_path):
    out = tmp_path / "student.fp16.onnx"
    result = to_fp16(tiny_onnx, out, data_root=str(tiny_dataset), check_images=3)
    model = onnx.load(out)
    f32, f16 = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16
    assert all(v.type.tensor_type.elem_type == f32 for v in [*model.graph.input, *model.graph.output])
    weights = Counter(t.data_type for t in model.graph.initializer if len(t.dims) == 4)
    assert weights[f16] > 0 and weights[f32] == 0  # every conv kernel is half precision
    side = read_sidecar(out)
    assert side.precision == "fp16" and side.source["parent"] == str(tiny_onnx)
    batch = val_batch(tiny_dataset, tiny_onnx, 2)
    a = load_backend(tiny_onnx).infer(batch)["seg_prob"]
    b = load_backend(out).infer(batch)["seg_prob"]
    assert b.dtype == np.float32 and np.abs(a - b).max() < 1e-2
    assert result["images"] == 3 and 0 <= result["max_abs_diff"]["seg_prob"] < 1e-2


def teacher_checkpoint(tiny_dataset: Path, out: Path, depth: int) -> Path:
    from tests.helpers import TINY_TRAIN
    from training.config import load_config
    from training.distributed import Dist
    from training.train import Trainer

    overrides = [f"dataset.root={tiny_dataset}", f"output.dir={out}", f"model.depth={depth}", "model.head_channels=64",
                 *TINY_TRAIN, "train.iterations=1", "train.val_every=1", "train.checkpoint_every=1", "train.max_val_images=1"]
    Trainer(load_config(ROOT / "training/configs/synthetic/resnet_psp.yaml", overrides), Dist()).run()
    return out / "last.pt"


def test_resnet101_teacher_exports_without_a_gather_explosion(tiny_dataset, tmp_path):
    ckpt = teacher_checkpoint(tiny_dataset, tmp_path / "teacher", 101)
    out = tmp_path / "teacher.onnx"
    result = to_onnx.export_checkpoint(ckpt, out, parity_count=2, save_pt2=False)
    ops = Counter(n.op_type for n in onnx.load(out).graph.node)
    backbone = ops["Conv"] + ops["Relu"] + ops["Add"]
    assert ops["Conv"] >= 104  # ResNet-101's convolutions are all there
    assert ops["Gather"] + ops["Slice"] <= 8, ops  # pyramid pooling without per-bin slicing
    assert result["nodes"] - backbone <= 40, ops  # the head adds a few dozen nodes, not hundreds
    assert result["parity"]["passed"]


def test_bad_inputs_give_one_clear_line(tiny_onnx, tiny_dataset, tmp_path):
    missing = tmp_path / "nope.onnx"
    r = subprocess.run([sys.executable, "-m", "export.to_onnx", "--ckpt", str(tmp_path / "nope.pt"), "--out", str(missing)],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and "nope.pt" in r.stderr and "Traceback" not in r.stderr
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"not a model")
    Path(f"{corrupt}.json").write_text(Path(f"{tiny_onnx}.json").read_text())
    with pytest.raises(DataError, match="corrupt.onnx: ONNX Runtime cannot load the model"):
        load_backend(corrupt)
    with pytest.raises(DataError, match="sidecar not found"):
        bare = tmp_path / "bare.onnx"
        bare.write_bytes(tiny_onnx.read_bytes())
        load_backend(bare)
    with pytest.raises(DataError, match=r"does not match the model's \(N, 3, 32, 128\)"):
        load_backend(tiny_onnx).infer(np.zeros((1, 3, 64, 128), np.float32))
    r = subprocess.run([sys.executable, "-m", "export.to_fp16", "--onnx", str(missing)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and "nope.onnx: ONNX model not found" in r.stderr and len(r.stderr.strip().splitlines()) == 1
