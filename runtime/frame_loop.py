"""The frame loop of :mod:`runtime.infer_video`: frames from a reader through a
:class:`runtime.predictor.FramePredictor` to a writer, timed per frame, stoppable by a signal.

Per processed frame a record (ms): ``decode``, the predictor's ``preprocess`` / ``infer_host`` /
(``infer_device``) / ``postprocess`` / ``total``, and ``wall`` (time between the ends of consecutive
iterations: the loop's real period, I/O waits included); from a live source (or a paced file) also
``capture_to_lanes``, ``arrival`` and ``pts`` (:func:`live_fields`). The first ``warmup`` frames are
processed and written but not recorded. SIGINT/SIGTERM end the loop after the frame in progress.
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
from runtime.video_io import Frame, FrameReader, FrameWriter


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
    indices: list[int] = field(default_factory=list)  # the source's index of each processed frame
    processed: int = 0
    interrupted: bool = False
    stopped_reason: str | None = None  # the loop's own stop: "max-frames" or "duration" (None: the source's)
    trial: dict[str, Any] | None = None  # the thread trial's outcome (runtime.thread_trial), when there was one
    affinity: dict[str, Any] | None = None  # cores of the model and I/O threads (runtime.affinity), when pinned


@dataclass(frozen=True)
class LoopLimits:
    """When the loop stops on its own: after ``frames`` processed frames, after ``seconds`` of
    looping, or when no frame has arrived for ``stall_s`` seconds (None: no such limit)."""

    frames: int | None = None
    seconds: float | None = None
    stall_s: float | None = None


def live_fields(frame: Frame, done: float, first_arrival: float) -> dict[str, float]:
    """A live record's timing from capture (ms): ``capture_to_lanes`` (capture to the lanes in
    frame pixels), ``arrival`` (since the first frame's) and ``pts`` (the source's timestamp)."""
    fields = {"capture_to_lanes": (done - frame.capture_s) * 1000.0, "arrival": (frame.arrival_s - first_arrival) * 1000.0}
    if frame.pts_ms is not None:
        fields["pts"] = frame.pts_ms
    return fields


def run_loop(pipeline: FramePredictor, reader: FrameReader, writer: FrameWriter | None, warmup: int,
             stop: threading.Event, on_frame: Callable[[], None] | None = None, limits: LoopLimits = LoopLimits()
             ) -> LoopResult:
    """Process every frame the reader hands over until it ends, ``stop`` is set (or
    KeyboardInterrupt), or a limit is reached. On a live reader (a mailbox: :mod:`runtime.video_io`)
    each record also times the frame from its capture (:func:`live_fields`), and the HUD counts the
    frames dropped."""
    backend, result = pipeline.backend, LoopResult()
    tag = (backend.name, backend.device, backend.sidecar.precision)
    fps = 0.0
    began = last = time.perf_counter()
    with restored_affinity():  # the model thread is pinned by its pipeline while the loop runs
        try:
            for frame in reader.frames(stop, limits.stall_s):
                if stop.is_set():
                    break
                lanes, in_frame, times = pipeline(frame.image, frame.prepared, frame.prepare_ms)
                done = time.perf_counter()
                if writer is not None:
                    hud = hud_lines(times["infer_host"], times["total"], fps, *tag)
                    if reader.latest:
                        hud.append(f"dropped {frame.index - (result.indices or [frame.index])[0] - result.processed}")
                    writer.write((frame.image, in_frame, hud))
                end = time.perf_counter()
                wall, last = (end - last) * 1000.0, end
                fps = 1000.0 / wall if fps == 0.0 else 0.9 * fps + 0.1 * 1000.0 / max(wall, 1e-6)
                result.processed += 1
                result.lanes.append(lanes)
                result.indices.append(frame.index)
                if result.processed > warmup:
                    record = {"frame": frame.index, "decode": frame.decode_ms, **times, "wall": wall}
                    if reader.latest:
                        record.update(live_fields(frame, done, reader.first_arrival_s or frame.arrival_s))
                    result.records.append(record)
                if on_frame is not None:
                    on_frame()
                if limits.frames is not None and result.processed >= limits.frames:
                    result.stopped_reason = "max-frames"
                elif limits.seconds is not None and end - began >= limits.seconds:
                    result.stopped_reason = "duration"
                if stop.is_set() or result.stopped_reason:
                    break
        except KeyboardInterrupt:
            stop.set()
    result.interrupted = stop.is_set()
    return result
