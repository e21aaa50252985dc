"""Threaded video reading and writing (OpenCV), so an inference loop is not waiting on I/O.

:class:`FrameReader` decodes frames in a background thread into a bounded queue and times the
decode of each frame (ms). It opens the video and decodes the first frame on construction, so a
missing file, a file that is not a video (or an MP4 cut off before its index was written) and a
video without frames fail there, with a :class:`runtime.errors.DataError`. When decoding stops
before the frame count the container announces, :attr:`FrameReader.stopped_reason` says
``"corrupt or truncated video at frame N"`` (N frames, 0..N-1, were good).

:class:`FrameWriter` encodes frames ('mp4v') in a background thread from a bounded queue (so a
slow encoder holds the producer back instead of filling memory), optionally rendering each queued
item into a frame first (drawing happens off the producer's thread). It writes to a temporary
name beside the target and, on :meth:`FrameWriter.close` (also on errors and interruptions, via
``with``), drains the queue, releases the encoder (which writes the MP4 index) and renames the
file into place: whatever happened, the target is a playable video of the frames written.
"""
from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from runtime.affinity import pin_current_thread, pin_thread
from runtime.errors import DataError

_END = object()


def quiet_opencv() -> None:
    """Silence FFmpeg's and OpenCV's own log lines (callers report problems themselves).

    Leaves ``OPENCV_FFMPEG_LOGLEVEL`` alone if the user set it."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    cv2.setLogLevel(2)  # errors only


@dataclass(frozen=True)
class Frame:
    """One decoded frame: its index in the video, the (H, W, 3) uint8 BGR image, decode time (ms),
    and what the reader's ``prepare`` made of it in the reader thread (None without one) and its time (ms)."""

    index: int
    image: np.ndarray
    decode_ms: float
    prepared: Any = None
    prepare_ms: float = 0.0


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    width: int
    height: int
    fps: float  # 0.0 when the container does not say
    frame_count: int  # as the container announces it; 0 when unknown


STILL_IMAGE_MAGIC = {b"\xff\xd8\xff": "JPEG", b"\x89PNG": "PNG", b"BM": "BMP", b"GIF8": "GIF", b"II*\x00": "TIFF",
                     b"MM\x00*": "TIFF"}


def still_image_kind(path: str | Path) -> str | None:
    """'JPEG', 'PNG', ... when ``path`` is a still image (by its first bytes, whatever its name), else None."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError:
        return None
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return next((kind for magic, kind in STILL_IMAGE_MAGIC.items() if head.startswith(magic)), None)


def check_video_file(path: Path) -> None:
    """:class:`DataError` if ``path`` is missing, not a file, or a still image (FFmpeg would open a
    JPEG as a one-frame video at an invented frame rate: refused instead)."""
    if not path.exists():
        raise DataError(path, "video file not found")
    if not path.is_file():
        raise DataError(path, "not a file")
    kind = still_image_kind(path)
    if kind:
        raise DataError(path, f"a still {kind} image, not a video: videos only here; for images use python -m runtime.evaluate "
                              "(CULane lists) or python -m runtime.contact_sheet --data-root")


DECODE_THREADS = 1  # FFmpeg's decoder threads; see FrameReader


def _open_capture(path: Path, decode_threads: int = DECODE_THREADS) -> tuple[cv2.VideoCapture, VideoInfo]:
    check_video_file(path)
    params = [cv2.CAP_PROP_N_THREADS, int(decode_threads)] if decode_threads > 0 else []
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, params)
    if not cap.isOpened():
        cap.release()
        raise DataError(path, "cannot open as a video (not a video file, an empty one, or an MP4 cut off before its index was written)")
    info = VideoInfo(
        path=path,
        width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
        height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        fps=float(cap.get(cv2.CAP_PROP_FPS) or 0.0),
        frame_count=max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)),
    )
    return cap, info


class PinnableThread:
    """A reader's or writer's thread and its CPU cores (:mod:`runtime.affinity`; None: not pinned)."""

    cores: Collection[int] | None = None
    _thread: threading.Thread | None = None

    def pin(self, cores: Collection[int] | None) -> None:
        """Move the thread to ``cores``: now if it runs, else when it starts."""
        self.cores = cores
        pin_thread(self._thread, cores)


class FrameReader(PinnableThread):
    """Iterate over a video's frames, decoded ahead in a thread; ``max_frames`` caps the count.

    After iteration: :attr:`frames_read` and :attr:`stopped_reason` (None at the end of the video,
    ``"max-frames"``, or ``"corrupt or truncated video at frame N"``). :attr:`prepare`, set before
    iterating, runs on each frame in the reader thread (e.g. the model's preprocessing, so that it
    overlaps the consumer's work on the previous frame) into :attr:`Frame.prepared`.

    ``decode_threads``: FFmpeg's decoder threads (0: OpenCV's default, one per core). Default 1:
    the reader thread already decodes in parallel with the model, and a decoder spread over every
    core takes them from a CPU model (960x540 H.264, AMD EPYC: 1.72 CPU ms per frame on one thread
    against 1.98 CPU ms over two, the second core's share taken from ONNX Runtime).
    """

    def __init__(self, path: str | os.PathLike[str], max_frames: int | None = None, queue_size: int = 8,
                 decode_threads: int = DECODE_THREADS, cores: Collection[int] | None = None) -> None:
        self.path = Path(path)
        self.cores = cores  # the reading thread's CPU cores (runtime.affinity; None: not pinned)
        self.cap, self.info = _open_capture(self.path, decode_threads)
        self.max_frames = max_frames
        self.frames_read = 0
        self.stopped_reason: str | None = None
        self.error: BaseException | None = None
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, queue_size))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.prepare: Callable[[np.ndarray], Any] | None = None
        first = self._read()
        if first is None:
            self.cap.release()
            raise DataError(self.path, "the video has no frames that can be decoded")
        self._first: Frame | None = first
        self.size = (first.image.shape[1], first.image.shape[0])  # (w, h) of the decoded frames

    @property
    def expected_frames(self) -> int | None:
        """Frames this reader will deliver if the video is intact (None when unknown)."""
        count = self.info.frame_count or None
        if self.max_frames is not None:
            return self.max_frames if count is None else min(count, self.max_frames)
        return count

    def _read(self) -> Frame | None:
        start = time.perf_counter()
        ok, image = self.cap.read()
        ms = (time.perf_counter() - start) * 1000.0
        if not ok or image is None:
            return None
        frame = Frame(self.frames_read, image, ms)
        self.frames_read += 1
        return frame

    def _end_reason(self) -> str | None:
        if self.info.frame_count and self.frames_read < self.info.frame_count:
            return f"corrupt or truncated video at frame {self.frames_read}"
        return None

    def _put(self, item: Any) -> bool:
        """Queue ``item`` (a frame: prepared first) unless asked to stop (then False)."""
        if isinstance(item, Frame) and self.prepare is not None:
            start = time.perf_counter()
            prepared = self.prepare(item.image)
            item = replace(item, prepared=prepared, prepare_ms=(time.perf_counter() - start) * 1000.0)
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            pin_current_thread(self.cores)
            if self._first is not None and not self._put(self._first):
                return
            self._first = None
            while not self._stop.is_set():
                if self.max_frames is not None and self.frames_read >= self.max_frames:
                    more = self.cap.grab()
                    self.stopped_reason = "max-frames" if more else self._end_reason()
                    break
                frame = self._read()
                if frame is None:
                    self.stopped_reason = self._end_reason()
                    break
                if (frame.image.shape[1], frame.image.shape[0]) != self.size:
                    self.frames_read -= 1
                    self.stopped_reason = f"corrupt or truncated video at frame {frame.index} (frame size changed)"
                    break
                if not self._put(frame):
                    return
        except BaseException as err:  # surfaced to the consumer by __iter__
            self.error = err
        finally:
            self._put(_END)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="frame-reader", daemon=True)
            self._thread.start()

    def __iter__(self) -> Iterator[Frame]:
        self.start()
        while True:
            item = self._queue.get()
            if item is _END:
                if self.error is not None:
                    raise self.error
                return
            yield item

    def close(self) -> None:
        """Stop the decoding thread and release the video (safe to call twice)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.cap.release()

    def __enter__(self) -> "FrameReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FrameWriter(PinnableThread):
    """Encode frames to an MP4 ('mp4v') in a thread; ``render(item) -> (H, W, 3) uint8`` turns each
    queued item into a frame (default: the item is the frame). ``size`` is (w, h) in pixels."""

    def __init__(self, path: str | os.PathLike[str], fps: float, size: tuple[int, int],
                 render: Callable[[Any], np.ndarray] | None = None, queue_size: int = 8,
                 cores: Collection[int] | None = None) -> None:
        self.path = Path(path)
        self.cores = cores  # the writing thread's CPU cores (runtime.affinity; None: not pinned)
        if self.path.suffix.lower() != ".mp4":
            raise DataError(self.path, "the output video must be an .mp4 file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.stem}.partial.mp4")
        self.size = (int(size[0]), int(size[1]))
        self.fps = float(fps) if fps and fps > 0 else 30.0
        self.render = render
        self.frames_written = 0
        self.error: BaseException | None = None
        self._writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, self.size)
        if not self._writer.isOpened():
            self.tmp.unlink(missing_ok=True)
            raise DataError(self.path, "OpenCV cannot write an MP4 video here (no mp4v encoder, or the folder is not writable)")
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, queue_size))
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="frame-writer", daemon=True)
        self._thread.start()

    def _encode(self, item: Any) -> None:
        frame = self.render(item) if self.render is not None else item
        if (frame.shape[1], frame.shape[0]) != self.size or frame.dtype != np.uint8:
            raise ValueError(f"frame is {frame.shape[1]}x{frame.shape[0]} {frame.dtype}, the video is {self.size[0]}x{self.size[1]} uint8")
        self._writer.write(np.ascontiguousarray(frame))
        self.frames_written += 1

    def _run(self) -> None:
        try:
            pin_current_thread(self.cores)
        except OSError:  # e.g. the cpuset changed: encode unpinned rather than not at all
            pass
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if self.error is None:
                try:
                    self._encode(item)
                except BaseException as err:  # keep draining so the producer never blocks
                    self.error = err

    def write(self, item: Any) -> None:
        """Queue one item (blocks while the queue is full); raises if encoding has failed."""
        if self.error is not None:
            raise self.error
        if self._closed:
            raise RuntimeError("writer is closed")
        self._queue.put(item)

    def close(self) -> None:
        """Encode what is queued, release the encoder, move the file into place (safe to call twice)."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_END)
        self._thread.join()
        self._writer.release()
        os.replace(self.tmp, self.path)

    def __enter__(self) -> "FrameWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
