"""Export of a marking model (ApolloScape classes): one seg_prob output, its sidecar, parity by
probabilities and argmax pixels, the .pt2 program and FP16, through real ONNX Runtime."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch

import export.to_onnx as to_onnx
from export.to_fp16 import to_fp16
from runtime.artifacts import read_sidecar
from runtime.backends import load_backend
from runtime.classes import class_table
from runtime.culane import CulaneDataset
from training.models import load_trained


def val_batch(root: Path, onnx_path: Path) -> np.ndarray:
    pre = read_sidecar(onnx_path).pre
    data = CulaneDataset(root)
    return np.concatenate([pre(data.read_image(s)) for s in data.read_list("val_gt.txt").samples])


def checkpoint(onnx_path: Path) -> Path:
    return Path(read_sidecar(onnx_path).source["checkpoint"])


def test_a_marking_model_exports_class_probabilities_only(marking_onnx, marking_dataset):
    graph = onnx.load(marking_onnx)
    onnx.checker.check_model(graph, full_check=True)
    assert [o.name for o in graph.graph.output] == ["seg_prob"]
    side = read_sidecar(marking_onnx)
    apollo = class_table("apolloscape")
    assert side.class_table == "apolloscape" and side.table == apollo and side.classes == list(apollo.names)
    assert side.outputs == [{"name": "seg_prob", "shape": [1, 36, 32, 64], "dtype": "float32", "kind": "seg_prob"}]
    assert side.decode  # kept (unused by markings): every sidecar has it
    parity = side.extra["parity"]
    assert parity["task"] == "markings" and parity["passed"] and parity["images"] == 2
    assert parity["max_abs_prob_diff"] <= parity["prob_tolerance"] == 1e-4
    assert parity["pixels_identical_fraction"] >= parity["pixel_agreement_required"] == 0.999

    batch = val_batch(marking_dataset, marking_onnx)
    out = load_backend(marking_onnx, "onnxruntime", "cpu").infer(batch)
    assert set(out) == {"seg_prob"} and out["seg_prob"].shape == (2, 36, 32, 64)
    net, _ = load_trained(checkpoint(marking_onnx), torch.device("cpu"))
    with torch.no_grad():
        seg, exist = net(torch.from_numpy(batch))[:2]
    assert exist is None
    np.testing.assert_allclose(out["seg_prob"], torch.softmax(seg, 1).numpy(), atol=1e-5)
    assert (out["seg_prob"].argmax(1) == seg.argmax(1).numpy()).mean() >= 0.999


def test_a_marking_graph_that_differs_from_pytorch_fails_parity(marking_onnx, marking_dataset, tmp_path):
    net, _ = load_trained(checkpoint(marking_onnx), torch.device("cpu"))
    with torch.no_grad():
        net.decoder.output_conv.bias[3].add_(50.0)  # class 3 everywhere: the exported graph no longer matches
    logits = tmp_path / "logits.onnx"
    to_onnx.export_graph(to_onnx.DeployModel(load_trained(checkpoint(marking_onnx), torch.device("cpu"))[0], False),
                         torch.zeros(1, 3, 32, 64), logits, False)
    result = to_onnx.check_marking_parity(net, marking_onnx, logits, val_batch(marking_dataset, marking_onnx), True)
    assert not result["passed"] and result["pixels_identical_fraction"] < 0.5 and result["max_abs_prob_diff"] > 0.5
    assert "identical argmax on" in to_onnx.parity_summary(result)


def test_the_pt2_program_and_the_fp16_model_of_a_marking_model(marking_onnx, marking_dataset, tmp_path):
    pt2 = marking_onnx.with_suffix(".pt2")
    assert read_sidecar(pt2).class_table == "apolloscape" and read_sidecar(pt2).format == "torch.export"
    batch = val_batch(marking_dataset, marking_onnx)
    a = load_backend(marking_onnx).infer(batch)
    b = load_backend(pt2, "auto", "cpu").infer(batch)
    assert set(b) == {"seg_prob"}
    np.testing.assert_allclose(a["seg_prob"], b["seg_prob"], atol=1e-5)

    out = tmp_path / "marks.fp16.onnx"
    result = to_fp16(marking_onnx, out, data_root=str(marking_dataset), check_images=2)
    side = read_sidecar(out)
    assert side.precision == "fp16" and side.class_table == "apolloscape" and [o["kind"] for o in side.outputs] == ["seg_prob"]
    assert result["images"] == 2 and set(result["max_abs_diff"]) == {"seg_prob"} and result["max_abs_diff"]["seg_prob"] < 1e-2
    assert result["pixels_identical_fraction"] > 0.99 and "lanes_identical_fraction" not in result
    assert side.extra["check_vs_fp32"] == {k: v for k, v in result.items() if k != "out"}
