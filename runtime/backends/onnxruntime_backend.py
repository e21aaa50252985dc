"""ONNX Runtime backend (CPU; CUDA and TensorRT execution providers when onnxruntime-gpu is installed).

A GPU provider is judged by the session's *active* providers (``session.get_providers()``), never
by ``ort.get_available_providers()``: onnxruntime-gpu lists its CUDA and TensorRT providers
whatever is installed, and a session whose provider cannot start (no GPU, no CUDA/cuDNN libraries)
falls back to the CPU with only a logged warning (ONNX Runtime issues #13414, #21424). Device
``auto`` therefore asks for CUDA where it is listed and runs where the session says;
``cuda``/``tensorrt`` asked for by name are refused when the session is not on them. Before a GPU
session, ``onnxruntime.preload_dlls()`` (ONNX Runtime >= 1.21, "Preload DLLs" in its CUDA provider
docs) loads CUDA and cuDNN from the nvidia-* pip packages, which onnxruntime-gpu does not find on its
own when torch is not imported first.

Provider options (ONNX Runtime's CUDA and TensorRT execution provider docs): the CUDA provider with
``use_tf32=0`` (FP32 as FP32, like the FP32 TensorRT engines of ``export.to_tensorrt``); the
TensorRT provider builds a weakly typed network, so ``trt_fp16_enable`` / ``trt_int8_enable``
follow the artifact's precision (FP16 graph; Q/DQ INT8 graph without a calibration table), with an
engine and timing cache (:func:`tensorrt_cache_dir`) instead of a rebuild per session. The
TensorRT provider has no TF32 option: TensorRT's default (on) holds unless ``NVIDIA_TF32_OVERRIDE=0``
is set, as ``settings`` says. None of the GPU paths has run: no GPU was lent to this project.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from runtime.artifacts import Sidecar
from runtime.backends.base import check_graph_shapes, cpu_name, run_checked
from runtime.errors import DataError

log = logging.getLogger("runtime.backends.onnxruntime")

CPU, CUDA, TENSORRT = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"
PROVIDERS = {"cpu": [CPU], "cuda": [CUDA, CPU], "tensorrt": [TENSORRT, CUDA, CPU]}
DEVICE_OF = {CPU: "cpu", CUDA: "cuda", TENSORRT: "tensorrt"}

PROBE_MODEL = bytes.fromhex("080812003a3b0a100a017812017922084964656e74697479120570726f62655a0f0a0178120a0a08080112040a02"
                            "0801620f0a0179120a0a08080112040a02080142040a001011")
"""A one-node ONNX model (Identity of a float[1], opset 17, IR 8) for :func:`gpu_provider_problem`."""


def _gpu_name() -> str:
    """The CUDA GPU's name through cuda-python where installed (onnxruntime itself does not say)."""
    try:
        from runtime.backends.cuda_util import gpu_properties
    except ImportError:
        return "CUDA GPU"
    try:
        return gpu_properties()["name"]
    except Exception:  # no driver query possible: the provider still runs
        return "CUDA GPU"


def preload_cuda_libraries(ort: Any) -> None:
    """``onnxruntime.preload_dlls()`` where this ONNX Runtime has it (>= 1.21): CUDA and cuDNN from
    the nvidia-* pip packages (or torch's), before the first CUDA/TensorRT session. Its messages
    (printed) go to stderr, so that reports on stdout stay clean; a failure is only logged, since the
    session's active providers decide afterwards."""
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        return
    try:
        with contextlib.redirect_stdout(sys.stderr):
            preload()
    except Exception as err:  # noqa: BLE001 - e.g. a missing directory; the session will tell
        log.warning("onnxruntime.preload_dlls() failed (%s: %s)", err.__class__.__name__, err)


def tensorrt_cache_dir(path: str | os.PathLike[str]) -> Path:
    """Where the TensorRT provider keeps the engines and timing cache of ``path``:
    ``.trt_ep_cache/<stem>.<sha256 of the model, 16 hex>.ort<version>`` beside it. ONNX Runtime
    reuses a cached engine for a model of the same name even after the model changed, and engines
    do not carry over ONNX Runtime versions (its TensorRT provider docs, "Engine caching"), so both
    are in the folder's name; a new TensorRT or GPU still needs the folder cleared."""
    import onnxruntime as ort

    path = Path(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return path.parent / ".trt_ep_cache" / f"{path.stem}.{digest}.ort{ort.__version__}"


def provider_options(device: str, precision: str, cache: str | os.PathLike[str] | None) -> list:
    """The ``providers`` argument of an ``InferenceSession`` for ``device`` (cpu | cuda | tensorrt)
    and the artifact's ``precision``: (name, options) pairs, CPU last as the fallback."""
    cuda = (CUDA, {"use_tf32": "0"})  # ONNX Runtime >= 1.18: FP32 Conv/MatMul without TF32
    if device == "cpu":
        return [CPU]
    if device == "cuda":
        return [cuda, CPU]
    trt: dict[str, Any] = {"trt_fp16_enable": precision == "fp16", "trt_int8_enable": precision == "int8"}
    if cache is not None:
        trt.update(trt_engine_cache_enable=True, trt_engine_cache_path=str(cache), trt_timing_cache_enable=True,
                   trt_timing_cache_path=str(cache))
    return [(TENSORRT, trt), cuda, CPU]


def _session(ort: Any, model: str | bytes, providers: list, threads: int | None = None) -> Any:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    return ort.InferenceSession(model, opts, providers=providers)


def gpu_provider_problem(device: str = "cuda") -> str | None:
    """None where ONNX Runtime's ``device`` provider (cuda | tensorrt) really starts here, else why
    not: a real session of :data:`PROBE_MODEL` is made and its active provider read."""
    import onnxruntime as ort

    wanted = PROVIDERS[device][0]
    if wanted not in ort.get_available_providers():
        return f"ONNX Runtime {ort.__version__} lacks {wanted} (the CPU build; onnxruntime-gpu has it)"
    preload_cuda_libraries(ort)
    try:
        active = _session(ort, PROBE_MODEL, provider_options(device, "fp32", None)).get_providers()
    except Exception as err:  # noqa: BLE001 - onnxruntime raises its own types
        return f"ONNX Runtime cannot start {wanted} ({str(err).splitlines()[0][:200]})"
    if active[0] != wanted:
        return f"ONNX Runtime could not start {wanted} here (running on {active[0]}): check the GPU, CUDA and cuDNN libraries"
    return None


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def __init__(self, path: str | os.PathLike[str], sidecar: Sidecar, device: str = "cpu", threads: int | None = None,
                 trt_cache: str | os.PathLike[str] | None = None) -> None:
        """``device``: cpu | cuda | tensorrt, or auto (CUDA where the session really runs on it, else
        the CPU). ``trt_cache``: the TensorRT provider's cache folder (default
        :func:`tensorrt_cache_dir`)."""
        import onnxruntime as ort

        if device not in (*PROVIDERS, "auto"):
            raise DataError(path, f"unknown device {device!r} for ONNX Runtime; choose from auto, {', '.join(PROVIDERS)}")
        listed = ort.get_available_providers()
        wanted = device if device != "auto" else ("cuda" if CUDA in listed else "cpu")
        if device != "auto" and PROVIDERS[wanted][0] not in listed:
            raise DataError(path, f"ONNX Runtime here lacks {PROVIDERS[wanted][0]}; install the onnxruntime-gpu extra for device {device!r}")
        cache = None
        if wanted == "tensorrt":
            cache = Path(trt_cache) if trt_cache else tensorrt_cache_dir(path)
            try:
                cache.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                log.warning("%s: no TensorRT engine cache (%s): engines are rebuilt every session", path, err.strerror)
                cache = None
        if wanted != "cpu":
            preload_cuda_libraries(ort)
        try:
            self.session = _session(ort, str(path), provider_options(wanted, sidecar.precision, cache), threads)
        except Exception as err:  # onnxruntime raises its own exception types for bad files
            raise DataError(path, f"ONNX Runtime cannot load the model ({str(err).splitlines()[0][:200]})") from None
        active = self.session.get_providers()
        if active[0] != PROVIDERS[wanted][0]:  # listed but not startable (no GPU, no CUDA/cuDNN): ORT fell back quietly
            reason = (f"ONNX Runtime could not start {PROVIDERS[wanted][0]} here (running on {active[0]}): "
                      "check the GPU, CUDA and cuDNN libraries")
            if device != "auto":
                raise DataError(path, reason)
            log.warning("%s: %s; device auto runs it there", path, reason)
        self.sidecar = sidecar
        self.device = DEVICE_OF.get(active[0], "cpu")
        self.device_name = cpu_name() if self.device == "cpu" else _gpu_name()
        self.settings = self._settings(active, cache, threads)
        self.last_device_times: dict[str, float] = {}
        self.path = Path(path)
        self.input_name = self.session.get_inputs()[0].name
        names = {o.name for o in self.session.get_outputs()}
        self.outputs = [(o["name"], o["kind"]) for o in sidecar.outputs if o["name"] in names]
        if len(self.outputs) != len(sidecar.outputs) or self.input_name != sidecar.input["name"]:
            raise DataError(path, "model and sidecar disagree on input/output names: re-export, or use the sidecar made with this model")
        check_graph_shapes(self.path, sidecar, self.session.get_inputs()[0].shape,
                           {o.name: o.shape for o in self.session.get_outputs()})
        self.names = [n for n, _ in self.outputs]
        self.binding = None
        if self.device != "cpu":
            self.binding = self.session.io_binding()
            for name in self.names:
                self.binding.bind_output(name, "cuda")

    def _settings(self, active: list[str], cache: Path | None, threads: int | None) -> dict[str, Any]:
        """What makes this run comparable (reports' ``meta.settings``): the provider that runs, the
        precision, TF32 and, on the TensorRT provider, the builder precision flags and the cache."""
        settings: dict[str, Any] = {"provider": active[0], "providers": list(active), "precision": self.sidecar.precision,
                                    "tf32": None, "threads": threads}
        options = self.session.get_provider_options()
        if active[0] == CUDA:
            settings["tf32"] = options.get(CUDA, {}).get("use_tf32") not in ("0", 0, False)
            settings["cudnn_conv_algo_search"] = options.get(CUDA, {}).get("cudnn_conv_algo_search")
        elif active[0] == TENSORRT:
            trt = options.get(TENSORRT, {})
            settings["tf32"] = os.environ.get("NVIDIA_TF32_OVERRIDE") != "0"  # TensorRT's default; the provider has no option
            settings.update({k: trt.get(k) for k in ("trt_fp16_enable", "trt_int8_enable", "trt_engine_cache_enable")})
            settings["trt_cache"] = str(cache) if cache else None
        return settings

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """(N, 3, h, w) float32 -> {kind: array}; a fixed-batch model runs image by image."""
        return run_checked(self.path, self.sidecar, batch, self._run, [kind for _, kind in self.outputs])

    def _run(self, batch: np.ndarray) -> list[np.ndarray]:
        """One session call. On a GPU provider, IO binding (made once): the input is copied to the
        device once and the outputs stay there until one copy back."""
        if self.binding is None:
            return self.session.run(self.names, {self.input_name: batch})
        self.binding.bind_cpu_input(self.input_name, batch)
        self.session.run_with_iobinding(self.binding)
        return self.binding.copy_outputs_to_cpu()
