"""./pipeline.sh end to end on the tiny profile: artifacts, summary vs stage reports, resumability, failures."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from runtime.backends.tensorrt_backend import trt_available

ROOT = Path(__file__).resolve().parents[1]
STAGES = ["data", "teacher", "student", "student_kd", "export", "calibrate", "engines", "evaluate", "video", "compare", "summary"]


def pipeline(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([str(ROOT / "pipeline.sh"), *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    base = tmp_path_factory.mktemp("pipe") / "a folder with spaces"
    base.mkdir()
    return base, pipeline("culane", "--profile", "tiny", "--base", str(base))


def read(path: Path) -> dict:
    return json.loads(path.read_text())


def test_the_tiny_pipeline_makes_every_artifact(tiny_run):
    base, r = tiny_run
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert r.stdout.startswith("NOTE: no dataset at") and "SYNTHETIC" in r.stdout.splitlines()[0]
    for stage in STAGES:
        assert any(line.split()[1:2] == [stage] for line in r.stdout.splitlines() if line.startswith("[")), stage
    art, rep, runs = base / "artifacts" / "culane-synth", base / "reports" / "culane-synth", base / "runs" / "culane-synth"
    for name in ["student.onnx", "student.pt2", "student.fp16.onnx", "student.int8.onnx", "student.int8cpu.onnx", "teacher.onnx"]:
        assert (art / name).is_file() and (art / f"{name}.json").is_file(), name
    assert (art / "student.int8.onnx.report.md").is_file()
    for name in ["student.fp32", "student.fp16", "student.int8", "student.int8cpu", "teacher.fp32"]:
        assert (rep / "eval" / f"{name}.json").is_file() and (rep / "bench" / f"{name}.json").is_file(), name
    for role in ("teacher", "student"):
        assert (rep / "video" / f"synthetic.{role}.mp4").stat().st_size > 0 and (rep / "video" / f"synthetic.{role}.csv").is_file()
    for name in ["latency.md", "latency.png", "latency.json", "SUMMARY.md", "summary.json"]:
        assert (rep / name).is_file(), name
    for model in ("teacher", "student", "student_intra_kd"):
        assert (runs / model / "last.pt").is_file(), model
    for stage in ("teacher", "student", "student_kd", "export", "calibrate", "evaluate", "video"):
        assert (runs / "logs" / f"{stage}.log").is_file(), stage
    reason = trt_available()
    if reason:  # one clear line, and the rest runs
        assert f"engines    skipped: {reason}" in r.stdout
    else:
        assert "engines    done" in r.stdout and all((art / f"student.{p}.engine").is_file() for p in ("fp32", "fp16", "int8"))


def test_the_summary_agrees_with_the_stage_reports(tiny_run):
    base, r = tiny_run
    assert r.returncode == 0
    rep, runs = base / "reports" / "culane-synth", base / "runs" / "culane-synth"
    s = read(rep / "summary.json")
    assert s["dataset"] == "culane-synth" and s["synthetic"] is True and s["profile"] == "tiny"
    assert set(s["duration_s"]) >= set(STAGES) - {"summary"}
    for name, method in (("teacher", "teacher"), ("student", "baseline"), ("student_intra_kd", "intra_kd")):
        model, evaluation = s["models"][name], read(runs / name / "eval_test" / "f1.json")
        assert model["method"] == method and model["params"] == evaluation["params"]
        assert model["f1"]["total"] == evaluation["f1"]["total"]["f1"] and set(model["f1"]) == set(evaluation["f1"])
    assert s["models"]["teacher"]["role"] == "teacher" and s["models"]["teacher"]["params"] > s["models"]["student"]["params"]
    for precision in ("fp32", "fp16", "int8"):
        entry = s["precisions"]["student"][precision]
        bench, evaluation = read(rep / "bench" / f"student.{precision}.json"), read(rep / "eval" / f"student.{precision}.json")
        assert entry["latency_p50_ms"] == bench["summary"]["host"]["p50"] and entry["backend"] == "onnxruntime"
        assert entry["f1_total"] == evaluation["lists"]["total"]["f1"]
    latency, comparison = s["latency"], read(rep / "latency.json")
    assert latency["teacher"]["p50_ms"] == read(rep / "bench" / "teacher.fp32.json")["summary"]["host"]["p50"]
    assert latency["ratio_p50"] == pytest.approx(latency["teacher"]["p50_ms"] / latency["student"]["p50_ms"])
    assert latency["ratio_p50"] == comparison["ratio_p50"] and latency["device"]
    md = (rep / "SUMMARY.md").read_text()
    assert "Synthetic data" in md and "| student_intra_kd |" in md and "171.2" in md


def test_a_second_run_skips_every_stage(tiny_run):
    base, first = tiny_run
    assert first.returncode == 0
    r = pipeline("culane", "--profile", "tiny", "--base", str(base), timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    stage_lines = [line for line in r.stdout.splitlines() if line.startswith("[")]
    assert len(stage_lines) == len(STAGES)
    assert all("up to date" in line or "skipped:" in line for line in stage_lines), stage_lines


def test_a_forced_stage_reruns_and_later_stages_see_it(tiny_run):
    base, first = tiny_run
    assert first.returncode == 0
    r = pipeline("culane", "--profile", "tiny", "--base", str(base), "--only", "compare", "--force", timeout=120)
    assert r.returncode == 0 and "compare    done" in r.stdout
    r = pipeline("culane", "--profile", "tiny", "--base", str(base), "--from", "compare", timeout=120)
    assert r.returncode == 0 and "summary    done" in r.stdout  # the newer comparison makes the summary stale


def test_failures_name_the_stage_and_the_log(tmp_path):
    r = pipeline("culane", "--data-root", str(tmp_path / "nowhere"))
    assert r.returncode != 0 and "not a CULane-format dataset root" in r.stderr and "Traceback" not in r.stderr
    root = tmp_path / "empty culane"
    (root / "list").mkdir(parents=True)
    r = pipeline("culane", "--data-root", str(root), "--only", "teacher", "--base", str(tmp_path / "out"), timeout=300)
    assert r.returncode == 1
    assert "stage 'teacher' failed" in r.stderr and "teacher.log" in r.stderr
    assert (tmp_path / "out" / "runs" / "culane" / "logs" / "teacher.log").is_file()
