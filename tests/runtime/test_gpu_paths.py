"""The GPU paths (TensorRT, CUDA, ONNX Runtime's GPU providers), checked on the CPU wherever their
failure can be reproduced here (issue 35). No GPU ran any of this.

- ONNX Runtime runs for real: a provider that is *listed* but cannot start is the onnxruntime-gpu
  build without its CUDA/cuDNN libraries. Its listing (``get_available_providers``, fixed when the
  package is built) is the one thing these tests add; the sessions are real and really fall back
  to the CPU, as ONNX Runtime does there (its issues #13414, #21424).
- The ``.pt2`` device/dtype rewrite runs on the CPU (the ``meta`` device stands for CUDA: a graph
  whose nodes still name the CPU fails there as it fails on CUDA, PyTorch #121761) and in half
  precision on the CPU.
- TensorRT and cuda-python are not installed here: the version rule and the import handling are
  pure logic; CUDA-graph error clearing and the stream handle are checked against a stand-in of
  cuda-python's ``cudart`` module (the order of calls, not CUDA).
"""
from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
import tomllib
import types
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from runtime.artifacts import Sidecar
from runtime.backends import load_backend
from runtime.decode import DecodeParams
from runtime.errors import DataError
from runtime.preprocess import Preprocess

ROOT = Path(__file__).resolve().parents[2]
H, W = 8, 16


def lane_onnx(path: Path, precision: str = "fp32") -> Path:
    """A hand-made lane model (seg_prob (1, 5, 8, 16), exist_prob (1, 4): constants + 0 x the image's
    mean) with its sidecar."""
    seg = np.full((1, 5, H, W), 0.2, np.float32)
    exist = np.full((1, 4), 0.5, np.float32)
    nodes = [helper.make_node("ReduceMean", ["image"], ["mean"], keepdims=0), helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
             helper.make_node("Add", ["seg", "nothing"], ["seg_prob"]), helper.make_node("Add", ["exist", "nothing"], ["exist_prob"])]
    graph = helper.make_graph(nodes, "lanes", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, H, W])],
                              [helper.make_tensor_value_info("seg_prob", TensorProto.FLOAT, [1, 5, H, W]),
                               helper.make_tensor_value_info("exist_prob", TensorProto.FLOAT, [1, 4])],
                              [numpy_helper.from_array(seg, "seg"), numpy_helper.from_array(exist, "exist"),
                               numpy_helper.from_array(np.zeros((), np.float32), "zero")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    pre = Preprocess(src_width=32, src_height=24, crop_top=8, net_width=W, net_height=H)
    Sidecar(format="onnx", precision=precision, model={"name": "hand", "arch": "none"},
            input={"name": "image", "shape": [1, 3, H, W], "dtype": "float32", "dynamic_batch": False},
            outputs=[{"name": "seg_prob", "shape": [1, 5, H, W], "dtype": "float32", "kind": "seg_prob"},
                     {"name": "exist_prob", "shape": [1, 4], "dtype": "float32", "kind": "exist_prob"}],
            preprocess=pre.to_dict(), decode=DecodeParams().to_dict(), source={}).write(path)
    return path


def list_gpu_providers(monkeypatch: pytest.MonkeyPatch, *providers: str) -> None:
    """ONNX Runtime lists ``providers`` as the onnxruntime-gpu build does, with no CUDA here to run them."""
    import onnxruntime as ort

    listed = [*providers, *ort.get_available_providers()]
    monkeypatch.setattr(ort, "get_available_providers", lambda: list(listed))


# ----------------------------------------------------------------------------- 2. listed is not usable

def test_auto_device_runs_on_the_cpu_when_the_listed_cuda_provider_cannot_start(monkeypatch, tmp_path):
    model = lane_onnx(tmp_path / "m.onnx")
    list_gpu_providers(monkeypatch, "CUDAExecutionProvider")
    backend = load_backend(model)  # device auto
    assert backend.device == "cpu" and backend.session.get_providers() == ["CPUExecutionProvider"]
    assert backend.settings["provider"] == "CPUExecutionProvider" and backend.binding is None
    out = backend.infer(np.zeros((1, 3, H, W), np.float32))
    assert out["seg_prob"].shape == (1, 5, H, W) and np.allclose(out["exist_prob"], 0.5)


def test_explicit_cuda_refuses_a_listed_provider_that_cannot_start(monkeypatch, tmp_path):
    model = lane_onnx(tmp_path / "m.onnx")
    list_gpu_providers(monkeypatch, "TensorrtExecutionProvider", "CUDAExecutionProvider")
    for device, provider in (("cuda", "CUDAExecutionProvider"), ("tensorrt", "TensorrtExecutionProvider")):
        with pytest.raises(DataError, match=f"could not start {provider} here \\(running on CPUExecutionProvider\\)"):
            load_backend(model, device=device)


def test_cuda_libraries_are_preloaded_before_a_gpu_session(monkeypatch, tmp_path):
    import onnxruntime as ort

    calls = []
    real = ort.preload_dlls  # ONNX Runtime >= 1.21; on the CPU build it loads nothing
    monkeypatch.setattr(ort, "preload_dlls", lambda *a, **k: (calls.append(k), real(*a, **k))[1])
    model = lane_onnx(tmp_path / "m.onnx")
    load_backend(model, device="cpu")
    assert calls == []  # never for the CPU
    list_gpu_providers(monkeypatch, "CUDAExecutionProvider")
    load_backend(model)
    assert len(calls) == 1


def test_gpu_provider_problem_asks_a_real_session(monkeypatch):
    from runtime.backends.onnxruntime_backend import gpu_provider_problem

    assert "lacks CUDAExecutionProvider" in gpu_provider_problem("cuda")  # this CPU build does not list it
    list_gpu_providers(monkeypatch, "CUDAExecutionProvider")
    problem = gpu_provider_problem("cuda")
    assert problem and "could not start CUDAExecutionProvider" in problem and "CPUExecutionProvider" in problem


def test_the_paper_stage_does_not_take_a_listed_cuda_provider_for_a_working_one(monkeypatch):
    from pipeline import paper_backends

    list_gpu_providers(monkeypatch, "CUDAExecutionProvider")
    assert paper_backends.onnxruntime_has_cuda() is False


# ----------------------------------------------------------------------------- 4. TensorRT EP options

def test_tensorrt_provider_options_follow_the_precision_and_cache_engines(tmp_path):
    from runtime.backends.onnxruntime_backend import provider_options

    cache = tmp_path / "cache"
    for precision, fp16, int8 in (("fp32", False, False), ("fp16", True, False), ("int8", False, True)):
        (trt, trt_opts), (cuda, cuda_opts), cpu = provider_options("tensorrt", precision, cache)
        assert (trt, cuda, cpu) == ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
        assert trt_opts["trt_fp16_enable"] is fp16 and trt_opts["trt_int8_enable"] is int8, precision
        assert trt_opts["trt_engine_cache_enable"] is True and trt_opts["trt_engine_cache_path"] == str(cache)
        assert trt_opts["trt_timing_cache_enable"] is True and trt_opts["trt_timing_cache_path"] == str(cache)
        assert cuda_opts["use_tf32"] == "0"  # FP32 like the FP32 TensorRT engines and the torch rows
    (cuda, cuda_opts), cpu = provider_options("cuda", "fp32", None)
    assert cuda == "CUDAExecutionProvider" and cuda_opts["use_tf32"] == "0" and cpu == "CPUExecutionProvider"
    assert provider_options("cpu", "fp32", None) == ["CPUExecutionProvider"]


def test_the_tensorrt_cache_is_keyed_by_the_model_bytes(tmp_path):
    from runtime.backends.onnxruntime_backend import tensorrt_cache_dir

    a, b = lane_onnx(tmp_path / "a.onnx"), lane_onnx(tmp_path / "b.onnx", precision="fp16")
    assert tensorrt_cache_dir(a).parent == tmp_path / ".trt_ep_cache"
    assert tensorrt_cache_dir(a).name.split(".")[1] == tensorrt_cache_dir(b).name.split(".")[1]  # same bytes
    b.write_bytes(b.read_bytes() + b"\0")
    assert tensorrt_cache_dir(a).name.split(".")[1] != tensorrt_cache_dir(b).name.split(".")[1]


# ----------------------------------------------------------------------------- 10. settings in the reports

def test_the_benchmark_report_records_the_provider_that_ran(tmp_path):
    from runtime.benchmark import benchmark

    report = benchmark(str(lane_onnx(tmp_path / "m.onnx")), iterations=2, warmup=0)
    settings = report["meta"]["settings"]
    assert settings["provider"] == "CPUExecutionProvider" and settings["precision"] == "fp32"


def test_torch_cuda_settings_are_set_explicitly_and_read_back():
    torch = pytest.importorskip("torch")
    from runtime.backends.torch_backend import cuda_settings

    saved = (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision,
             torch.backends.cudnn.rnn.fp32_precision)
    try:
        assert cuda_settings(torch, tf32=False, cudnn_benchmark=True) == {"tf32": False, "cudnn_benchmark": True}
        assert torch.backends.cudnn.conv.fp32_precision == "ieee" == torch.backends.cuda.matmul.fp32_precision
        assert torch.backends.cudnn.rnn.fp32_precision == "ieee" and torch.backends.cudnn.benchmark is True
        assert cuda_settings(torch, tf32=True, cudnn_benchmark=False) == {"tf32": True, "cudnn_benchmark": False}
        assert torch.backends.cudnn.conv.fp32_precision == "tf32" and torch.backends.cudnn.benchmark is False
    finally:
        torch.backends.cudnn.benchmark = saved[0]
        torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision = saved[1:3]
        torch.backends.cudnn.rnn.fp32_precision = saved[3]


# ----------------------------------------------------------------------------- 1. the .pt2 on another device / in FP16

def _program(torch):
    """A small exported program with what the teacher has: a non-persistent buffer cast with
    ``.to(x)`` (the pyramid pooling matrices), bilinear upsampling, and a softmax computed in float32."""
    import torch.nn.functional as F
    from torch import nn

    class Small(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.bn = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)
            self.register_buffer("pool_h", torch.full((2, H), 1.0 / H), persistent=False)

        def forward(self, x):
            y = torch.relu(self.bn(self.conv(x)))
            pooled = F.interpolate(torch.matmul(self.pool_h.to(y), y), size=(H, W), mode="bilinear", align_corners=True)
            z = (y + pooled).float()
            e = torch.exp(z - z.amax(1, keepdim=True))
            return ((e / e.sum(1, keepdim=True)).to(y.dtype),)

    torch.manual_seed(0)
    model = Small().eval()
    with torch.no_grad():
        model.bn.running_mean.uniform_(-0.5, 0.5)
    buffer = io.BytesIO()
    torch.export.save(torch.export.export(model, (torch.zeros(1, 3, H, W),)), buffer)  # on the CPU, like export.to_onnx
    buffer.seek(0)
    return torch.export.load(buffer)


def test_a_pt2_moved_to_another_device_keeps_no_cpu_in_its_graph():
    torch = pytest.importorskip("torch")
    from runtime.backends.torch_backend import prepare_module

    module = prepare_module(_program(torch), "meta", half=False)  # meta stands for cuda: no data, but devices are checked
    named = [str(a) for n in module.graph.nodes for a in [*n.args, *n.kwargs.values()] if isinstance(a, (torch.device, str))]
    assert "meta" in named and "cpu" not in named
    assert module(torch.zeros(1, 3, H, W, device="meta"))[0].device.type == "meta"


def test_a_pt2_in_fp16_has_no_float32_left_and_runs_in_half():
    torch = pytest.importorskip("torch")
    from runtime.backends.torch_backend import prepare_module

    x = torch.randn(1, 3, H, W, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        reference = _program(torch).module()(x)[0]
        module = prepare_module(_program(torch), "cpu", half=True)
        tensors = [*module.parameters(), *module.buffers()]
        tensors += [getattr(module, n.target) for n in module.graph.nodes if n.op == "get_attr" and "." not in n.target]
        assert tensors and not [t for t in tensors if t.dtype == torch.float32]
        args = [a for n in module.graph.nodes for a in [*n.args, *n.kwargs.values()] if isinstance(a, torch.dtype)]
        assert args and torch.float32 not in args
        out = module(x.half())[0]
    assert out.dtype == torch.float16 and torch.allclose(out.float(), reference, atol=2e-3)


# ----------------------------------------------------------------------------- 3, 9, 10: benchmarks/gpu_check.py

def _gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check_under_test", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_check_never_labels_cpu_timings_onnxruntime_cuda(monkeypatch, tmp_path):
    torch = pytest.importorskip("torch")
    gpu_check = _gpu_check()
    list_gpu_providers(monkeypatch, "CUDAExecutionProvider")
    models = {"teacher": torch.nn.Conv2d(3, 4, 3).eval(), "student": torch.nn.Conv2d(3, 2, 1).eval()}
    rows, why = gpu_check.onnxruntime_rows(torch, models, 32, 16, tmp_path, iterations=2, warmup=0)
    assert rows == [] and "could not start CUDAExecutionProvider" in why and "CPUExecutionProvider" in why


def _fake_tensorrt(folder: Path, body: str) -> Path:
    (folder / "tensorrt").mkdir(parents=True)
    (folder / "tensorrt" / "__init__.py").write_text(body)
    return folder


def test_gpu_check_survives_a_broken_tensorrt_and_prints_each_rows_settings(tmp_path):
    # a TensorRT wheel without its libraries: the module is there, loading libnvinfer fails (OSError)
    fake = _fake_tensorrt(tmp_path / "site", "raise OSError('libnvinfer.so.10: cannot open shared object file')\n")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--size", "64x32",
                           "--iterations", "2", "--warmup", "0", "--out", str(out)], capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": f"{fake}:{ROOT}", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((out / "gpu_check.json").read_text())
    [row] = result["rows"]
    assert row["settings"]["precision"] == "fp32" and row["settings"]["provider"] == "torch (cpu)"
    assert {"tf32", "cudnn_benchmark"} <= set(row["settings"])
    assert result["environment"]["tensorrt"] is None
    assert any(s.startswith("TensorRT: cannot load (OSError: libnvinfer.so.10") for s in result["skipped"])
    table = (out / "gpu_check.md").read_text()
    assert "| GPU ratio (p50) | settings |" in table and "| torch (cpu); TF32 n/a; cudnn.benchmark n/a |" in table
    assert "- skipped: TensorRT: cannot load" in table


# ----------------------------------------------------------------------------- TensorRT present, cuda-python missing

def test_trt_available_names_cuda_python_when_only_tensorrt_is_installed(tmp_path):
    fake = _fake_tensorrt(tmp_path / "site", "__version__ = '10.16.1.11'\n")
    code = "from runtime.backends.tensorrt_backend import trt_available\nprint(trt_available())"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={"PYTHONPATH": f"{fake}:{ROOT}", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "cuda-python is not installed" in proc.stdout and "<13" in proc.stdout


# ----------------------------------------------------------------------------- 5. cuda-python 12 beside tensorrt-cu12

def test_the_gpu_extra_keeps_cuda_python_below_13():
    from packaging.requirements import Requirement

    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["gpu"]
    [spec] = [Requirement(r).specifier for r in extra if Requirement(r).name == "cuda-python"]
    assert spec.contains("12.9.0") and not spec.contains("13.0.0")
    from runtime.backends.cuda_util import INSTALL_HINT
    from runtime.backends.tensorrt_backend import TRT_INSTALL_HINT

    assert "'cuda-python>=12,<13'" in TRT_INSTALL_HINT and "'cuda-python>=12,<13'" in INSTALL_HINT


# ----------------------------------------------------------------------------- 7. version-compatible engines

def _engine(trt: str, version_compatible: bool = True) -> dict:
    return {"format": "tensorrt", "versions": {"tensorrt": trt}, "gpu": {"name": "NVIDIA H100", "compute_capability": "9.0"},
            "tensorrt": {"version": trt, "version_compatible": version_compatible}}


def test_version_compatible_engines_run_forward_only():
    from runtime.backends.tensorrt_backend import engine_compatibility

    gpu = {"name": "NVIDIA H100", "compute_capability": "9.0"}
    assert engine_compatibility(_engine("10.3.0.26"), "10.16.1.11", gpu) is None  # older engine, newer runtime
    assert engine_compatibility(_engine("10.16.1.11"), "11.1.0.5", gpu) is None  # across a major version too (TensorRT 11.1 docs)
    newer = engine_compatibility(_engine("10.16.1.11"), "10.3.0.26", gpu)
    assert newer and "newer than this machine's TensorRT 10.3.0.26" in newer  # never backwards
    assert engine_compatibility(_engine("8.5.3.1"), "10.16.1.11", gpu)  # version compatibility starts at 8.6
    assert engine_compatibility(_engine("10.3.0.26", version_compatible=False), "10.16.1.11", gpu)


def test_a_version_compatible_engine_is_deserialized_with_host_code_allowed():
    from runtime.backends.tensorrt_backend import allow_engine_host_code

    runtime = types.SimpleNamespace(engine_host_code_allowed=False)  # the attribute of trt.Runtime (TensorRT >= 8.6)
    assert allow_engine_host_code(runtime, _engine("10.3.0.26", version_compatible=False)) is False
    assert runtime.engine_host_code_allowed is False
    assert allow_engine_host_code(runtime, _engine("10.3.0.26")) is True and runtime.engine_host_code_allowed is True


# ----------------------------------------------------------------------------- 6, 8: cuda-python calls (stand-in cudart)

class _Err:
    def __init__(self, name: str, value: int) -> None:
        self.name, self.value = name, value


def _stand_in_cudart(calls: list[str], end_capture_error: int) -> types.SimpleNamespace:
    ok = _Err("cudaSuccess", 0)

    def call(name, *result):
        return lambda *args: (calls.append(name), result)[1]

    return types.SimpleNamespace(
        cudaStreamCaptureMode=types.SimpleNamespace(cudaStreamCaptureModeGlobal=0),
        cudaStreamBeginCapture=call("begin", ok),
        cudaStreamEndCapture=call("end", _Err("cudaErrorStreamCaptureInvalidated", end_capture_error) if end_capture_error else ok,
                                  None if end_capture_error else "graph"),
        cudaGraphInstantiate=call("instantiate", ok, "exec"), cudaGraphDestroy=call("destroy", ok),
        cudaGetLastError=call("get_last_error", ok), cudaGetErrorString=call("error_string", ok, b"operation not permitted"))


def test_a_failed_end_of_capture_clears_the_sticky_error_before_raising(monkeypatch):
    from runtime.backends import cuda_util

    calls: list[str] = []
    monkeypatch.setattr(cuda_util, "_CUDART", _stand_in_cudart(calls, end_capture_error=901))
    stream = object.__new__(cuda_util.Stream)
    stream.handle = "stream"
    with pytest.raises(cuda_util.CudaError, match="cudaStreamEndCapture failed: cudaErrorStreamCaptureInvalidated"):
        cuda_util.CudaGraph.capture(stream, lambda: calls.append("work"))
    assert calls[:3] == ["begin", "work", "end"] and "get_last_error" in calls  # trtexec's endCaptureOnError
    calls.clear()
    monkeypatch.setattr(cuda_util, "_CUDART", _stand_in_cudart(calls, end_capture_error=0))
    graph = cuda_util.CudaGraph.capture(stream, lambda: calls.append("work"))
    assert (graph.graph, graph.exec) == ("graph", "exec") and "get_last_error" not in calls


def test_the_stream_handle_uses_get_cuda_native_handle_where_cuda_bindings_has_it(monkeypatch):
    from runtime.backends import cuda_util

    class Handle:  # cuda-bindings 13: int(cudaStream_t) is deprecated
        def __int__(self) -> int:
            raise DeprecationWarning("int(cuda_obj) is deprecated: use get_cuda_native_handle()")

    utils = types.ModuleType("cuda.bindings.utils")
    utils.get_cuda_native_handle = lambda obj: 0x7F00
    for name, module in (("cuda", types.ModuleType("cuda")), ("cuda.bindings", types.ModuleType("cuda.bindings")),
                         ("cuda.bindings.utils", utils)):
        monkeypatch.setitem(sys.modules, name, module)
    stream = object.__new__(cuda_util.Stream)
    stream.handle = Handle()
    assert int(stream) == 0x7F00
    monkeypatch.setitem(sys.modules, "cuda.bindings.utils", None)  # cuda-python 12 before the utility module
    stream.handle = 0x1234
    assert int(stream) == 0x1234
