"""Inference backends behind one small interface.

A backend runs a deployed artifact on a batch of preprocessed images (N, 3, h, w) float32 and
returns the outputs by *kind* (``seg_prob`` or ``seg_logits``, and ``exist_prob`` for a lane model;
a marking model has no ``exist_prob``), as named in the artifact's sidecar. :func:`load_backend` picks the implementation from the artifact's format:

========================  ==========================================  ======================
artifact (sidecar format)  backends                                    devices
========================  ==========================================  ======================
``onnx``                   ``onnxruntime`` (CPU, CUDA, TensorRT EP)    cpu, cuda, tensorrt
``tensorrt`` (``.engine``)  ``tensorrt`` (TRT 10/11 + cuda-python)      cuda
``torch.export`` (``.pt2``) ``torch`` (imports torch only when chosen)  cpu, cuda
========================  ==========================================  ======================

Every backend has ``name``, ``device`` (what it runs on: cpu/cuda/tensorrt), ``device_name``
(CPU model or GPU name, for reports), ``settings`` (what makes two timings comparable: the provider
that really runs, precision, TF32, cuDNN autotuning, ...), ``sidecar``, ``path``, and ``infer``. Backends that can time
the device (CUDA events) put ``{"h2d_ms", "compute_ms", "d2h_ms"}`` of the last call in
``last_device_times``; others leave it empty.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from runtime.resources import clamp_to_cores
from runtime.artifacts import read_sidecar
from runtime.backends.base import Backend
from runtime.decode import softmax
from runtime.errors import DataError

BACKENDS = ("auto", "onnxruntime", "tensorrt", "torch")
DEVICES = ("auto", "cpu", "cuda", "tensorrt")
FORMAT_BACKEND = {"onnx": "onnxruntime", "tensorrt": "tensorrt", "torch.export": "torch"}


def probabilities(outputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
    """(seg_prob (N, C, h, w), exist_prob (N, L) or None for a model without an existence head, a
    marking model) from a backend's outputs, softmax applied if needed."""
    seg = outputs["seg_prob"] if "seg_prob" in outputs else softmax(outputs["seg_logits"].astype(np.float32), axis=1)
    return seg, outputs.get("exist_prob")


def require_lanes(backend: Backend, command: str) -> None:
    """:class:`DataError` naming the model when its class table has no lanes to decode (a marking model)."""
    table = backend.sidecar.table
    if not table.existence:
        raise DataError(backend.path, f"a {table.task} model ({table.name!r} classes, class maps without lanes): "
                                      f"{command} decodes lanes; see the marking model's own commands")


def auto_device(fmt: str) -> str:
    """The device ``auto`` picks for a format: TensorRT engines need CUDA; ONNX models ``auto``
    (ONNX Runtime's backend runs them on CUDA where a real session starts there, else on the CPU:
    a listed provider is not a working one); ``.pt2`` programs the CPU."""
    return {"tensorrt": "cuda", "onnx": "auto"}.get(fmt, "cpu")


def add_model_arguments(parser: Any) -> None:
    """``--model`` (a deployed lane model with its sidecar), ``--backend`` and ``--device``, as the
    prediction writers take them."""
    parser.add_argument("--model", required=True, help="a deployed lane model (.onnx, .engine, .pt2) with its sidecar")
    parser.add_argument("--backend", default="auto", choices=BACKENDS)
    parser.add_argument("--device", default="auto", choices=DEVICES)


def load_backend(model: str | os.PathLike[str], backend: str = "auto", device: str = "auto", threads: int | None = None,
                 **options) -> Backend:
    """A backend for ``model``; its sidecar decides the format.

    ``backend``: auto (the format's native backend) | onnxruntime | tensorrt | torch. ``device``:
    auto | cpu | cuda (| tensorrt: ONNX Runtime's TensorRT execution provider). ``threads``: CPU
    intra-op threads. ``options`` go to the backend (``cuda_graph`` for tensorrt; ``fp16``, ``tf32``, ``cudnn_benchmark`` for torch;
    ``trt_cache`` for onnxruntime). The backend's ``device`` says where it runs (an ONNX model on
    ``auto`` runs on the CPU where ONNX Runtime's CUDA provider is listed but cannot start).
    """
    path = Path(model)
    if not path.is_file():
        raise DataError(path, "model file not found")
    if backend not in BACKENDS:
        raise DataError(path, f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    sidecar = read_sidecar(path)
    native = FORMAT_BACKEND[sidecar.format]
    chosen = native if backend == "auto" else backend
    if chosen != native:
        raise DataError(path, f"a {sidecar.format} artifact runs on the '{native}' backend, not '{chosen}'")
    device = auto_device(sidecar.format) if device == "auto" else device
    if threads is not None:  # a hint: clamped to the usable cores, said in one line
        threads = clamp_to_cores(threads, "threads")
    if chosen == "onnxruntime":
        from runtime.backends.onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(path, sidecar, device=device, threads=threads, **options)
    if chosen == "tensorrt":
        from runtime.backends.tensorrt_backend import TensorRTBackend

        return TensorRTBackend(path, sidecar, device=device, **options)
    from runtime.backends.torch_backend import TorchBackend

    return TorchBackend(path, sidecar, device=device, threads=threads, **options)
