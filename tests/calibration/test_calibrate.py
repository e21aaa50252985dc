"""INT8 calibration: Q/DQ layout per target, the range cache, the held-back report, bad inputs."""
from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from calibration.int8 import calibrate
from runtime.artifacts import read_sidecar
from runtime.backends import load_backend
from runtime.decode import DecodedLane, lanes_agree
from runtime.errors import DataError
from runtime.paired import format_change

ROOT = Path(__file__).resolve().parents[2]
REPORT = ["test_split/test0_normal.txt", "test_split/test6_curve.txt"]  # held back: the calibration draws from train_gt.txt


def qdq(path: Path) -> tuple[onnx.GraphProto, dict[str, np.ndarray], dict[str, list[onnx.NodeProto]]]:
    graph = onnx.load(path).graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    by_op: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for node in graph.node:
        by_op[node.op_type].append(node)
    return graph, inits, by_op


@pytest.fixture(scope="module")
def int8_trt(tiny_onnx: Path, tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("int8") / "student.int8.onnx"
    result = calibrate(tiny_onnx, tiny_dataset, "train_gt.txt", 8, "percentile", "trt", out, report_lists=REPORT)
    return out, result


def test_trt_target_is_symmetric_int8_with_per_channel_weights_and_float_bias(int8_trt):
    out, _ = int8_trt
    graph, inits, by_op = qdq(out)
    quant = by_op["QuantizeLinear"] + by_op["DequantizeLinear"]
    assert by_op["QuantizeLinear"] and by_op["DequantizeLinear"]
    for node in quant:
        zero = inits[node.input[2]]
        assert zero.dtype == np.int8 and not zero.any(), node.name  # signed, zero points 0
    producers = {o: n for n in graph.node for o in n.output}
    convs = by_op["Conv"] + by_op["ConvTranspose"]
    assert convs
    for conv in convs:
        weight_dq = producers[conv.input[1]]
        assert weight_dq.op_type == "DequantizeLinear", conv.name
        scale, weight = inits[weight_dq.input[1]], inits[weight_dq.input[0]]
        channel_axis = 1 if conv.op_type == "ConvTranspose" else 0
        assert weight.dtype == np.int8 and scale.ndim == 1 and scale.size == weight.shape[channel_axis], conv.name
        if len(conv.input) > 2:  # bias stays float
            bias = conv.input[2]
            assert bias in inits and inits[bias].dtype == np.float32, conv.name
    for node in by_op["Softmax"] + by_op["Sigmoid"] + by_op["BatchNormalization"]:
        assert all(producers.get(i) is None or producers[i].op_type != "DequantizeLinear" for i in node.input), node.name
    side = read_sidecar(out)
    assert side.precision == "int8" and side.extra["calibration"]["target"] == "trt"


def test_report_compares_fp32_and_int8_on_held_back_images(int8_trt, tiny_onnx, tiny_dataset):
    out, result = int8_trt
    report = result["report"]
    assert report["images"] == 2 * 3  # 3 images in each of the two held-back lists
    assert set(report["f1"]["fp32"]) == set(report["f1"]["int8"]) >= {"test0_normal", "test6_curve", "total"}
    assert 0 <= report["lanes_identical_fraction"] <= report["lanes_agree_fraction"] <= 1
    errors = report["output_errors"]["seg_prob"]
    assert 0 <= errors["mean_abs"] <= errors["p99_abs"] <= errors["max_abs"] <= 1
    markdown = Path(f"{out}.report.md").read_text()
    assert "| test0_normal |" in markdown and "held-back" in markdown
    change = report["total_change"]  # the total's change with its image-paired interval, in points
    total = {k: 100 * (report["f1"][k]["total"]["f1"] or 0) for k in ("fp32", "int8")}
    assert change["images"] == 6 and change["points"] == pytest.approx(total["int8"] - total["fp32"])
    assert change["low"] <= change["points"] <= change["high"]
    assert f"**{format_change(change)}** points" in markdown
    # the INT8 model really runs under ONNX Runtime and stays close to FP32 on a real image
    from runtime.culane import CulaneDataset

    data = CulaneDataset(tiny_dataset)
    x = read_sidecar(tiny_onnx).pre(data.read_image(data.read_list("test_split/test0_normal.txt").samples[0]))
    a, b = load_backend(tiny_onnx).infer(x), load_backend(out).infer(x)
    assert np.abs(a["seg_prob"] - b["seg_prob"]).mean() < 0.02


def test_cpu_target_uses_unsigned_activations_and_reuses_cached_ranges(int8_trt, tiny_onnx, tiny_dataset, tmp_path):
    _, first = int8_trt
    out = tmp_path / "student.int8cpu.onnx"
    result = calibrate(tiny_onnx, tiny_dataset, "train_gt.txt", 8, "minmax", "cpu", out, report_lists=REPORT[:1])
    assert result["calibration"]["cache_hit"] and result["calibration"]["cache"] == first["calibration"]["cache"]
    _, inits, by_op = qdq(out)
    activation_zero_points = {inits[n.input[2]].dtype for n in by_op["QuantizeLinear"]}
    assert np.dtype(np.uint8) in activation_zero_points


def test_cpu_target_leaves_maxpool_in_float(int8_trt, tiny_onnx, tiny_dataset, tmp_path):
    """ONNX Runtime's uint8 MaxPool is the slow one, so the cpu layout does not quantize MaxPool. A
    quantized MaxPool's output Q reuses its input's scale (the quantizer propagates it: ORT then runs
    the pair as one uint8 MaxPool); a float one is followed by a Q with its own calibrated range.
    (ORT still folds a DQ -> MaxPool -> Q pair by itself where the two calibrated ranges happen to be
    equal, which depends on the model: not asserted here.)"""
    out = tmp_path / "student.int8cpu.onnx"
    calibrate(tiny_onnx, tiny_dataset, "train_gt.txt", 8, "percentile", "cpu", out, report_lists=REPORT[:1])  # cached ranges
    graph, _, by_op = qdq(out)
    producers = {o: n for n in graph.node for o in n.output}
    consumers = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)
    pools = [n for n in by_op["MaxPool"] if producers[n.input[0]].op_type == "DequantizeLinear"]
    assert len(pools) >= 3 and by_op["QuantizeLinear"]
    for pool in pools:
        after = [c for c in consumers[pool.output[0]] if c.op_type == "QuantizeLinear"]
        assert after and all(q.input[1] != producers[pool.input[0]].input[1] for q in after), pool.name


def test_cached_ranges_need_no_images(tiny_onnx, tiny_dataset, tmp_path):
    # A different image set is a different cache: it must be collected, so a missing image fails ...
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(tiny_dataset, root)
    a = calibrate(tiny_onnx, root, "val_gt.txt", 2, "percentile", "trt", tmp_path / "a.int8.onnx", report_lists=REPORT[:1])
    assert not a["calibration"]["cache_hit"]
    # ... while the same images again come from the cache even after the images are gone
    for line in (root / "list" / "val_gt.txt").read_text().split("\n"):
        if line.strip():
            (root / line.split()[0].lstrip("/")).unlink()
    b = calibrate(tiny_onnx, root, "val_gt.txt", 2, "minmax", "trt", tmp_path / "b.int8.onnx", report_lists=REPORT[:1])
    assert b["calibration"]["cache_hit"]


def test_calibration_and_report_images_must_be_disjoint(tiny_onnx, tiny_dataset, tmp_path):
    with pytest.raises(DataError, match="report images are calibration images"):
        calibrate(tiny_onnx, tiny_dataset, "test_split/test0_normal.txt", 3, "minmax", "trt", tmp_path / "x.int8.onnx", report_lists=REPORT)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "calibration.calibrate", *args], capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_bad_inputs_give_one_clear_line(tiny_onnx, tiny_dataset, tmp_path):
    empty = tmp_path / "data"
    (empty / "list").mkdir(parents=True)
    (empty / "list" / "train_gt.txt").write_text("")
    cases = [
        (["--onnx", str(tmp_path / "missing.onnx"), "--data-root", str(tiny_dataset)], "missing.onnx: ONNX model not found"),
        (["--onnx", str(tiny_onnx), "--data-root", str(empty)], "calibration list is empty"),
        (["--onnx", str(tiny_onnx), "--data-root", str(tiny_dataset), "--list", "nope.txt"], "nope.txt"),
    ]
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x00garbage")
    Path(f"{corrupt}.json").write_text(Path(f"{tiny_onnx}.json").read_text())
    cases.append((["--onnx", str(corrupt), "--data-root", str(tiny_dataset)], "corrupt.onnx: cannot prepare the model"))
    for args, message in cases:
        r = run_cli(*args, "--out", str(tmp_path / "o.int8.onnx"), "--num-images", "2")
        assert r.returncode == 2, (args, r.stderr)
        assert message in r.stderr and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "o.int8.onnx").exists()


def test_int8_accuracy_stays_within_bound_on_a_trained_model(trained_tiny_onnx, tiny_dataset, tmp_path):
    # Calibrated on the 4 validation images, judged on the 12 training images the model has learnt
    # (measured here: FP32 F1 0.58, INT8 percentile 0.56, minmax 0.51; entropy 0.29 on 4 images).
    out = tmp_path / "trained.int8.onnx"
    report = calibrate(trained_tiny_onnx, tiny_dataset, "val_gt.txt", 4, "percentile", "trt", out, report_lists=["train_gt.txt"])["report"]
    fp32, int8 = report["f1"]["fp32"]["total"]["f1"], report["f1"]["int8"]["total"]["f1"]
    assert fp32 >= 0.3, "the tiny model did not learn lanes: the bound below would say nothing"
    assert int8 >= fp32 - 0.1, (fp32, int8)
    assert report["output_errors"]["seg_prob"]["mean_abs"] < 0.05


def test_lanes_agree_within_tolerance_on_the_same_rows_only():
    rows = np.array([589.0, 569.0, 549.0])
    lane = lambda i, xs: DecodedLane(i, np.stack([np.asarray(xs, float), rows], 1))  # noqa: E731
    a = [lane(1, [100, 200, 300]), lane(3, [900, 800, 700])]
    shifted = [lane(1, [109, 209, 309]), lane(3, [909, 809, 709])]
    assert lanes_agree(a, shifted, 10.0) and not lanes_agree(a, shifted, 8.0) and not lanes_agree(a, shifted)
    assert lanes_agree(a, [lane(3, [900, 800, 700]), lane(1, [100, 200, 300])])  # order does not matter
    assert not lanes_agree(a, a[:1], 10.0)  # a lane lost
    assert not lanes_agree(a, [DecodedLane(1, a[0].points[:2]), a[1]], 10.0)  # a point lost
    assert not lanes_agree(a, [DecodedLane(1, a[0].points - np.array([[0.0, 20.0]])), a[1]], 100.0)  # other rows
    assert lanes_agree([], [], 1.0)
