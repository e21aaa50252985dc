"""TensorRT export and backend: argument checks, engine/machine compatibility, clear errors where
TensorRT is missing, and (on a GPU with TensorRT) a real build, run, parity with ONNX Runtime and
CUDA-graph replay. The GPU tests skip with the reason :func:`trt_available` gives."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from export.to_tensorrt import build_engine, main
from runtime.artifacts import read_sidecar, sidecar_path
from runtime.backends import load_backend
from runtime.backends.tensorrt_backend import engine_compatibility, trt_available
from runtime.errors import DataError

ROOT = Path(__file__).resolve().parents[2]
TRT_MISSING = trt_available()


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "export.to_tensorrt", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def _error_line(capsys: pytest.CaptureFixture, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


# ----------------------------------------------------------------------------- argument checks (no TensorRT needed)

def test_missing_onnx_is_one_line_naming_it(tmp_path, capsys):
    line = _error_line(capsys, ["--onnx", str(tmp_path / "absent.onnx"), "--out", str(tmp_path / "m.engine")])
    assert "absent.onnx" in line and "not found" in line


def test_onnx_without_sidecar(tiny_onnx, tmp_path, capsys):
    bare = tmp_path / "bare.onnx"
    shutil.copy(tiny_onnx, bare)
    line = _error_line(capsys, ["--onnx", str(bare), "--out", str(tmp_path / "bare.engine")])
    assert "bare.onnx.json" in line and "sidecar" in line
    assert not (tmp_path / "bare.engine").exists()


def test_malformed_sidecar(tiny_onnx, tmp_path, capsys):
    model = tmp_path / "m.onnx"
    shutil.copy(tiny_onnx, model)
    sidecar_path(model).write_text("{not json", encoding="utf-8")
    line = _error_line(capsys, ["--onnx", str(model), "--out", str(tmp_path / "m.engine")])
    assert "m.onnx.json" in line and "unreadable sidecar" in line


def test_wrong_suffixes(tiny_onnx, tmp_path, capsys):
    line = _error_line(capsys, ["--onnx", str(tiny_onnx), "--out", str(tmp_path / "m.plan")])
    assert "m.plan" in line and ".engine" in line
    other = tmp_path / "m.txt"
    other.write_text("x")
    line = _error_line(capsys, ["--onnx", str(other), "--out", str(tmp_path / "m.engine")])
    assert "m.txt" in line and ".onnx" in line


def test_engine_sidecar_is_refused_as_input(tiny_onnx, tmp_path, capsys):
    model = tmp_path / "m.onnx"
    shutil.copy(tiny_onnx, model)
    read_sidecar(tiny_onnx).derived(format="tensorrt").write(model)
    line = _error_line(capsys, ["--onnx", str(model), "--out", str(tmp_path / "m.engine")])
    assert "m.onnx" in line and "'tensorrt'" in line


@pytest.mark.skipif(TRT_MISSING is None, reason="TensorRT and a GPU are present: the missing-TensorRT path does not apply")
def test_cli_without_tensorrt_says_what_to_install(tiny_onnx, tmp_path):
    out = tmp_path / "student.fp32.engine"
    proc = _run_cli("--onnx", str(tiny_onnx), "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines == [f"error: {TRT_MISSING}"], proc.stderr
    assert "Traceback" not in proc.stderr
    if "TensorRT" in TRT_MISSING:  # this machine: no TensorRT at all
        assert "pip install tensorrt-cu12" in TRT_MISSING and "cuda-python" in TRT_MISSING and "Jetson" in TRT_MISSING
    assert not out.exists() and not sidecar_path(out).exists()


# ----------------------------------------------------------------------------- compatibility (pure)

def _engine_sidecar(trt: str = "10.16.1.11", cc: str = "9.0", name: str = "NVIDIA H100 80GB HBM3") -> dict:
    return {"format": "tensorrt", "versions": {"tensorrt": trt}, "source": {"parent": "artifacts/synth/student.fp16.onnx"},
            "gpu": {"name": name, "compute_capability": cc}, "tensorrt": {"version": trt}}


def test_compatible_engine():
    gpu = {"name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"}
    assert engine_compatibility(_engine_sidecar(), "10.16.1.11", gpu) is None
    # another GPU model of the same compute capability still runs the engine
    assert engine_compatibility(_engine_sidecar(name="NVIDIA H200"), "10.16.1.11", gpu) is None


def test_other_tensorrt_version_is_refused_with_rebuild_command():
    gpu = {"name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"}
    problem = engine_compatibility(_engine_sidecar(trt="10.3.0.26"), "10.16.1.11", gpu, "artifacts/synth/student.fp16.engine")
    assert problem and "10.3.0.26" in problem and "10.16.1.11" in problem and "rebuild" in problem
    assert "python -m export.to_tensorrt --onnx artifacts/synth/student.fp16.onnx --out artifacts/synth/student.fp16.engine" in problem
    # 11.x against a 10.x engine: also refused
    assert "11.4.1.0" in engine_compatibility(_engine_sidecar(), "11.4.1.0", gpu)


def test_other_compute_capability_is_refused():
    gpu = {"name": "NVIDIA GeForce RTX 3090", "compute_capability": "8.6"}
    problem = engine_compatibility(_engine_sidecar(), "10.16.1.11", gpu)
    assert problem and "9.0" in problem and "8.6" in problem and "RTX 3090" in problem and "H100" in problem
    assert "rebuild" in problem


def test_version_compatible_engine_runs_on_the_same_or_a_later_tensorrt():
    sidecar = _engine_sidecar(trt="10.3.0.26")
    sidecar["tensorrt"]["version_compatible"] = True
    gpu = {"name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"}
    assert engine_compatibility(sidecar, "10.16.1.11", gpu) is None
    # forward across a major version too ("engines built with TensorRT 10 work with TensorRT 11": TensorRT 11.1 docs) ...
    assert engine_compatibility(sidecar, "11.0.0.1", gpu) is None
    # ... never backwards (tests/runtime/test_gpu_paths.py has the rule's other cases)
    assert "newer than this machine's TensorRT 10.2.0.19" in engine_compatibility(sidecar, "10.2.0.19", gpu)


# ----------------------------------------------------------------------------- backend without TensorRT

def test_load_backend_on_an_engine_gives_a_clear_data_error(tiny_onnx, tmp_path):
    engine = tmp_path / "student.fp32.engine"
    engine.write_bytes(b"not a serialized engine")
    read_sidecar(tiny_onnx).derived(format="tensorrt", gpu={"name": "NVIDIA H100", "compute_capability": "9.0"},
                                    versions={"tensorrt": "0.0.0.0"}).write(engine)
    with pytest.raises(DataError) as caught:
        load_backend(engine)
    message = str(caught.value)
    assert message.startswith(str(engine)) and "\n" not in message
    if TRT_MISSING is None:  # TensorRT here: the (fake) version differs
        assert "0.0.0.0" in message and "rebuild" in message
    else:
        assert "cannot run a TensorRT engine here" in message and TRT_MISSING in message


def test_modules_import_without_tensorrt_or_torch():
    code = ("import sys\nimport runtime.backends.tensorrt_backend, runtime.backends.cuda_util, export.to_tensorrt\n"
            "print(sorted(m for m in ('torch', 'tensorrt', 'cuda') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_cuda_util_without_cuda_python_says_how_to_install():
    from runtime.backends import cuda_util

    try:
        import cuda  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("cuda-python is installed here")
    with pytest.raises(cuda_util.CudaUnavailable, match="pip install 'cuda-python"):
        cuda_util.gpu_properties()


# ----------------------------------------------------------------------------- real TensorRT (GPU machines)

@pytest.fixture(scope="session")
def trt_ready() -> None:
    reason = trt_available()
    if reason:
        pytest.skip(f"needs TensorRT and a CUDA GPU: {reason}")


@pytest.fixture(scope="session")
def tiny_engine(trt_ready, tiny_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, Path]:
    """An FP32 engine (no TF32) built from ``tiny_onnx`` with a timing cache -> (engine, build result, cache)."""
    folder = tmp_path_factory.mktemp("tiny-engine")
    cache = folder / "timing.cache"
    result = build_engine(tiny_onnx, folder / "student.fp32.engine", workspace_gb=1, timing_cache=cache)
    return folder / "student.fp32.engine", result, cache


def test_engine_sidecar_records_gpu_and_tensorrt(tiny_engine, tiny_onnx):
    import tensorrt as trt

    engine, result, cache = tiny_engine
    data = json.loads(sidecar_path(engine).read_text())
    assert data["format"] == "tensorrt" and data["precision"] == read_sidecar(tiny_onnx).precision == "fp32"
    assert data["versions"]["tensorrt"] == trt.__version__ == data["tensorrt"]["version"]
    assert data["gpu"]["name"] and data["gpu"]["compute_capability"].count(".") == 1
    assert data["source"]["parent"] == str(tiny_onnx) and len(data["source"]["parent_sha256"]) == 64
    assert data["tensorrt"]["timing_cache"]["status"] == "new" and data["tensorrt"]["profile"] is None
    assert "parity" not in data and cache.stat().st_size > 0
    assert result["build_seconds"] >= 0 and engine.stat().st_size == data["tensorrt"]["engine_bytes"]


def test_engine_matches_onnxruntime(tiny_engine, tiny_onnx):
    engine, _, _ = tiny_engine
    x = np.random.default_rng(0).standard_normal((3, 3, 32, 128)).astype(np.float32)
    reference = load_backend(tiny_onnx, "onnxruntime", device="cpu").infer(x)
    backend = load_backend(engine)
    try:
        got = backend.infer(x)
        assert backend.name == "tensorrt" and backend.device == "cuda" and backend.device_name
        assert set(got) == set(reference)
        for kind in reference:
            assert got[kind].shape == reference[kind].shape and got[kind].dtype == np.float32
            assert np.abs(got[kind] - reference[kind]).max() <= 1e-3, kind
        assert set(backend.last_device_times) == {"h2d_ms", "compute_ms", "d2h_ms"}
        assert all(v >= 0 for v in backend.last_device_times.values())
    finally:
        backend.close()


def test_cuda_graph_replay_gives_the_same_outputs(tiny_engine):
    engine, _, _ = tiny_engine
    rng = np.random.default_rng(1)
    plain, graphed = load_backend(engine), load_backend(engine, cuda_graph=True)
    try:
        for _ in range(3):  # new data each call: the graph must read the refreshed input buffer
            x = rng.standard_normal((1, 3, 32, 128)).astype(np.float32)
            a, b = plain.infer(x), graphed.infer(x)
            for kind in a:
                np.testing.assert_allclose(b[kind], a[kind], atol=1e-6)
        assert graphed.cuda_graph and graphed.settings["cuda_graph"], "CUDA graph capture fell back to plain execution"
        assert plain.settings["precision"] == "fp32" and plain.settings["tf32"] is False  # built without TF32
    finally:
        plain.close()
        graphed.close()


def test_wrong_input_size_names_model_and_shapes(tiny_engine):
    engine, _, _ = tiny_engine
    backend = load_backend(engine)
    try:
        with pytest.raises(DataError) as caught:
            backend.infer(np.zeros((1, 3, 64, 128), np.float32))
        message = str(caught.value)
        assert backend.sidecar.model["name"] in message and "(1, 3, 64, 128)" in message and "32, 128" in message
    finally:
        backend.close()


def test_timing_cache_is_reused(tiny_engine, tiny_onnx, tmp_path):
    _, _, cache = tiny_engine
    result = build_engine(tiny_onnx, tmp_path / "again.fp32.engine", workspace_gb=1, timing_cache=cache)
    assert result["timing_cache"]["status"].startswith("loaded")


def test_dynamic_batch_engine(trt_ready, tiny_checkpoint, tmp_path):
    from export.to_onnx import export_checkpoint

    onnx_path = tmp_path / "dyn.onnx"
    export_checkpoint(tiny_checkpoint, onnx_path, dynamic_batch=True, parity_count=2, save_pt2=False)
    result = build_engine(onnx_path, tmp_path / "dyn.fp32.engine", workspace_gb=1, batch_opt=2, batch_max=4)
    assert result["profile"]["min"][0] == 1 and result["profile"]["opt"][0] == 2 and result["profile"]["max"][0] == 4
    reference = load_backend(onnx_path, "onnxruntime", device="cpu")
    backend = load_backend(tmp_path / "dyn.fp32.engine", cuda_graph=True)
    try:
        assert backend.dynamic and backend.max_batch == 4
        for n in (1, 3, 6, 2):  # 6 > max: two launches; every size change re-captures the graph
            x = np.random.default_rng(n).standard_normal((n, 3, 32, 128)).astype(np.float32)
            got, want = backend.infer(x), reference.infer(x)
            for kind in want:
                assert got[kind].shape == want[kind].shape
                assert np.abs(got[kind] - want[kind]).max() <= 1e-3, (n, kind)
    finally:
        backend.close()
