"""export.modelopt_int8: NVIDIA ModelOpt's INT8 Q/DQ + FP16 graph of the real tiny ERFNet, run by ONNX Runtime's
CPU provider and reported like the CPU layout; the ONNX Runtime layout as a recorded fallback when ModelOpt is absent."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from runtime.artifacts import read_sidecar
from runtime.backends import load_backend
from runtime.sample_input import sample_batch

ROOT = Path(__file__).resolve().parents[2]
pytest.importorskip("modelopt.onnx.quantization", reason="nvidia-modelopt (the export extra) is not installed")


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "export.modelopt_int8", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=600, env=env)


def test_modelopt_graph_is_int8_qdq_with_fp16_elsewhere_and_reported(tiny_onnx, tiny_dataset, tmp_path):
    out = tmp_path / "student.int8.onnx"
    proc = run("--onnx", str(tiny_onnx), "--data-root", str(tiny_dataset), "--num-images", "6", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "nvidia-modelopt" in proc.stdout
    graph = onnx.load(out)
    ops = {n.op_type for n in graph.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert any(init.data_type == onnx.TensorProto.FLOAT16 for init in graph.graph.initializer)  # FP16 outside the INT8 layers
    sidecar = read_sidecar(out)
    assert sidecar.precision == "int8" and sidecar.extra["quantizer"]["tool"] == "nvidia-modelopt"
    assert sidecar.extra["quantizer"]["high_precision_dtype"] == "fp16" and sidecar.extra["calibration"]["images"] == 6
    # the layers producing the outputs stay FP16: no DequantizeLinear feeds them
    heads = sidecar.extra["quantizer"]["fp16_output_layers"]
    producers = {o: n for n in graph.graph.node for o in n.output}
    assert len(heads) == 2 and {n.op_type for n in graph.graph.node if n.name in heads} == {"ConvTranspose", "Gemm"}
    for node in (n for n in graph.graph.node if n.name in heads):
        assert all(producers[i].op_type != "DequantizeLinear" for i in node.input[:1] if i in producers), node.name
    # float32 in and out, the FP32 model's names: the runtime runs it as any other artifact
    fp32, int8 = load_backend(tiny_onnx, "onnxruntime", "cpu"), load_backend(out, "onnxruntime", "cpu")
    x = sample_batch(fp32.sidecar.pre)
    a, b = fp32.infer(x), int8.infer(x)
    assert set(a) == set(b) and all(b[k].dtype == np.float32 and b[k].shape == a[k].shape for k in a)
    assert np.abs(a["seg_prob"] - b["seg_prob"]).max() < 0.5  # quantized, not broken
    report = json.loads(Path(f"{out}.report.json").read_text())
    assert report["int8"] == str(out) and report["images"] == 27 and Path(f"{out}.report.md").is_file()


def test_an_excluded_layer_is_that_layer_only_not_every_name_it_begins(tiny_onnx, tiny_dataset, tmp_path):
    from export.modelopt_int8 import calibration_array, modelopt_quantize
    from calibration.int8 import calibration_samples

    names = [n.name for n in onnx.load(tiny_onnx).graph.node if n.op_type == "Conv"]
    calib = calibration_array(tiny_dataset, calibration_samples(tiny_dataset, "train_gt.txt", 2, 0), read_sidecar(tiny_onnx).pre)

    def quantized_convs(exclude: list[str]) -> set[str]:
        out = tmp_path / f"excluded{len(exclude)}.int8.onnx"
        modelopt_quantize(tiny_onnx, calib, "max", out, exclude)
        graph = onnx.load(out).graph
        producers = {o: n.op_type for n in graph.node for o in n.output}
        return {n.name for n in graph.node if n.op_type == "Conv" and producers.get(n.input[1]) == "DequantizeLinear"}

    everything = quantized_convs([])
    # a quantized layer whose name begins others' (node_conv2d_1: node_conv2d_10 ...)
    prefix = next(a for a in names if a in everything and any(b != a and b.startswith(a) and b in everything for b in names))
    left = quantized_convs([prefix])
    assert prefix not in left  # its weights stay FP16
    assert left == everything - {prefix}  # and only its: ModelOpt alone would exclude every name it begins


def test_without_modelopt_the_onnxruntime_layout_is_written_and_recorded(tiny_onnx, tiny_dataset, tmp_path):
    shadow = tmp_path / "shadow" / "modelopt"  # an installation without ModelOpt: its import fails
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named modelopt')\n")
    env = {**os.environ, "PYTHONPATH": f"{shadow.parent}{os.pathsep}{ROOT}"}
    out = tmp_path / "fallback.int8.onnx"
    # max calibration: ONNX Runtime's entropy histograms take minutes on 2 cores, and the method is not what is tested here
    args = ["--onnx", str(tiny_onnx), "--data-root", str(tiny_dataset), "--num-images", "6", "--method", "max", "--out", str(out)]
    proc = run(*args, "--no-fallback", env=env)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "nvidia-modelopt is not installed" in lines[0] and not out.exists()
    proc = run(*args, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "warning: nvidia-modelopt is not installed" in proc.stderr and "(fallback)" in proc.stdout
    quantizer = read_sidecar(out).extra["quantizer"]
    assert quantizer["tool"] == "onnxruntime" and quantizer["fallback_from"] == "nvidia-modelopt"
    assert read_sidecar(out).extra["calibration"]["target"] == "trt"
