"""Counts that size a resource, checked against the machine before the work: one rule for every command.

- **Hints** (threads, worker processes): more than the usable CPU cores is clamped to them and
  said in one line (``warning: 64 workers asked for, 2 usable CPU cores here: using 2``):
  :func:`clamp_to_cores`, and :func:`worker_count` as an ``argparse`` type.
- **Data held in memory** (a batch, calibration images, a contact sheet's frames): when the
  count's size, a lower bound (the arrays themselves, not what a library makes of them), is more
  than :data:`MEMORY_SHARE` of the memory available now, the command refuses in one line naming
  the option, the size and the machine's: :func:`check_memory`.

Frames buffered by the video loop are not a user's count (queues of 8 frames and a one-slot
mailbox, :mod:`runtime.video_io`), so nothing there needs checking.
"""
from __future__ import annotations

import sys
from pathlib import Path

from runtime.affinity import usable_cores
from runtime.cli import positive_int
from runtime.errors import DataError

MEMORY_SHARE = 0.8  # of MemAvailable: what one command may plan to hold


def clamp_to_cores(requested: int, what: str) -> int:
    """``requested`` threads or processes, at most the usable cores (a warning line when clamped)."""
    cores = usable_cores()
    if requested > cores:
        print(f"warning: {requested} {what} asked for, {cores} usable CPU cores here: using {cores}", file=sys.stderr)
        return cores
    return requested


def worker_count(text: str) -> int:
    """argparse type: a number of worker processes >= 1 (:func:`runtime.cli.positive_int`), clamped to the usable cores."""
    return clamp_to_cores(positive_int(text), "workers")


def available_memory() -> int | None:
    """Bytes of memory available now (Linux ``MemAvailable``); None where it cannot be read."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def gib(nbytes: float) -> str:
    return f"{nbytes / 2**30:.1f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.1f} MiB"


def check_memory(option: str, count: int, item_bytes: int, item: str, where: str | Path) -> None:
    """:class:`DataError` (on ``where``) when ``count`` items of ``item_bytes`` each would not fit in
    :data:`MEMORY_SHARE` of the available memory; ``item`` describes one item for the message."""
    available = available_memory()
    need = count * item_bytes
    if available is None or need <= MEMORY_SHARE * available:
        return
    most = max(0, int(MEMORY_SHARE * available // max(1, item_bytes)))
    raise DataError(where, f"{option} {count}: {count} {item} of {gib(item_bytes)} hold at least {gib(need)}, "
                           f"{gib(available)} of memory available here: at most {most}")


def array_bytes(*shape: int, itemsize: int = 4) -> int:
    """Bytes of an array of ``shape`` (float32 unless ``itemsize`` says otherwise)."""
    n = itemsize
    for dim in shape:
        n *= int(dim)
    return n


def check_batch(option: str, batch: int, channels_in: int, classes: int, height: int, width: int, where: str | Path) -> None:
    """A batch of ``batch`` images at a network's input (``channels_in`` x h x w float32) and its
    class scores (``classes`` x h x w float32) must fit: :func:`check_memory`."""
    check_memory(option, batch, array_bytes(channels_in + classes, height, width), f"images at {width}x{height} (input and scores)",
                 where)
