"""runtime.benchmark and runtime.sample_input on the real tiny exported ERFNet through ONNX Runtime (CPU)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from runtime.artifacts import read_sidecar
from runtime.backends import load_backend
from runtime.benchmark import format_summary, main
from runtime.latency import summarize_records, time_inference
from runtime.errors import DataError
from runtime.sample_input import draw_road_scene, sample_batch

ROOT = Path(__file__).resolve().parents[2]
ITERATIONS, WARMUP = 30, 5


@pytest.fixture(scope="module")
def report_path(tiny_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "student.json"
    argv = ["--model", str(tiny_onnx), "--backend", "onnxruntime", "--device", "cpu", "--threads", "1",
            "--iterations", str(ITERATIONS), "--warmup", str(WARMUP), "--json", str(out), "--quiet"]
    assert main(argv) == 0
    return out


def test_report_records_and_summary_agree(report_path: Path):
    report = json.loads(report_path.read_text())
    assert report["kind"] == "benchmark" and report["latency_key"] == "host"
    host = np.array([r["host"] for r in report["records"]])
    assert len(report["records"]) == ITERATIONS and (host > 0).all()
    summary = report["summary"]["host"]
    assert summary["count"] == ITERATIONS
    for q in (50, 90, 99):
        assert summary[f"p{q}"] == pytest.approx(np.percentile(host, q), rel=1e-12)
    assert summary["mean"] == pytest.approx(host.mean(), rel=1e-12)
    assert summary["fps"] == pytest.approx(1000 / host.mean())
    assert set(report["summary"]) == {"host"}  # CPU: no device times


def test_report_meta(report_path: Path, tiny_onnx: Path):
    meta = json.loads(report_path.read_text())["meta"]
    sidecar = read_sidecar(tiny_onnx)
    assert meta["backend"] == "onnxruntime" and meta["device"] == "cpu" and meta["device_name"]
    assert meta["input_shape"] == [1, *sidecar.input["shape"][1:]] == [1, 3, 32, 128]
    assert meta["model"] == str(tiny_onnx) and meta["model_bytes"] == tiny_onnx.stat().st_size
    assert meta["model_name"] == sidecar.model["name"] and meta["arch"] == sidecar.model["arch"] == "erfnet"
    assert meta["params"] == sidecar.model["params"] > 0
    assert (meta["precision"], meta["format"]) == ("fp32", "onnx")
    assert (meta["threads"], meta["iterations"], meta["warmup"]) == (1, ITERATIONS, WARMUP)
    assert "onnxruntime" in meta["versions"] and "role" in meta and meta["created"]


class Counting:
    """A real ONNX Runtime backend that counts its calls and, optionally, reports device times."""

    def __init__(self, backend, device_times: bool = False):
        self.backend, self.calls, self.device_times = backend, 0, device_times
        self.last_device_times: dict[str, float] = {}

    def infer(self, batch):
        self.calls += 1
        out = self.backend.infer(batch)
        if self.device_times:
            self.last_device_times = {"h2d_ms": 0.1 * self.calls, "compute_ms": 1.0 * self.calls, "d2h_ms": 0.01}
        return out


def test_warmup_is_run_but_not_recorded(tiny_onnx: Path):
    backend = load_backend(tiny_onnx, backend="onnxruntime", device="cpu", threads=1)
    runner = Counting(backend)
    records = time_inference(runner, sample_batch(backend.sidecar.pre), iterations=7, warmup=3)
    assert runner.calls == 10 and len(records) == 7 and all(set(r) == {"host"} for r in records)


def test_device_times_become_series_and_text_lines(tiny_onnx: Path, report_path: Path):
    backend = load_backend(tiny_onnx, backend="onnxruntime", device="cpu", threads=1)
    runner = Counting(backend, device_times=True)
    records = time_inference(runner, sample_batch(backend.sidecar.pre), iterations=4, warmup=2)
    assert [r["compute"] for r in records] == [3.0, 4.0, 5.0, 6.0]  # calls 3..6: warm-up excluded
    summary = summarize_records(records)
    assert set(summary) == {"host", "compute", "h2d", "d2h"} and summary["compute"]["p50"] == pytest.approx(4.5)
    report = json.loads(report_path.read_text())
    text = format_summary({**report, "summary": summary})
    assert "GPU Compute Time" in text and "H2D Latency" in text and "D2H Latency" in text
    assert "GPU Compute Time" not in format_summary(report) and "Throughput" in format_summary(report)


def test_default_input_is_deterministic_and_looks_like_a_road(tiny_onnx: Path):
    pre = read_sidecar(tiny_onnx).pre
    first, second = sample_batch(pre), sample_batch(pre)
    assert first.dtype == np.float32 and first.shape == (1, 3, 32, 128)
    np.testing.assert_array_equal(first, second)
    assert first.std() > 0.3 and np.isfinite(first).all()
    scene = draw_road_scene().astype(int)
    assert scene.shape == (590, 1640, 3)
    top, bottom = scene[:100], scene[400:]
    assert (top[..., 0] > top[..., 2] + 20).mean() > 0.9  # blue sky (BGR)
    assert ((bottom > 200).all(axis=2)).mean() > 0.01  # white lane paint in the near field
    assert ((abs(bottom[..., 0] - bottom[..., 2]) < 20) & (bottom[..., 1] < 140)).mean() > 0.5  # grey asphalt


def test_image_input_is_resized_to_the_source_size(tiny_onnx: Path, tmp_path: Path):
    pre = read_sidecar(tiny_onnx).pre
    path = tmp_path / "frame.png"
    cv2.imwrite(str(path), cv2.resize(draw_road_scene(seed=5), (820, 295)))
    batch = sample_batch(pre, batch=2, image=path)
    assert batch.shape == (2, 3, 32, 128)
    np.testing.assert_array_equal(batch[0], batch[1])
    assert np.abs(batch[0] - sample_batch(pre)[0]).mean() < 0.2  # the same scene, half-size then scaled back


def test_unreadable_or_missing_image_is_a_data_error(tiny_onnx: Path, tmp_path: Path):
    pre = read_sidecar(tiny_onnx).pre
    bad = tmp_path / "broken.jpg"
    bad.write_text("not an image")
    with pytest.raises(DataError, match="broken.jpg: cannot decode image"):
        sample_batch(pre, image=bad)
    with pytest.raises(DataError, match="not found"):
        sample_batch(pre, image=tmp_path / "absent.jpg")


def test_batch_and_image_options(tiny_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), draw_road_scene(seed=1))
    out = tmp_path / "b2.json"
    argv = ["--model", str(tiny_onnx), "--device", "cpu", "--threads", "1", "--iterations", "3", "--warmup", "0",
            "--batch", "2", "--image", str(image), "--json", str(out)]
    assert main(argv) == 0
    report = json.loads(out.read_text())
    assert report["meta"]["input_shape"] == [2, 3, 32, 128] and len(report["records"]) == 3
    text = capsys.readouterr().out
    assert "Throughput" in text and "percentile(99%)" in text and "2x3x32x128" in text


def test_bad_image_exits_2_with_one_line(tiny_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    assert main(["--model", str(tiny_onnx), "--image", str(tmp_path / "none.png"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "none.png" in err and len(err.splitlines()) == 1


def test_fp16_is_refused_for_onnx_and_for_torch_on_the_cpu(tiny_onnx: Path, capsys: pytest.CaptureFixture):
    assert main(["--model", str(tiny_onnx), "--fp16", "--quiet", "--iterations", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {tiny_onnx}: --fp16 is for the torch backend") and len(err.splitlines()) == 1
    pt2 = tiny_onnx.with_suffix(".pt2")  # the FP32 torch.export program beside it
    assert main(["--model", str(pt2), "--device", "cpu", "--fp16", "--quiet", "--iterations", "1"]) == 2
    assert capsys.readouterr().err.strip() == f"error: {pt2}: fp16 with the torch backend needs device cuda"


def test_missing_model_exits_2_with_one_line(tmp_path: Path):
    missing = tmp_path / "absent.onnx"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "runtime.benchmark", "--model", str(missing), "--iterations", "2"],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == f"error: {missing}: model file not found"


class _Recorded:
    """A real backend whose calls are logged (name per call), for the order of an interleaved run."""

    def __init__(self, backend, name: str, log: list[str]) -> None:
        self.backend, self.name, self.log = backend, name, log
        self.last_device_times: dict[str, float] = {}

    def infer(self, batch):
        self.log.append(self.name)
        return self.backend.infer(batch)


def test_interleaved_rounds_alternate_and_rewarm_each_model(tiny_onnx: Path):
    from runtime.latency import time_interleaved

    log: list[str] = []
    runners = [_Recorded(load_backend(tiny_onnx, "onnxruntime", "cpu", 1), name, log) for name in ("T", "S")]
    batch = sample_batch(runners[0].backend.sidecar.pre)
    records = time_interleaved(runners, [batch, batch], iterations=3, warmup=1, rewarm=1)
    assert [len(r) for r in records] == [3, 3] and all(rec["host"] > 0 for r in records for rec in r)
    # 4 rounds; each model: one untimed then one timed call; the order alternates between rounds
    assert "".join(log) == "TTSS" "SSTT" "TTSS" "SSTT"


def test_several_models_give_one_report_each_naming_the_others(tiny_onnx: Path, tmp_path: Path, capsys):
    other = tmp_path / "copy.onnx"
    other.write_bytes(tiny_onnx.read_bytes())
    Path(f"{other}.json").write_text(Path(f"{tiny_onnx}.json").read_text())
    outs = [tmp_path / "a.json", tmp_path / "b.json"]
    argv = ["--model", str(tiny_onnx), "--model", str(other), "--device", "cpu", "--iterations", "4", "--warmup", "1",
            "--json", str(outs[0]), "--json", str(outs[1]), "--quiet"]
    assert main(argv) == 0
    a, b = (json.loads(p.read_text()) for p in outs)
    assert len(a["records"]) == len(b["records"]) == 4
    assert a["meta"]["interleaved_with"] == [str(other)] and b["meta"]["interleaved_with"] == [str(tiny_onnx)]
    with pytest.raises(SystemExit) as stop:
        main(argv[:-5] + ["--json", str(outs[0]), "--quiet"])
    assert stop.value.code == 2 and "1 --json for 2 --model" in capsys.readouterr().err
