"""PyTorch backend: runs the ``torch.export`` program (``.pt2``) written by ``export.to_onnx``.

For GPUs without TensorRT (and for a like-for-like teacher/student comparison on CUDA). It is the
only part of ``runtime`` that imports torch, and only when this backend is chosen. On CUDA the
host copies and the compute are timed with CUDA events (``last_device_times``); ``fp16=True``
runs the program in half precision on CUDA (inputs and outputs stay float32).

The program is exported on the CPU, and an exported graph keeps the device and the dtype it was
traced with in its nodes' arguments (``aten.to.device(x, cpu, float32)``,
``_assert_tensor_metadata(device=cpu, dtype=float32)``: PyTorch issue #121761), which
``module.to(...)`` does not touch. :func:`prepare_module` moves it with
``torch.export.passes.move_to_device_pass`` (PyTorch's documented way) and casts it to half
precision node by node. On CUDA, TF32 is off (FP32 means FP32, as in this project's FP32 TensorRT
engines) and cuDNN autotuning on, both set explicitly (:func:`cuda_settings`) and reported in
``settings``. The CUDA path has run nowhere: no GPU was lent to this project.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from runtime.artifacts import Sidecar
from runtime.backends.base import cpu_name, run_checked
from runtime.errors import DataError

log = logging.getLogger("runtime.backends.torch")


def prepare_module(program: Any, device: str, half: bool = False) -> Any:
    """The runnable module of an ``ExportedProgram`` on ``device`` (in float16 when ``half``).

    Device: ``torch.export.passes.move_to_device_pass`` (PyTorch >= 2.5; it rewrites the state,
    the constants and every node's burnt-in device, PyTorch PR #133660 for issue #121761). Half:
    :func:`cast_half` on the unlifted module."""
    import torch

    try:
        from torch.export.passes import move_to_device_pass
    except ImportError:  # torch < 2.5: only module.to(), which leaves the nodes' devices as exported
        log.warning("torch %s has no torch.export.passes.move_to_device_pass: a program exported on another device may fail",
                    torch.__version__)
        module = program.module().to(device)
    else:
        module = move_to_device_pass(program, device).module()
    return cast_half(module) if half else module


def cast_half(module: Any) -> Any:
    """Every float32 of an unlifted exported module as float16: parameters and buffers
    (``nn.Module.to``), tensor attributes read by ``get_attr`` nodes, and the float32 dtypes in
    every node's arguments (``aten.to.device(..., float32)``, ``aten.to.dtype``,
    ``_assert_tensor_metadata(dtype=...)``) and value metadata, then ``recompile`` (torch.fx).

    Unlike ``.half()`` on the eager model, explicit float32 casts in the graph (the models' softmax
    computes in float32) become float16 too: an exported graph does not say which casts follow the
    activations' dtype and which are meant to stay float32, so the whole program runs in half
    precision, as the FP16 ONNX/TensorRT artifacts do."""
    import torch
    import torch.utils._pytree as pytree

    f32, f16 = torch.float32, torch.float16
    swap = lambda v: f16 if v is f32 else v  # noqa: E731
    half_tensor = lambda v: v.to(f16) if isinstance(v, torch.Tensor) and v.dtype == f32 else v  # noqa: E731
    module.to(dtype=f16)
    for graph_module in module.modules():
        if not isinstance(graph_module, torch.fx.GraphModule):
            continue
        for node in graph_module.graph.nodes:
            node.args = pytree.tree_map(swap, node.args)
            node.kwargs = pytree.tree_map(swap, node.kwargs)
            if node.op == "get_attr":
                *path, name = node.target.split(".")
                owner = graph_module
                for part in path:
                    owner = getattr(owner, part)
                value = getattr(owner, name)
                if isinstance(value, torch.Tensor) and value.dtype == f32 and not isinstance(value, torch.nn.Parameter):
                    setattr(owner, name, value.to(f16))
            if "val" in node.meta:
                node.meta["val"] = pytree.tree_map(half_tensor, node.meta["val"])
        graph_module.recompile()
    return module


def cuda_settings(torch: Any, tf32: bool = False, cudnn_benchmark: bool = True) -> dict[str, bool]:
    """Set TF32 (matmul and cuDNN) and cuDNN autotuning explicitly; returns what is now in force.

    PyTorch >= 2.9's API (``torch.backends.cuda.matmul.fp32_precision``,
    ``torch.backends.cudnn.conv/rnn.fp32_precision``: "ieee" or "tf32", PyTorch notes "TensorFloat-32
    on Ampere and later devices"), else the legacy ``allow_tf32`` flags. PyTorch's defaults differ
    (convolutions may use TF32, matmuls not), and TensorRT FP32 engines here clear TF32
    (``export.to_tensorrt``), so an FP32 comparison sets it off everywhere. ``cudnn.benchmark``
    autotunes convolutions for the fixed input shape, as TensorRT times tactics and ONNX
    Runtime's CUDA provider searches cuDNN algorithms (``cudnn_conv_algo_search`` EXHAUSTIVE by
    default). Process-wide settings: the timing commands run one configuration per process."""
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    if hasattr(matmul, "fp32_precision") and hasattr(getattr(cudnn, "conv", None), "fp32_precision"):
        mode = "tf32" if tf32 else "ieee"
        matmul.fp32_precision = mode
        cudnn.conv.fp32_precision = mode
        cudnn.rnn.fp32_precision = mode  # conv and rnn alike, so the legacy allow_tf32 reads one value
        now = "tf32" in (matmul.fp32_precision, cudnn.conv.fp32_precision)
    else:
        matmul.allow_tf32 = cudnn.allow_tf32 = bool(tf32)
        now = bool(matmul.allow_tf32 or cudnn.allow_tf32)
    cudnn.benchmark = bool(cudnn_benchmark)
    return {"tf32": now, "cudnn_benchmark": bool(cudnn.benchmark)}


class TorchBackend:
    name = "torch"

    def __init__(self, path: str | os.PathLike[str], sidecar: Sidecar, device: str = "cpu", threads: int | None = None,
                 fp16: bool = False, tf32: bool = False, cudnn_benchmark: bool = True) -> None:
        try:
            import torch
        except ImportError:
            raise DataError(path, "the torch backend needs PyTorch (pip install torch); use an ONNX model with onnxruntime instead") from None
        if device not in ("cpu", "cuda"):
            raise DataError(path, f"unknown device {device!r} for the torch backend; choose cpu or cuda")
        if device == "cuda" and not torch.cuda.is_available():
            raise DataError(path, "device cuda asked for, but this PyTorch sees no CUDA GPU")
        if fp16 and device != "cuda":
            raise DataError(path, "fp16 with the torch backend needs device cuda")
        if threads:
            torch.set_num_threads(int(threads))
        try:
            program = torch.export.load(str(path))
        except Exception as err:  # torch raises several types for a bad archive
            raise DataError(path, f"not a loadable torch.export program ({str(err).splitlines()[0][:200]})") from None
        self.torch = torch
        self.device = device
        self.dtype = torch.float16 if fp16 else torch.float32
        self.settings: dict[str, Any] = {"provider": f"torch ({device})", "precision": "fp16" if fp16 else sidecar.precision,
                                         "tf32": None, "cudnn_benchmark": None}
        if device == "cuda":
            self.settings.update(cuda_settings(torch, tf32=tf32, cudnn_benchmark=cudnn_benchmark))
        self.module = prepare_module(program, device, half=fp16)
        self.sidecar = sidecar
        self.path = Path(path)
        self.device_name = torch.cuda.get_device_name(0) if device == "cuda" else cpu_name()
        self.kinds = [o["kind"] for o in sidecar.outputs]
        self.last_device_times: dict[str, float] = {}
        self.events = [torch.cuda.Event(enable_timing=True) for _ in range(4)] if device == "cuda" else []
        self.staging = None  # pinned host copy of the input (CUDA), reallocated only when the shape changes

    def _run(self, batch: np.ndarray) -> list[np.ndarray]:
        torch = self.torch
        if self.device == "cpu":
            with torch.inference_mode():
                outputs = self.module(torch.from_numpy(batch))
            return [o.float().numpy() for o in outputs]
        events = self.events
        if self.staging is None or self.staging.shape != batch.shape:
            self.staging = torch.empty(batch.shape, dtype=torch.float32).pin_memory()  # page-locked, reused
        self.staging.copy_(torch.from_numpy(batch))
        with torch.inference_mode():
            events[0].record()
            x = self.staging.to(self.device, non_blocking=True).to(self.dtype)
            events[1].record()
            outputs = self.module(x)
            events[2].record()
            host = [o.float().to("cpu", non_blocking=True) for o in outputs]
            events[3].record()
            events[3].synchronize()
        self.last_device_times = {"h2d_ms": events[0].elapsed_time(events[1]), "compute_ms": events[1].elapsed_time(events[2]),
                                  "d2h_ms": events[2].elapsed_time(events[3])}
        return [h.numpy() for h in host]

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """(N, 3, h, w) float32 -> {kind: float32 array}; a fixed-batch program runs image by image."""
        return run_checked(self.path, self.sidecar, batch, self._run, self.kinds)
