"""Native TensorRT backend: runs a serialized ``.engine`` with cuda-python buffers, one stream, CUDA
events around every stage, and optional CUDA-graph replay.

    backend = load_backend("artifacts/culane/student.fp16.engine", cuda_graph=True)
    out = backend.infer(batch)          # (N, 3, h, w) float32 -> {"seg_prob": ..., "exist_prob": ...} (lane model)
    backend.last_device_times           # {"h2d_ms", "compute_ms", "d2h_ms"} of that call (CUDA events)

The engine's outputs are the sidecar's, whatever they are: a marking model's engine has one
(``seg_prob``, no ``exist_prob``) and runs the same way.

Before deserializing, the engine's sidecar is checked against this machine
(:func:`engine_compatibility`): a TensorRT engine only runs under the TensorRT version that built
it, on a GPU of the same compute capability; otherwise the error says how to rebuild it from its
parent ONNX model. TensorRT and cuda-python are imported only when a backend is made (or
:func:`trt_available` is asked), so this module imports on machines without them, and never imports
torch.

This code follows NVIDIA's TensorRT 10.x/11.x Python API (name-based I/O tensors,
``execute_async_v3``, ``set_input_shape``, ``set_tensor_address``), its Python samples
(``samples/python/common_runtime.py``) and trtexec's CUDA-graph handling. Version-compatible
engines run forward only, with ``engine_host_code_allowed`` (:func:`version_problem`,
:func:`allow_engine_host_code`). It has run nowhere: there is no GPU, TensorRT or cuda-python in
this project's CI and no GPU was lent to its sessions.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from runtime.artifacts import Sidecar
from runtime.backends.base import check_graph_shapes
from runtime.errors import DataError

log = logging.getLogger("runtime.backends.tensorrt")

MIN_TRT_MAJOR = 10
TRT_INSTALL_HINT = (
    "on a machine with an NVIDIA GPU: pip install tensorrt-cu12 'cuda-python>=12,<13' (CUDA 12, NVIDIA driver >= 525; "
    "tensorrt-cu13 with 'cuda-python>=13' needs driver >= 580; --extra-index-url https://pypi.nvidia.com if your index "
    "lacks them); on Jetson, JetPack ships TensorRT 10.x (apt install python3-libnvinfer) and pip install 'cuda-python>=12,<13'"
)


class TensorRTUnavailable(RuntimeError):
    """TensorRT, cuda-python or a CUDA GPU is missing here; the message says which and how to install."""


class EngineRunError(RuntimeError):
    """TensorRT failed while executing an engine (the message carries TensorRT's logged errors)."""


# ----------------------------------------------------------------------------- availability

def import_tensorrt() -> ModuleType:
    """The ``tensorrt`` module (10.x or newer); :class:`TensorRTUnavailable` with an install hint otherwise."""
    try:
        import tensorrt as trt
    except (ImportError, OSError) as err:  # OSError: the module is there but libnvinfer cannot load
        raise TensorRTUnavailable(f"TensorRT is not installed or cannot load ({err}): {TRT_INSTALL_HINT}") from None
    version = getattr(trt, "__version__", "0")
    try:
        major = int(version.split(".")[0])
    except ValueError:
        major = 0
    if major < MIN_TRT_MAJOR:
        raise TensorRTUnavailable(f"TensorRT {version} is too old: this project needs TensorRT 10.x or 11.x; {TRT_INSTALL_HINT}")
    return trt


def trt_available() -> str | None:
    """None where TensorRT engines can be built and run here, else the one-line reason (what is
    missing: TensorRT, cuda-python or a CUDA GPU, and how to get it)."""
    try:
        import_tensorrt()
    except TensorRTUnavailable as err:
        return str(err)
    from runtime.backends import cuda_util

    try:
        return cuda_util.device_count_problem()
    except cuda_util.CudaUnavailable as err:
        return str(err)


# ----------------------------------------------------------------------------- compatibility

def rebuild_command(sidecar: dict[str, Any], engine_path: str | os.PathLike[str] | None = None) -> str:
    """The command that rebuilds an engine on this machine from the ONNX model named in its sidecar."""
    parent = (sidecar.get("source") or {}).get("parent") or "<its ONNX model>"
    return f"python -m export.to_tensorrt --onnx {parent} --out {os.fspath(engine_path) if engine_path else '<engine>'}"


def _version(text: str) -> tuple[int, ...]:
    """``"10.16.1.11"`` -> (10, 16, 1, 11); non-numeric parts end it."""
    parts = []
    for part in str(text).split("."):
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts)


def version_problem(built: str, runtime: str, version_compatible: bool) -> str | None:
    """Why an engine built with TensorRT ``built`` cannot be deserialized by TensorRT ``runtime``.

    TensorRT's rule ("Version Compatibility", TensorRT 10.16 and 11.1 developer guides): an engine
    runs only under the exact version that built it, unless it was built with
    ``BuilderFlag.VERSION_COMPATIBLE`` (TensorRT >= 8.6); such an engine runs under that version
    and every *later* one (forward only: "engines built with newer versions do not work with older
    runtimes"; 10.x engines run on 11.x), never under an older one."""
    if str(built) == str(runtime):
        return None
    mismatch = f"it was built with TensorRT {built} and this machine has TensorRT {runtime}"
    if not version_compatible:
        return mismatch + " (engines are not portable across TensorRT versions)"
    if _version(built) < (8, 6):
        return mismatch + " (version compatibility starts with engines built by TensorRT 8.6)"
    if _version(runtime) < _version(built):
        return (f"it was built version-compatible with TensorRT {built}, newer than this machine's TensorRT {runtime} "
                "(a version-compatible engine runs on the same or a later TensorRT only)")
    return None


def engine_compatibility(sidecar: dict[str, Any], trt_version: str, gpu: dict[str, Any],
                         engine_path: str | os.PathLike[str] | None = None) -> str | None:
    """Why an engine (described by its sidecar dict) cannot run under TensorRT ``trt_version`` on
    ``gpu`` (``{"name", "compute_capability"}``), or None when it can.

    Engines are tied to the exact TensorRT version that built them (unless built version-compatible,
    then to that version or a later one: :func:`version_problem`) and to the GPU's compute
    capability. A different GPU name with the same compute capability runs (TensorRT may warn that
    tactics were tuned elsewhere).
    """
    problems = []
    built_trt = (sidecar.get("versions") or {}).get("tensorrt") or (sidecar.get("tensorrt") or {}).get("version")
    version_compatible = bool((sidecar.get("tensorrt") or {}).get("version_compatible"))
    if built_trt:
        problem = version_problem(str(built_trt), str(trt_version), version_compatible)
        if problem:
            problems.append(problem)
    built_gpu = sidecar.get("gpu") or {}
    built_cc, here_cc = built_gpu.get("compute_capability"), gpu.get("compute_capability")
    if built_cc and here_cc and str(built_cc) != str(here_cc):
        built_name, here_name = built_gpu.get("name") or "a GPU", gpu.get("name") or "this GPU"
        problems.append(f"it was built for {built_name} (compute capability {built_cc}) and this GPU is {here_name} "
                        f"(compute capability {here_cc})")
    if not problems:
        return None
    return "; ".join(problems) + f"; rebuild it on this machine: {rebuild_command(sidecar, engine_path)}"


def allow_engine_host_code(runtime: Any, sidecar: dict[str, Any]) -> bool:
    """Let ``runtime`` (a ``trt.Runtime``) run the lean runtime a version-compatible engine carries:
    TensorRT loads and runs host code from such a plan only with ``runtime.engine_host_code_allowed
    = True`` ("Version Compatibility": only for trusted plans; ours are built by
    ``export.to_tensorrt`` and described by their own sidecar). Returns whether it was set."""
    if not (sidecar.get("tensorrt") or {}).get("version_compatible"):
        return False
    runtime.engine_host_code_allowed = True
    return True


# ----------------------------------------------------------------------------- logging

_LOGGER: Any = None  # one logger for the process: TensorRT keeps the first one it is given


def trt_logger(trt: ModuleType, verbose: bool = False) -> Any:
    """The process-wide TensorRT logger (a ``trt.ILogger``): errors are kept in ``.errors`` (clear
    it before an operation, read it after a failure); warnings go to Python logging (``tensorrt``),
    info/verbose messages too when ``verbose``."""
    global _LOGGER
    if _LOGGER is None:
        severity = trt.ILogger.Severity
        error_level, warning_level = int(severity.ERROR), int(severity.WARNING)
        py_log = logging.getLogger("tensorrt")

        class CapturingLogger(trt.ILogger):  # type: ignore[misc, valid-type]
            def __init__(self) -> None:
                trt.ILogger.__init__(self)
                self.errors: list[str] = []
                self.verbose = False

            def log(self, level: Any, msg: str) -> None:
                value = int(level)
                if value <= error_level:
                    self.errors.append(msg)
                    if self.verbose:
                        py_log.error(msg)
                elif value == warning_level:
                    py_log.warning(msg)
                elif self.verbose:
                    py_log.info(msg)

        _LOGGER = CapturingLogger()
    _LOGGER.verbose = verbose
    return _LOGGER


def logged_errors(logger: Any, last: int = 3) -> str:
    """TensorRT's last logged errors as one line (empty if none)."""
    return " | ".join(" ".join(str(e).split()) for e in logger.errors[-last:])


# ----------------------------------------------------------------------------- the backend

def _require_runtime(path: Path) -> ModuleType:
    """TensorRT, cuda-python and a GPU, or a :class:`DataError` saying what is missing."""
    try:
        trt = import_tensorrt()
    except TensorRTUnavailable as err:
        raise DataError(path, f"cannot run a TensorRT engine here: {err}") from None
    problem = trt_available()
    if problem:
        raise DataError(path, f"cannot run a TensorRT engine here: {problem}")
    return trt


class _Tensor:
    """One I/O tensor of the engine: name, numpy dtype, shape (-1 for the dynamic batch), buffers."""

    def __init__(self, name: str, dtype: np.dtype, shape: tuple[int, ...], is_input: bool) -> None:
        self.name, self.dtype, self.shape, self.is_input = name, dtype, shape, is_input
        self.current: tuple[int, ...] = shape
        self.host: Any = None    # cuda_util.PinnedBuffer
        self.device: Any = None  # cuda_util.DeviceBuffer

    def view(self) -> np.ndarray:
        """The pinned host buffer as an array of the current shape."""
        return self.host.array(self.dtype, self.current)

    def free(self) -> None:
        for buffer in (self.host, self.device):
            if buffer is not None:
                buffer.free()
        self.host = self.device = None


class TensorRTBackend:
    """A TensorRT engine on the first CUDA GPU. ``infer``: (N, 3, h, w) float32 -> {kind: array};
    fixed-batch engines run larger batches in chunks, dynamic-batch ones up to their profile's max
    per launch. ``cuda_graph=True`` replays the inference as a CUDA graph (re-captured when the
    batch size changes)."""

    name = "tensorrt"

    def __init__(self, path: str | os.PathLike[str], sidecar: Sidecar, device: str = "cuda", cuda_graph: bool = False) -> None:
        self.path = Path(path)
        self.sidecar = sidecar
        self.device = "cuda"
        self.device_name = "CUDA GPU"
        self.cuda_graph = bool(cuda_graph)
        self.settings: dict[str, Any] = {}
        self.last_device_times: dict[str, float] = {}
        self.engine = self.context = self._runtime = self._stream = self._graph = None
        self._events: list[Any] = []
        self._tensors: list[_Tensor] = []
        self._batch = self._capacity = 0
        if device != "cuda":
            raise DataError(self.path, f"a TensorRT engine runs on device 'cuda', not {device!r}")
        if sidecar.format != "tensorrt":
            raise DataError(self.path, f"not a TensorRT engine (sidecar format {sidecar.format!r})")
        self._trt = _require_runtime(self.path)
        from runtime.backends import cuda_util

        self._cu = cuda_util
        gpu = cuda_util.gpu_properties(0)
        self._check_compatible(gpu)
        self.device_name = gpu["name"]
        built = sidecar.extra.get("tensorrt") or {}
        self.settings = {"provider": f"TensorRT {self._trt.__version__}", "precision": sidecar.precision,
                         "tf32": bool(built.get("tf32")) if "tf32" in built else None,
                         "strongly_typed": built.get("strongly_typed"), "cuda_graph": self.cuda_graph,
                         "version_compatible": bool(built.get("version_compatible"))}
        self._logger = trt_logger(self._trt)
        self.engine = self._deserialize()
        self._read_io()
        self.context = self.engine.create_execution_context()
        if self.context is None:
            raise DataError(self.path, f"TensorRT cannot create an execution context ({logged_errors(self._logger) or 'out of GPU memory?'})")
        self._stream = cuda_util.Stream()
        self._events = [cuda_util.Event() for _ in range(4)]

    # -- loading ------------------------------------------------------------------------------
    def _check_compatible(self, gpu: dict[str, Any]) -> None:
        data = self.sidecar.to_dict()
        problem = engine_compatibility(data, self._trt.__version__, gpu, self.path)
        if problem:
            raise DataError(self.path, f"cannot run this engine here: {problem}")
        built_name = (data.get("gpu") or {}).get("name")
        if built_name and built_name != gpu["name"]:
            log.warning("%s: built on %s, running on %s (same compute capability %s); rebuild here for tuned tactics",
                        self.path, built_name, gpu["name"], gpu["compute_capability"])

    def _deserialize(self) -> Any:
        try:
            data = self.path.read_bytes()
        except OSError as err:
            raise DataError(self.path, f"cannot read the engine ({err.strerror})") from None
        self._logger.errors.clear()
        self._runtime = self._trt.Runtime(self._logger)  # must outlive the engine
        allow_engine_host_code(self._runtime, self.sidecar.to_dict())
        engine = self._runtime.deserialize_cuda_engine(data)
        if engine is None:
            why = logged_errors(self._logger) or "no reason logged"
            raise DataError(self.path, f"TensorRT cannot deserialize this engine ({why}); rebuild it: "
                                       f"{rebuild_command(self.sidecar.to_dict(), self.path)}")
        return engine

    def _read_io(self) -> None:
        """The engine's I/O tensors by name, checked against the sidecar."""
        trt, engine = self._trt, self.engine
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            try:
                dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
            except TypeError:
                raise DataError(self.path, f"tensor {name!r} has type {engine.get_tensor_dtype(name)}, which numpy cannot hold") from None
            shape = tuple(int(d) for d in engine.get_tensor_shape(name))
            self._tensors.append(_Tensor(name, dtype, shape, engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT))
        inputs = [t for t in self._tensors if t.is_input]
        names = {t.name for t in self._tensors if not t.is_input}
        if len(inputs) != 1 or inputs[0].name != self.sidecar.input["name"] or any(o["name"] not in names for o in self.sidecar.outputs):
            raise DataError(self.path, "engine and sidecar disagree on input/output names: rebuild it with "
                                       f"{rebuild_command(self.sidecar.to_dict(), self.path)}")
        self._input = inputs[0]
        check_graph_shapes(self.path, self.sidecar, list(self._input.shape), {t.name: list(t.shape) for t in self._tensors if not t.is_input})
        if len(self._input.shape) != 4 or min(self._input.shape[1:]) < 1:
            raise DataError(self.path, f"expected an (N, 3, h, w) input with fixed (3, h, w), the engine has {self._input.shape}")
        self.kinds = {o["name"]: o["kind"] for o in self.sidecar.outputs}
        self.dynamic = self._input.shape[0] == -1
        self.max_batch = self._profile_max() if self.dynamic else self._input.shape[0]

    def _profile_max(self) -> int:
        """The largest batch of the engine's optimization profile 0."""
        try:
            return int(self.engine.get_tensor_profile_shape(self._input.name, 0)[2][0])
        except Exception:  # noqa: BLE001 - fall back to what the build recorded
            profile = (self.sidecar.extra.get("tensorrt") or {}).get("profile") or {}
            return int((profile.get("max") or [1])[0])

    # -- buffers ------------------------------------------------------------------------------
    def _prepare(self, n: int) -> None:
        """Shapes, buffers and tensor addresses for a batch of ``n`` (no-op if unchanged)."""
        if n == self._batch:
            return
        name, (_, c, h, w) = self._input.name, self._input.shape
        if self.dynamic and not self.context.set_input_shape(name, (n, c, h, w)):
            raise DataError(self.path, f"the engine refuses batch {n} (its profile allows 1..{self.max_batch})")
        for tensor in self._tensors:
            tensor.current = tuple(int(d) for d in self.context.get_tensor_shape(tensor.name))
        if n > self._capacity:
            self._allocate()
            self._capacity = n
        for tensor in self._tensors:
            self.context.set_tensor_address(tensor.name, int(tensor.device.ptr))
        self._drop_graph()
        self._batch = n

    def _allocate(self) -> None:
        """(Re)allocate pinned host and device buffers for the tensors' current shapes."""
        self._stream.synchronize()
        for tensor in self._tensors:
            tensor.free()
            nbytes = int(np.prod(tensor.current, dtype=np.int64)) * tensor.dtype.itemsize
            tensor.host = self._cu.PinnedBuffer(nbytes)
            tensor.device = self._cu.DeviceBuffer(nbytes)

    # -- execution ----------------------------------------------------------------------------
    def _enqueue(self) -> None:
        self._logger.errors.clear()
        if not self.context.execute_async_v3(stream_handle=int(self._stream)):
            raise EngineRunError(f"{self.path}: TensorRT execution failed ({logged_errors(self._logger) or 'no reason logged'})")

    def _execute(self) -> None:
        """Enqueue the inference on the stream: replay the CUDA graph (captured by :meth:`_run`
        before its timed region), or execute_async_v3."""
        if self._graph is not None:
            self._graph.launch(self._stream)
        else:
            self._enqueue()

    def _capture(self) -> Any:
        """Capture one inference as a CUDA graph; None (and graphs off) where TensorRT cannot be captured.

        As trtexec does (``sampleInference.cpp``): one enqueue and a stream synchronize first, so that
        TensorRT's deferred shape work happens outside the graph, then the capture (which records
        without running). Called before the timed events, so no call's ``compute_ms`` holds the
        extra inference."""
        self._enqueue()
        self._stream.synchronize()
        try:
            return self._cu.CudaGraph.capture(self._stream, self._enqueue)
        except (self._cu.CudaError, EngineRunError) as err:
            log.warning("%s: CUDA graph capture failed (%s); running without CUDA graphs", self.path, err)
            self.cuda_graph = False
            self.settings["cuda_graph"] = False
            return None

    def _drop_graph(self) -> None:
        if self._graph is not None:
            graph, self._graph = self._graph, None
            graph.destroy()

    def _run(self, part: np.ndarray) -> tuple[dict[str, np.ndarray], list[float]]:
        """One launch: H2D, inference, D2H on the stream, timed by events -> (outputs by name, [h2d, compute, d2h] ms)."""
        self._prepare(part.shape[0])
        start, copied, computed, done = self._events
        host_in = self._input.view()
        np.copyto(host_in, part, casting="unsafe")
        if self.cuda_graph and self._graph is None:  # (re)capture outside the timed region
            self._cu.memcpy_htod_async(self._input.device.ptr, host_in, self._stream)
            self._graph = self._capture()
        start.record(self._stream)
        self._cu.memcpy_htod_async(self._input.device.ptr, host_in, self._stream)
        copied.record(self._stream)
        self._execute()
        computed.record(self._stream)
        outputs = [t for t in self._tensors if not t.is_input]
        views = [t.view() for t in outputs]
        for tensor, view in zip(outputs, views):
            self._cu.memcpy_dtoh_async(view, tensor.device.ptr, self._stream)
        done.record(self._stream)
        done.synchronize()
        times = [copied.elapsed_ms(start), computed.elapsed_ms(copied), done.elapsed_ms(computed)]
        return {t.name: _to_host(v) for t, v in zip(outputs, views)}, times

    def _check_input(self, batch: np.ndarray) -> np.ndarray:
        _, c, h, w = self._input.shape
        x = np.asarray(batch)
        if x.ndim != 4 or x.shape[1:] != (c, h, w) or x.shape[0] < 1:
            model = self.sidecar.model.get("name", self.path.name)
            raise DataError(self.path, f"model {model!r} takes input (N, {c}, {h}, {w}) (h={h}, w={w}); got {tuple(x.shape)}: "
                                       "preprocess with the sidecar's parameters")
        return x

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """(N, 3, h, w) float32 -> {kind: (N, ...) array}; ``last_device_times`` sums the launches' event times (ms)."""
        if self.context is None:
            raise DataError(self.path, "backend is closed")
        x = self._check_input(batch)
        parts: dict[str, list[np.ndarray]] = {name: [] for name in self.kinds}
        total = [0.0, 0.0, 0.0]
        for begin in range(0, x.shape[0], self.max_batch):
            chunk = x[begin : begin + self.max_batch]
            real = chunk.shape[0]
            if not self.dynamic and real < self.max_batch:  # fixed-batch engine: pad the last chunk
                chunk = np.concatenate([chunk, np.zeros((self.max_batch - real, *chunk.shape[1:]), chunk.dtype)])
            outputs, times = self._run(chunk)
            total = [a + b for a, b in zip(total, times)]
            for name in parts:
                parts[name].append(outputs[name][:real])
        self.last_device_times = {"h2d_ms": total[0], "compute_ms": total[1], "d2h_ms": total[2]}
        return {self.kinds[name]: (arrays[0] if len(arrays) == 1 else np.concatenate(arrays)) for name, arrays in parts.items()}

    # -- cleanup ------------------------------------------------------------------------------
    def close(self) -> None:
        """Free the CUDA graph, buffers, events and stream, then the context and engine (idempotent)."""
        stream = getattr(self, "_stream", None)
        try:
            if stream is not None and stream.handle is not None:
                stream.synchronize()
        except Exception:  # noqa: BLE001 - best-effort cleanup
            pass
        try:
            self._drop_graph()
        except Exception:  # noqa: BLE001
            self._graph = None
        for resource in [*getattr(self, "_tensors", []), *getattr(self, "_events", [])]:
            try:
                resource.free() if isinstance(resource, _Tensor) else resource.destroy()
            except Exception:  # noqa: BLE001
                pass
        self._tensors, self._events = [], []
        if stream is not None:
            try:
                stream.destroy()
            except Exception:  # noqa: BLE001
                pass
        self._stream = None
        self.context = None  # the context before the engine, the engine before the runtime
        self.engine = None
        self._runtime = None
        self._batch = self._capacity = 0

    def __enter__(self) -> "TensorRTBackend":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finalizer (e.g. at interpreter exit)
            pass


def _to_host(view: np.ndarray) -> np.ndarray:
    """A copy out of pinned memory: floating outputs as float32, others as they are."""
    if np.issubdtype(view.dtype, np.floating):
        return view.astype(np.float32, copy=True)
    return view.copy()
