"""What every backend shares: the :class:`Backend` interface, running a batch checked against the
sidecar (:func:`run_checked`), the sidecar's shapes checked against the model's own graph
(:func:`check_graph_shapes`) and the CPU's name for reports. The engine modules import this, and
:mod:`runtime.backends` imports them (lazily), never the other way round.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from runtime.artifacts import Sidecar, sidecar_path
from runtime.errors import DataError


class Backend(Protocol):
    name: str
    device: str
    device_name: str
    settings: dict[str, Any]
    sidecar: Sidecar
    path: Path
    last_device_times: dict[str, float]

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """(N, 3, h, w) float32 -> {kind: array}."""
        ...


def run_checked(path: Path, sidecar: Sidecar, batch: np.ndarray, run: Callable[[np.ndarray], list[np.ndarray]],
                kinds: list[str]) -> dict[str, np.ndarray]:
    """Check ``batch`` against the sidecar's input (N, 3, h, w), call ``run`` (image by image for a
    fixed-batch model given another batch size) and name its outputs by kind."""
    batch = np.ascontiguousarray(batch, dtype=np.float32)
    expected = tuple(sidecar.input["shape"][1:])
    if batch.ndim != 4 or batch.shape[1:] != expected:
        # the sidecar's input.shape was checked against the model's own graph when the backend loaded
        raise DataError(path, f"input of shape {batch.shape} does not match the model's (N, {', '.join(map(str, expected))})")
    fixed = sidecar.input["shape"][0] if isinstance(sidecar.input["shape"][0], int) else None
    if fixed and batch.shape[0] != fixed:
        parts = [run(batch[i : i + 1]) for i in range(batch.shape[0])]
        values = [np.concatenate([p[k] for p in parts]) for k in range(len(kinds))]
    else:
        values = run(batch)
    return dict(zip(kinds, values))


def _static(dims) -> list[int | None]:
    """Dimensions as ints, None for a symbolic or dynamic one (a name, None, -1, 0)."""
    return [int(d) if isinstance(d, (int, np.integer)) and int(d) > 0 else None for d in dims]


def check_graph_shapes(path: Path, sidecar: Sidecar, inputs: list, outputs: dict[str, list]) -> None:
    """The sidecar's ``input.shape`` and output shapes must be the model's own (``inputs``: the
    graph's input shape; ``outputs``: {name: shape}); fixed dimensions are compared, symbolic ones
    (a dynamic batch) match anything. :class:`DataError` naming the sidecar otherwise."""
    where = sidecar_path(path)
    problems = []
    declared = [sidecar.input["shape"]] + [o.get("shape") for o in sidecar.outputs]
    actual = [inputs] + [outputs.get(o["name"]) for o in sidecar.outputs]
    names = ["input.shape"] + [f"output {o['name']!r} shape" for o in sidecar.outputs]
    for name, said, real in zip(names, declared, actual):
        if said is None or real is None:
            continue
        said_dims, real_dims = _static(said), _static(real)
        if len(said_dims) != len(real_dims) or any(a is not None and b is not None and a != b for a, b in zip(said_dims, real_dims)):
            problems.append(f"{name} {list(said)} but {path.name} has {['?' if d is None else d for d in real_dims]}")
    if problems:
        raise DataError(where, "; ".join(problems) + ": this sidecar does not describe this model (restore the one written "
                               "with it, or re-export)")


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo where it exists) and the logical core count."""
    import platform

    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name} ({os.cpu_count()} logical cores)"
