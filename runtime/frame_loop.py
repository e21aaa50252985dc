"""The frame loop of :mod:`runtime.infer_video`: frames from a reader through a
:class:`runtime.predictor.FramePredictor` to a writer, timed per frame, stoppable by a signal.

Per processed frame a record (ms): ``decode``, the predictor's ``preprocess`` / ``infer_host`` /
(``infer_device``) / ``postprocess`` / ``total``, and ``wall`` (time between the ends of consecutive
iterations: the loop's real period, I/O waits included); the first ``warmup`` frames are processed
and written but not recorded. SIGINT/SIGTERM end the loop after the frame in progress.
"""
from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from runtime.affinity import restored_affinity
from runtime.decode import DecodedLane
from runtime.draw import hud_lines
from runtime.predictor import FramePredictor
from runtime.video_io import FrameReader, FrameWriter


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM set ``stop`` (the loop ends after the frame in progress); a second one raises
    KeyboardInterrupt. Handlers are restored on exit (no-op outside the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        _restore(old)


def _restore(old: dict) -> None:
    for sig, previous in old.items():
        signal.signal(sig, signal.SIG_DFL if previous is None else previous)


@contextmanager
def signals_ignored() -> Iterator[None]:
    """Finish writing (video, report) without being interrupted again."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        _restore(old)


@dataclass
class LoopResult:
    records: list[dict[str, float]] = field(default_factory=list)
    lanes: list[list[DecodedLane]] = field(default_factory=list)  # per processed frame, source pixels
    processed: int = 0
    interrupted: bool = False
    trial: dict[str, Any] | None = None  # the thread trial's outcome (runtime.thread_trial), when there was one
    affinity: dict[str, Any] | None = None  # cores of the model and I/O threads (runtime.affinity), when pinned


def run_loop(pipeline: FramePredictor, reader: FrameReader, writer: FrameWriter | None, warmup: int,
             stop: threading.Event, on_frame: Callable[[], None] | None = None) -> LoopResult:
    """Process every frame the reader yields until it ends or ``stop`` is set (or KeyboardInterrupt)."""
    backend, result = pipeline.backend, LoopResult()
    tag = (backend.name, backend.device, backend.sidecar.precision)
    fps = 0.0
    last = time.perf_counter()
    with restored_affinity():  # the model thread is pinned by its pipeline while the loop runs
        try:
            for frame in reader:
                if stop.is_set():
                    break
                lanes, in_frame, times = pipeline(frame.image, frame.prepared, frame.prepare_ms)
                if writer is not None:
                    writer.write((frame.image, in_frame, hud_lines(times["infer_host"], times["total"], fps, *tag)))
                end = time.perf_counter()
                wall, last = (end - last) * 1000.0, end
                fps = 1000.0 / wall if fps == 0.0 else 0.9 * fps + 0.1 * 1000.0 / max(wall, 1e-6)
                result.processed += 1
                result.lanes.append(lanes)
                if result.processed > warmup:
                    result.records.append({"frame": frame.index, "decode": frame.decode_ms, **times, "wall": wall})
                if on_frame is not None:
                    on_frame()
                if stop.is_set():
                    break
        except KeyboardInterrupt:
            stop.set()
    result.interrupted = stop.is_set()
    return result
