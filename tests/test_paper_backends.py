"""The paper stage on this machine's GPU backends: detection (real probes) and the commands it plans."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import paper_backends
from pipeline.paper_backends import ONNXRUNTIME_CUDA, TENSORRT, TORCH_CUDA
from pipeline.run import resolve_layout
from pipeline.stages import paper_artifact, paper_commands, paper_signature
from pipeline.report import other_backends, paper_markdown, paper_section

GPU_BACKENDS = (ONNXRUNTIME_CUDA, *TORCH_CUDA, *TENSORRT)


@pytest.fixture
def fresh_probes():
    paper_backends.nvidia_gpus.cache_clear()
    paper_backends.available.cache_clear()
    yield
    paper_backends.nvidia_gpus.cache_clear()
    paper_backends.available.cache_clear()


def fake_nvidia_smi(folder: Path) -> None:
    """An ``nvidia-smi`` that lists one GPU (the driver's tool is the first probe; the others are real)."""
    folder.mkdir()
    tool = folder / "nvidia-smi"
    tool.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0)'\n")
    tool.chmod(0o755)


def test_without_a_gpu_no_backend_is_added(fresh_probes, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi: no GPU, nothing else is asked
    assert paper_backends.nvidia_gpus() == () and paper_backends.available() == ()


def test_a_listed_gpu_adds_only_the_backends_that_run(fresh_probes, monkeypatch, tmp_path):
    import onnxruntime

    fake_nvidia_smi(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    assert paper_backends.nvidia_gpus() == ("GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0)",)
    found = {b.tag for b in paper_backends.available()}
    # the real probes answer: this environment's ONNX Runtime, torch and TensorRT decide
    assert ("onnxruntime-cuda" in found) is paper_backends.onnxruntime_has_cuda()  # a real session, not the provider list
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        assert "onnxruntime-cuda" not in found
    assert ("torch-cuda-fp32" in found) is paper_backends.torch_sees_cuda() is ("torch-cuda-fp16" in found)
    assert (("tensorrt-fp32" in found) is ("tensorrt-fp16" in found))


def test_gpu_backends_add_artifacts_and_one_interleaved_run_each(tmp_path):
    lay, _ = resolve_layout("culane", None, "tiny", tmp_path)
    cpu_only, gpu = paper_commands(lay, backends=()), paper_commands(lay, backends=GPU_BACKENDS)
    argv = lambda cmds: [list(map(str, c)) for c in cmds]
    exports = [c for c in argv(cpu_only) if "export.to_onnx" in c]
    assert len(exports) == 2 and all("--no-pt2" in c for c in exports)  # the CPU plan makes no .pt2
    assert argv(cpu_only) == [c for c in argv(gpu) if c in argv(cpu_only)]  # and is kept whole, in order, on a GPU machine
    added = [c for c in argv(gpu) if c not in argv(cpu_only)]
    assert all(c[1:4] == ["-m", "pipeline.best_effort", "--record"] and c[5] == "--" for c in added)  # every GPU step: best effort
    records = [Path(c[4]).name for c in added]
    assert len(set(records)) == len(records) and all(r.startswith("failed.") and r.endswith(".json") for r in records)
    torch_exports = [c for c in added if "export.to_onnx" in c]  # the .pt2 beside a second ONNX, in paper/torch/
    assert [c[c.index("--out") + 1] for c in torch_exports] == [
        str(paper_artifact(lay, role, "pt2").with_suffix(".onnx")) for role in ("teacher", "student")]
    assert paper_artifact(lay, "student", "pt2").parent.name == "torch" and all("--no-pt2" not in c for c in torch_exports)
    engines = [c for c in argv(gpu) if "export.to_tensorrt" in c]
    for role in ("teacher", "student"):
        assert [c[c.index("--onnx") + 1] for c in engines if c[c.index("--out") + 1].startswith(str(lay.artifacts / "paper" / role))] == [
            str(paper_artifact(lay, role, "onnx")), str(paper_artifact(lay, role, "fp16.onnx"))]
    fp16 = [c for c in argv(gpu) if "export.to_fp16" in c]
    assert len(fp16) == 2 and all(c[c.index("--check-images") + 1] == "0" for c in fp16)  # untrained: nothing to check
    benches = [c for c in argv(gpu) if "runtime.benchmark" in c][1:]  # after ONNX Runtime's CPU run
    assert len(benches) == len(GPU_BACKENDS)
    for backend, c in zip(GPU_BACKENDS, benches):
        models = [c[i + 1] for i, a in enumerate(c) if a == "--model"]
        assert models == [str(paper_artifact(lay, role, backend.artifact)) for role in ("teacher", "student")]
        assert " ".join(backend.options) in " ".join(c) and "--threads" not in c
        assert c[c.index("--iterations") + 1] == "1000" and c[c.index("--warmup") + 1] == "100"  # GPU calls are milliseconds
        assert [c[i + 1] for i, a in enumerate(c) if a == "--json"] == [
            str(lay.reports / "paper" / f"bench.{backend.tag}.{role}.json") for role in ("teacher", "student")]
    assert "--fp16" in benches[2] and "--fp16" not in benches[1]
    compares = [c for c in argv(gpu) if any(a.endswith("compare_latency.py") for a in c)][1:]
    assert [c[-1] for c in compares] == [str(lay.reports / "paper" / f"latency.{b.tag}.md") for b in GPU_BACKENDS]


def test_without_gpu_backends_the_signature_is_the_settings_alone(fresh_probes, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi: no GPU backend
    lay, _ = resolve_layout("culane", None, "tiny", tmp_path)
    assert paper_signature(lay) == lay.settings["paper_latency"]  # a CPU machine's cached stage stays fresh


def test_the_summary_lists_each_backend_the_stage_timed(tmp_path):
    folder = tmp_path / "paper"
    folder.mkdir()
    side = lambda p50, backend, precision: {"p50": p50, "p99": p50 * 1.1, "backend": backend, "precision": precision,
                                            "device_name": "NVIDIA H100", "input_shape": [1, 3, 208, 976]}
    comparison = {"teacher": side(30.0, "torch", "fp16"), "student": side(2.0, "torch", "fp16"), "ratio_p50": 15.0}
    (folder / "latency.torch-cuda-fp16.json").write_text(json.dumps(comparison))
    (folder / "latency.json").write_text(json.dumps({**comparison, "teacher": side(700.0, "onnxruntime", "fp32"),
                                                      "student": side(50.0, "onnxruntime", "fp32"), "ratio_p50": 14.0}))
    (folder / "latency.tensorrt-fp32.json").write_text(json.dumps(comparison))  # a backend this machine no longer has
    (folder / "failed.torch-cuda.export-teacher.json").write_text(json.dumps({"returncode": 1}))
    assert other_backends(folder, ["torch-cuda-fp32", "onnxruntime-cuda"]) == [
        {"tag": "torch-cuda-fp32", "failed": [{"step": "export-teacher", "returncode": 1}]},  # the shared torch export failed
        {"tag": "onnxruntime-cuda", "failed": [{"step": "not run", "returncode": None}]}]
    (folder / "failed.torch-cuda.export-teacher.json").unlink()
    rows = other_backends(folder, ["torch-cuda-fp16"])
    assert rows == [{"tag": "torch-cuda-fp16", "backend": "torch", "precision": "fp16", "device": "NVIDIA H100", "teacher_p50_ms": 30.0,
                     "teacher_p99_ms": pytest.approx(33.0), "student_p50_ms": 2.0, "student_p99_ms": pytest.approx(2.2), "ratio_p50": 15.0}]
    pair = paper_section(tmp_path)
    assert pair["ratio_model_p50"] == 14.0  # the lead stays ONNX Runtime's CPU run
    pair["other_backends"] = rows + [{"tag": "tensorrt-fp16", "failed": [{"step": "engine-teacher", "returncode": 2}]}]
    md = "\n".join(paper_markdown(pair))
    assert "| tensorrt-fp16 | | | failed: engine-teacher (exit 2); see the paper stage's log | | |" in md
    assert "| torch-cuda-fp16 | fp16 | NVIDIA H100 | 30.00 / 33.00 | 2.00 / 2.20 | **15.0x** |" in md


def test_best_effort_records_a_failure_and_clears_it_on_success(tmp_path):
    record = tmp_path / "failed.x.step.json"
    run = lambda code: subprocess.run([sys.executable, "-m", "pipeline.best_effort", "--record", str(record), "--", sys.executable, "-c",
                                       f"import sys; print('working'); sys.exit({code})"], capture_output=True, text=True, timeout=60,
                                      cwd=Path(__file__).resolve().parents[1])
    failed = run(3)
    assert failed.returncode == 0 and "working" in failed.stdout and "exited with 3" in failed.stdout
    assert json.loads(record.read_text())["returncode"] == 3 and json.loads(record.read_text())["output_tail"] == ["working"]
    passed = run(0)
    assert passed.returncode == 0 and not record.exists()  # a stale record goes with the success
