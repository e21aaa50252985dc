"""A backend made deliberately slow: every call takes at least a given time (the rest is slept).

``infer_video --simulate-infer-ms MS`` runs the real model through it to see the real-time policy
as a slower target would run it (a Jetson's inference time on a desktop, say): frames dropped,
latency from capture bounded or growing. The outputs are the real model's; only the time changes.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from runtime.artifacts import Sidecar
from runtime.backends.base import Backend


class DelayedBackend:
    """``inner`` whose :meth:`infer` lasts at least ``delay_ms`` milliseconds of wall time."""

    def __init__(self, inner: Backend, delay_ms: float) -> None:
        self.inner = inner
        self.delay_ms = float(delay_ms)
        self.name: str = inner.name
        self.device: str = inner.device
        self.device_name: str = inner.device_name
        self.settings: dict[str, Any] = {**(getattr(inner, "settings", {}) or {}), "simulated_infer_ms": self.delay_ms}
        self.sidecar: Sidecar = inner.sidecar
        self.path: Path = inner.path

    @property
    def last_device_times(self) -> dict[str, float]:
        return self.inner.last_device_times

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        start = time.perf_counter()
        outputs = self.inner.infer(batch)
        rest = self.delay_ms / 1000.0 - (time.perf_counter() - start)
        if rest > 0:
            time.sleep(rest)
        return outputs
