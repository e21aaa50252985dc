"""Checkpoints: ``torch.save`` dicts written atomically, loaded with ``weights_only=True``.

A checkpoint holds ``model`` (state dict), ``optimizer``, ``scheduler``, ``scaler``, ``rng``
(torch, numpy and python states as tensors / plain lists), ``iteration`` (completed steps),
``best_score`` (the best validation F1 for lane tables, mIoU for marking tables; lane checkpoints
also as ``best_f1``, the only key before class tables), ``config`` (the resolved config) and
``metrics`` (the last validation).
"""
from __future__ import annotations

import io
import os
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from runtime.atomic import atomic_write_bytes
from runtime.errors import DataError


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "python": list(random.getstate()[1]) + [random.getstate()[0], random.getstate()[2]],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    p = state["python"]
    random.setstate((p[-2], tuple(p[:-2]), p[-1]))


def save_checkpoint(path: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Serialise in memory, then write atomically: a crash never leaves a half-written file."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``); :class:`DataError` if missing or corrupt."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "checkpoint not found")
    if not zipfile.is_zipfile(path):
        size = path.stat().st_size
        raise DataError(path, f"not a complete checkpoint: truncated (e.g. a copy or save cut short) or not a torch file "
                              f"({size} bytes, no zip end record)")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for truncated/corrupt/unsafe files
        raise DataError(path, f"cannot load checkpoint ({err.__class__.__name__}: {str(err).splitlines()[0][:160]})") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise DataError(path, "not a training checkpoint (no 'model' entry)")
    return ckpt
