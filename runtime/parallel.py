"""Worker processes that are safe to start after OpenCV (or torch) has started threads.

Forking a process whose OpenCV thread pool is busy or configured can deadlock the child (seen
here: a child blocked in ``cv2.setNumThreads``). Workers therefore come from a fork server: a
fresh interpreter that forks clean children.
"""
from __future__ import annotations

import multiprocessing
from multiprocessing.context import BaseContext


def worker_context() -> BaseContext:
    """The multiprocessing context for pools and data-loader workers."""
    return multiprocessing.get_context("forkserver")
