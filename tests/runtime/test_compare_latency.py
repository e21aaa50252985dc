"""runtime.compare_latency on real benchmark reports of the tiny exported ERFNet (ONNX Runtime, CPU)."""
import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from runtime.benchmark import benchmark
from runtime.compare_latency import main
from runtime.latency import summarize

ROOT = Path(__file__).resolve().parents[2]
SLOWDOWN = 7.0  # the "teacher" report: the student's real records, each multiplied by this


def _write(path: Path, report: dict) -> Path:
    path.write_text(json.dumps(report))
    return path


@pytest.fixture(scope="module")
def reports(tiny_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(teacher.json, student.json): a real benchmark run, and the same with altered (slower) records."""
    folder = tmp_path_factory.mktemp("latency")
    student = benchmark(str(tiny_onnx), backend="onnxruntime", device="cpu", threads=1, iterations=25, warmup=3)
    teacher = copy.deepcopy(student)
    teacher["records"] = [{"host": r["host"] * SLOWDOWN + (0.01 if i % 2 else 0.0)} for i, r in enumerate(student["records"])]
    teacher["summary"] = {"host": summarize(r["host"] for r in teacher["records"])}
    teacher["meta"].update(model_name="teacher-net", arch="resnet", role="teacher", params=52_530_000)
    return _write(folder / "teacher.json", teacher), _write(folder / "student.json", student)


def _p50(path: Path) -> float:
    return json.loads(path.read_text())["summary"]["host"]["p50"]


def test_writes_md_png_json_with_the_ratio_of_the_inputs(reports, tmp_path: Path, capsys):
    teacher, student = reports
    out = tmp_path / "reports" / "synthetic" / "latency.md"
    assert main([str(teacher), str(student), "--out", str(out)]) == 0
    expected = _p50(teacher) / _p50(student)
    assert 6.0 < expected < 8.0
    figures = json.loads(out.with_name("latency.json").read_text())
    assert figures["ratio_p50"] == pytest.approx(expected, rel=1e-12)
    assert figures["teacher"]["p50"] == _p50(teacher) and figures["student"]["p50"] == _p50(student)
    assert figures["student"]["backend"] == "onnxruntime" and figures["student"]["device"] == "cpu"
    assert figures["like_for_like"] and figures["warnings"] == []
    md = out.read_text()
    assert f"{expected:.1f}x" in md and "| teacher-net (resnet) | teacher |" in md
    assert "paper: ResNet-101 → ERFNet" in md and "171.2 → 10.2" in md and "16.8x" in md and "TITAN X" in md
    assert "not like for like" not in md and "![latency distributions](latency.png)" in md
    png = cv2.imread(str(out.with_name("latency.png")))
    assert png is not None and png.shape[0] > 200 and png.std() > 10
    assert f"{expected:.2f}x" in capsys.readouterr().out


def test_different_devices_are_flagged(reports, tmp_path: Path):
    teacher, student = reports
    gpu = json.loads(teacher.read_text())
    gpu["meta"].update(device="cuda", device_name="NVIDIA H100", backend="tensorrt")
    teacher_gpu = _write(tmp_path / "teacher_gpu.json", gpu)
    out = tmp_path / "latency.md"
    assert main([str(teacher_gpu), str(student), "--out", str(out)]) == 0
    md = out.read_text()
    assert "not like for like" in md and "device: cuda vs cpu" in md and "backend: tensorrt vs onnxruntime" in md
    figures = json.loads(out.with_suffix(".json").read_text())
    assert not figures["like_for_like"] and len(figures["warnings"]) >= 3


def test_video_report_uses_its_latency_key_and_total_fps(reports, tmp_path: Path):
    teacher, student = reports
    bench = json.loads(student.read_text())
    records = [{"decode": 2.0, "preprocess": 1.0, "infer_host": r["host"] * 2, "postprocess": 0.5,
                "total": r["host"] * 2 + 3.5} for r in bench["records"]]
    video = {"kind": "video", "meta": bench["meta"], "latency_key": "infer_host", "records": records,
             "summary": {**{k: summarize(r[k] for r in records) for k in records[0]}, "loop_fps": 42.5}}
    video_path = _write(tmp_path / "video.json", video)
    out = tmp_path / "latency.md"
    assert main([str(teacher), str(video_path), "--out", str(out)]) == 0
    figures = json.loads(out.with_suffix(".json").read_text())
    assert figures["ratio_p50"] == pytest.approx(_p50(teacher) / video["summary"]["infer_host"]["p50"], rel=1e-12)
    md = out.read_text()
    total_fps = 1000 / np.mean([r["total"] for r in records])
    assert "video end-to-end FPS" in md and f"{total_fps:.1f}" in md
    assert "measurement: benchmark (host) vs video (infer_host)" in md
    assert "Video loop of the student: 42.5 FPS" in md and figures["student"]["loop_fps"] == 42.5


@pytest.mark.parametrize("content, problem", [
    (None, "report file not found"),
    ("{not json", "not JSON"),
    ('{"kind": "benchmark", "meta": {"backend": "onnxruntime", "device": "cpu"}, "latency_key": "host", "records": []}',
     "missing key 'summary.host.p50'"),
    ('[1, 2]', "must be a JSON object"),
])
def test_bad_inputs_exit_2_with_one_line(reports, tmp_path: Path, capsys, content, problem):
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    out = tmp_path / "latency.md"
    assert main([str(reports[0]), str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {bad}: ") and problem in err and len(err.splitlines()) == 1
    assert not out.exists() and not out.with_suffix(".json").exists()


def test_runs_as_a_script(reports, tmp_path: Path):
    """``python runtime/compare_latency.py`` from another folder finds the ``runtime`` package itself."""
    teacher, student = reports
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = tmp_path / "latency.md"
    proc = subprocess.run([sys.executable, str(ROOT / "runtime" / "compare_latency.py"), str(teacher), str(student),
                           "--out", str(out)], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.exists() and out.with_suffix(".png").exists() and "speed-up" in proc.stdout
