"""Inference backends behind one small interface.

A backend runs a deployed artifact on a batch of preprocessed images (N, 3, h, w) float32 and
returns the outputs by *kind* (``seg_prob`` or ``seg_logits``, ``exist_prob``), as named in the
artifact's sidecar. :func:`load_backend` picks the implementation from the artifact's format.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np

from runtime.artifacts import Sidecar, read_sidecar
from runtime.decode import softmax
from runtime.errors import DataError


class Backend(Protocol):
    name: str
    device: str
    sidecar: Sidecar

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """(N, 3, h, w) float32 -> {kind: array}."""
        ...


def probabilities(outputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(seg_prob (N, C, h, w), exist_prob (N, L)) from a backend's outputs, softmax applied if needed."""
    seg = outputs["seg_prob"] if "seg_prob" in outputs else softmax(outputs["seg_logits"].astype(np.float32), axis=1)
    return seg, outputs["exist_prob"]


def load_backend(model: str | os.PathLike[str], backend: str = "auto", device: str = "cpu", threads: int | None = None) -> Backend:
    """A backend for ``model`` (its sidecar decides the format). ``backend``: auto | onnxruntime."""
    path = Path(model)
    if not path.is_file():
        raise DataError(path, "model file not found")
    sidecar = read_sidecar(path)
    if sidecar.format == "onnx" and backend in ("auto", "onnxruntime"):
        from runtime.backends.onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(path, sidecar, device=device, threads=threads)
    raise DataError(path, f"no '{backend}' backend for {sidecar.format} artifacts in this build")
