"""Worker processes that are safe to start after OpenCV (or torch) has started threads, and
reading ahead in a background thread (:func:`read_ahead`).

Forking a process whose OpenCV thread pool is busy or configured can deadlock the child (seen
here: a child blocked in ``cv2.setNumThreads``). Workers therefore come from a fork server: a
fresh interpreter that forks clean children.
"""
from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.context import BaseContext
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def worker_context() -> BaseContext:
    """The multiprocessing context for pools and data-loader workers."""
    return multiprocessing.get_context("forkserver")


def read_ahead(chunks: Sequence[T], load: Callable[[T], R]) -> Iterator[R]:
    """``load(chunk)`` of every chunk in order, the next chunk loaded in a background thread while
    the caller works on this one (image decoding overlaps inference). ``load``'s errors are
    raised where its result is taken."""
    with ThreadPoolExecutor(max_workers=1) as reader:
        pending = reader.submit(load, chunks[0]) if chunks else None
        for k in range(len(chunks)):
            result = pending.result()  # type: ignore[union-attr]
            pending = reader.submit(load, chunks[k + 1]) if k + 1 < len(chunks) else None
            yield result
