"""PyTorch backend: runs the ``torch.export`` program (``.pt2``) written by ``export.to_onnx``.

For GPUs without TensorRT (and for a like-for-like teacher/student comparison on CUDA). It is the
only part of ``runtime`` that imports torch, and only when this backend is chosen. On CUDA the
host copies and the compute are timed with CUDA events (``last_device_times``); ``fp16=True``
runs the program in half precision on CUDA (inputs and outputs stay float32).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from runtime.artifacts import Sidecar
from runtime.backends.base import cpu_name, run_checked
from runtime.errors import DataError


class TorchBackend:
    name = "torch"

    def __init__(self, path: str | os.PathLike[str], sidecar: Sidecar, device: str = "cpu", threads: int | None = None,
                 fp16: bool = False) -> None:
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
        self.module = program.module().to(device=device, dtype=self.dtype)
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
