"""Thin helpers over cuda-python's CUDA runtime bindings (``cudart``), for the TensorRT backend.

cuda-python is imported lazily (:func:`cudart`), so importing this module never fails: the first
call that needs CUDA raises :class:`CudaUnavailable` (with an install hint) where cuda-python is
missing. Every cuda-python call returns a tuple ``(err, *values)``; :func:`check` turns a non-zero
``err`` into :class:`CudaError` (message from ``cudaGetErrorString``) and returns the values.

This code follows NVIDIA's cuda-python (12.x/13.x, ``cuda.bindings.runtime``; older
``cuda.cudart``) API and TensorRT's Python samples (``samples/python/common_runtime.py``). It has
run nowhere in this project's CI: there is no GPU, TensorRT or cuda-python there.
"""
from __future__ import annotations

import ctypes
import shutil
import subprocess
from types import ModuleType
from typing import Any

import numpy as np

INSTALL_HINT = ("install cuda-python for your NVIDIA driver's CUDA major version (pip install 'cuda-python>=12,<13' for "
                "CUDA 12, beside tensorrt-cu12 and onnxruntime-gpu; 'cuda-python>=13' only with driver >= 580 and tensorrt-cu13) "
                "on a machine with an NVIDIA GPU")

_CUDART: ModuleType | None = None


class CudaUnavailable(RuntimeError):
    """cuda-python is not installed (or cannot load), so nothing can run on a CUDA GPU here."""


class CudaError(RuntimeError):
    """A CUDA runtime call failed; the message names the call's error."""


def cudart() -> ModuleType:
    """The cuda-python runtime module (``cuda.bindings.runtime``, or ``cuda.cudart`` before 12.6)."""
    global _CUDART
    if _CUDART is None:
        try:
            from cuda.bindings import runtime as module
        except ImportError:
            try:
                from cuda import cudart as module  # type: ignore[no-redef]
            except ImportError as err:
                raise CudaUnavailable(f"cuda-python is not installed ({err}): {INSTALL_HINT}") from None
        _CUDART = module
    return _CUDART


def _code(err: Any) -> int:
    return int(getattr(err, "value", err))


def error_string(err: Any) -> str:
    """``cudaGetErrorString(err)`` as text (with the error's name where the bindings give it)."""
    rt = cudart()
    try:
        text = rt.cudaGetErrorString(err)[1]
        text = text.decode() if isinstance(text, bytes) else str(text)
    except Exception:  # noqa: BLE001 - an unknown code must still produce a message
        text = "unknown CUDA error"
    name = getattr(err, "name", None)
    return f"{name} ({_code(err)}): {text}" if name else f"error {_code(err)}: {text}"


def check(result: Any, what: str = "CUDA call") -> Any:
    """Values of a cuda-python call ``(err, *values)``: None, the one value, or a tuple; raises
    :class:`CudaError` when ``err`` is not ``cudaSuccess``."""
    if not isinstance(result, tuple):
        result = (result,)
    err, values = result[0], result[1:]
    if _code(err) != 0:
        raise CudaError(f"{what} failed: {error_string(err)}")
    if not values:
        return None
    return values[0] if len(values) == 1 else values


# ----------------------------------------------------------------------------- device queries

def device_count() -> int:
    """Number of visible CUDA devices; 0 where the driver or a GPU is missing."""
    err, count = cudart().cudaGetDeviceCount()
    return int(count) if _code(err) == 0 else 0


CUDA_ERROR_INSUFFICIENT_DRIVER = 35  # cudaErrorInsufficientDriver: the driver is older than the runtime


def device_count_problem() -> str | None:
    """None if at least one CUDA GPU is usable, else why not (one line). A driver older than
    cuda-python's CUDA runtime (cuda-python 13 on a CUDA-12 driver, < 580) is named as such."""
    rt = cudart()
    err, count = rt.cudaGetDeviceCount()
    if _code(err) == CUDA_ERROR_INSUFFICIENT_DRIVER:
        versions = []
        for what, call in (("the driver supports CUDA", "cudaDriverGetVersion"), ("cuda-python's runtime is CUDA", "cudaRuntimeGetVersion")):
            try:
                versions.append(f"{what} {_cuda_version(int(check(getattr(rt, call)(), call)))}")
            except Exception:  # noqa: BLE001 - informative only
                pass
        return (f"no usable CUDA GPU (cudaGetDeviceCount: {error_string(err)}; {', '.join(versions) or 'versions unknown'}): "
                "pip install 'cuda-python>=12,<13' for a CUDA-12 driver (cuda-python 13 needs driver >= 580)")
    if _code(err) != 0:
        return f"no usable CUDA GPU (cudaGetDeviceCount: {error_string(err)})"
    if int(count) < 1:
        return "no CUDA GPU visible (check the NVIDIA driver and CUDA_VISIBLE_DEVICES)"
    return None


def gpu_properties(index: int = 0) -> dict[str, Any]:
    """``{"name", "compute_capability" ("M.m"), "total_memory_gb"}`` of CUDA device ``index``."""
    prop = check(cudart().cudaGetDeviceProperties(index), f"cudaGetDeviceProperties({index})")
    name = prop.name
    if isinstance(name, (bytes, bytearray)):
        name = bytes(name).split(b"\0", 1)[0].decode(errors="replace")
    return {
        "name": str(name).strip(),
        "compute_capability": f"{int(prop.major)}.{int(prop.minor)}",
        "total_memory_gb": round(int(prop.totalGlobalMem) / 2**30, 2),
    }


def _cuda_version(value: int) -> str:
    return f"{value // 1000}.{(value % 1000) // 10}"


def nvidia_driver_version() -> str | None:
    """The NVIDIA display driver's version (e.g. ``550.54.14``) from ``nvidia-smi``, if present."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    return lines[0] if lines else None


def gpu_info(index: int = 0) -> dict[str, Any]:
    """:func:`gpu_properties` plus ``driver`` (NVIDIA driver), ``cuda_driver`` and ``cuda_runtime``
    (CUDA versions the driver supports / cuda-python's runtime), for sidecars and reports."""
    rt = cudart()
    info = gpu_properties(index)
    info["driver"] = nvidia_driver_version()
    for key, call in (("cuda_driver", "cudaDriverGetVersion"), ("cuda_runtime", "cudaRuntimeGetVersion")):
        try:
            info[key] = _cuda_version(int(check(getattr(rt, call)(), call)))
        except Exception:  # noqa: BLE001 - versions are informative only
            info[key] = None
    return info


# ----------------------------------------------------------------------------- memory

class PinnedBuffer:
    """Page-locked host memory (``cudaMallocHost``) of ``nbytes`` bytes, viewable as numpy arrays."""

    def __init__(self, nbytes: int) -> None:
        self.nbytes = int(max(nbytes, 1))
        self.ptr: int | None = int(check(cudart().cudaMallocHost(self.nbytes), f"cudaMallocHost({self.nbytes} B)"))

    def array(self, dtype: np.dtype | type, shape: tuple[int, ...]) -> np.ndarray:
        """A numpy view of the first ``prod(shape) * itemsize`` bytes (no copy; valid until :meth:`free`)."""
        dtype = np.dtype(dtype)
        count = int(np.prod(shape, dtype=np.int64))
        if self.ptr is None:
            raise CudaError("pinned buffer used after free")
        if count * dtype.itemsize > self.nbytes:
            raise ValueError(f"{shape} {dtype} needs {count * dtype.itemsize} B, the pinned buffer has {self.nbytes} B")
        raw = (ctypes.c_uint8 * (count * dtype.itemsize)).from_address(self.ptr)
        return np.frombuffer(raw, dtype=dtype, count=count).reshape(shape)

    def free(self) -> None:
        if self.ptr is not None:
            ptr, self.ptr = self.ptr, None
            check(cudart().cudaFreeHost(ptr), "cudaFreeHost")


class DeviceBuffer:
    """Device memory (``cudaMalloc``) of ``nbytes`` bytes; ``ptr`` is its address as an int."""

    def __init__(self, nbytes: int) -> None:
        self.nbytes = int(max(nbytes, 1))
        self.ptr: int | None = int(check(cudart().cudaMalloc(self.nbytes), f"cudaMalloc({self.nbytes} B)"))

    def free(self) -> None:
        if self.ptr is not None:
            ptr, self.ptr = self.ptr, None
            check(cudart().cudaFree(ptr), "cudaFree")


def memcpy_htod_async(device_ptr: int, host: np.ndarray, stream: "Stream") -> None:
    """Copy a C-contiguous (pinned) host array to ``device_ptr`` on ``stream`` (asynchronous)."""
    rt = cudart()
    check(rt.cudaMemcpyAsync(device_ptr, host.ctypes.data, host.nbytes, rt.cudaMemcpyKind.cudaMemcpyHostToDevice,
                             stream.handle), "cudaMemcpyAsync(host to device)")


def memcpy_dtoh_async(host: np.ndarray, device_ptr: int, stream: "Stream") -> None:
    """Copy ``host.nbytes`` bytes from ``device_ptr`` into a C-contiguous (pinned) host array (asynchronous)."""
    rt = cudart()
    check(rt.cudaMemcpyAsync(host.ctypes.data, device_ptr, host.nbytes, rt.cudaMemcpyKind.cudaMemcpyDeviceToHost,
                             stream.handle), "cudaMemcpyAsync(device to host)")


# ----------------------------------------------------------------------------- streams, events, graphs

def native_handle(obj: Any) -> int:
    """The address of a cuda-python object (a ``cudaStream_t`` for TensorRT's ``execute_async_v3``):
    ``cuda.bindings.utils.get_cuda_native_handle`` where cuda-bindings has it (``int(cuda_obj)``
    is deprecated since cuda-bindings 13.0, its release notes), ``int()`` before that (12.x)."""
    try:
        from cuda.bindings.utils import get_cuda_native_handle
    except ImportError:
        return int(obj)
    return int(get_cuda_native_handle(obj))


class Stream:
    """A CUDA stream; ``handle`` is the cuda-python object, ``int(stream)`` its address (for TensorRT)."""

    def __init__(self) -> None:
        self.handle: Any = check(cudart().cudaStreamCreate(), "cudaStreamCreate")

    def __int__(self) -> int:
        return native_handle(self.handle)

    def synchronize(self) -> None:
        check(cudart().cudaStreamSynchronize(self.handle), "cudaStreamSynchronize")

    def destroy(self) -> None:
        if self.handle is not None:
            handle, self.handle = self.handle, None
            check(cudart().cudaStreamDestroy(handle), "cudaStreamDestroy")


class Event:
    """A CUDA event (timing enabled)."""

    def __init__(self) -> None:
        self.handle: Any = check(cudart().cudaEventCreate(), "cudaEventCreate")

    def record(self, stream: Stream) -> None:
        check(cudart().cudaEventRecord(self.handle, stream.handle), "cudaEventRecord")

    def synchronize(self) -> None:
        check(cudart().cudaEventSynchronize(self.handle), "cudaEventSynchronize")

    def elapsed_ms(self, start: "Event") -> float:
        """Milliseconds between ``start`` and this event (both recorded and complete)."""
        return float(check(cudart().cudaEventElapsedTime(start.handle, self.handle), "cudaEventElapsedTime"))

    def destroy(self) -> None:
        if self.handle is not None:
            handle, self.handle = self.handle, None
            check(cudart().cudaEventDestroy(handle), "cudaEventDestroy")


class CudaGraph:
    """Work captured from a stream (``cudaStreamBeginCapture`` ... ``cudaStreamEndCapture``), instantiated
    once and replayed with :meth:`launch`."""

    def __init__(self, graph: Any, graph_exec: Any) -> None:
        self.graph, self.exec = graph, graph_exec

    @classmethod
    def capture(cls, stream: Stream, work) -> "CudaGraph":
        """Capture ``work()`` (which enqueues on ``stream``) in global capture mode and instantiate it.

        A capture that fails (``work`` raises, or ``cudaStreamEndCapture`` reports an invalidated
        capture) is ended, its graph dropped and the error it left cleared with ``cudaGetLastError``
        before raising, as trtexec's ``endCaptureOnError`` does (``sampleDevice.h``,
        ``sampleInference.cpp``): the stream and the next CUDA call stay usable."""
        rt = cudart()
        check(rt.cudaStreamBeginCapture(stream.handle, rt.cudaStreamCaptureMode.cudaStreamCaptureModeGlobal),
              "cudaStreamBeginCapture")
        try:
            work()
        except BaseException:
            _abandon_capture(stream)
            raise
        result = rt.cudaStreamEndCapture(stream.handle)
        if _code(result[0]) != 0:
            if len(result) > 1 and result[1] is not None:
                rt.cudaGraphDestroy(result[1])
            rt.cudaGetLastError()
            raise CudaError(f"cudaStreamEndCapture failed: {error_string(result[0])}")
        graph = result[1]
        try:
            graph_exec = check(rt.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")
        except BaseException:
            rt.cudaGraphDestroy(graph)
            raise
        return cls(graph, graph_exec)

    def launch(self, stream: Stream) -> None:
        check(cudart().cudaGraphLaunch(self.exec, stream.handle), "cudaGraphLaunch")

    def destroy(self) -> None:
        rt = cudart()
        if self.exec is not None:
            graph_exec, self.exec = self.exec, None
            check(rt.cudaGraphExecDestroy(graph_exec), "cudaGraphExecDestroy")
        if self.graph is not None:
            graph, self.graph = self.graph, None
            check(rt.cudaGraphDestroy(graph), "cudaGraphDestroy")


def _abandon_capture(stream: Stream) -> None:
    """End a failed capture and drop its (invalid) graph, so that the stream is usable again."""
    rt = cudart()
    result = rt.cudaStreamEndCapture(stream.handle)
    if _code(result[0]) == 0 and len(result) > 1 and result[1] is not None:
        rt.cudaGraphDestroy(result[1])
    rt.cudaGetLastError()
