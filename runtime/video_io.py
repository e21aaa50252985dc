"""Threaded video reading and writing (OpenCV), so an inference loop is not waiting on I/O.

:class:`FrameReader` decodes frames of any source (:mod:`runtime.video_source`: a file, a camera,
a network stream, a GStreamer pipeline) in a background thread and times the decode of each frame
(ms). A file's frames wait in a bounded queue (every frame processed); a live source's, or a file
paced at its own rate, go to a one-slot mailbox (the newest frame wins, the others are dropped and
counted). It opens the source and decodes the first frame on construction, so a missing file, a
file that is not a video (or an MP4 cut off before its index was written), a video without frames,
a camera that is not there and a stream that does not answer fail there, with a
:class:`runtime.errors.DataError`. When decoding stops before the frame count the container
announces, :attr:`FrameReader.stopped_reason` says ``"corrupt or truncated video at frame N"`` (N
frames, 0..N-1, were good); a live source that sends nothing for the timeout, ``"stalled: ..."``.

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
from runtime.mailbox import Mailbox
from runtime.video_source import DEFAULT_TIMEOUT_S, VideoSource, open_capture, parse_source

_END = object()


def quiet_opencv() -> None:
    """Silence FFmpeg's and OpenCV's own log lines (callers report problems themselves).

    Leaves ``OPENCV_FFMPEG_LOGLEVEL`` alone if the user set it."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    cv2.setLogLevel(2)  # errors only


@dataclass(frozen=True)
class Frame:
    """One decoded frame: its index in the source (gaps: frames dropped), the (H, W, 3) uint8 BGR
    image, decode time (ms), what the reader's ``prepare`` made of it in the reader thread (None
    without one) and its time (ms); ``arrival_s`` when the reader had it decoded and ``capture_s``
    when the source delivered it (``time.perf_counter`` seconds: the same for live sources; a
    paced file's frame is captured when it is due), ``pts_ms`` the source's own timestamp (None
    where it has none)."""

    index: int
    image: np.ndarray
    decode_ms: float
    prepared: Any = None
    prepare_ms: float = 0.0
    arrival_s: float = 0.0
    capture_s: float = 0.0
    pts_ms: float | None = None


DECODE_THREADS = 1  # FFmpeg's decoder threads; see FrameReader
TIMED_OUT = 0.98  # a read this close to the timeout (or longer) ended on it: FFmpeg's interrupt fires at the timeout
FLUSHED_FRAMES = 16  # at most this many frames follow a timed-out read (a decoder's buffered frames: H.264 holds <= 16)


class PinnableThread:
    """A reader's or writer's thread and its CPU cores (:mod:`runtime.affinity`; None: not pinned)."""

    cores: Collection[int] | None = None
    _thread: threading.Thread | None = None

    def pin(self, cores: Collection[int] | None) -> None:
        """Move the thread to ``cores``: now if it runs, else when it starts."""
        self.cores = cores
        pin_thread(self._thread, cores)


class FrameReader(PinnableThread):
    """Iterate over a source's frames (:mod:`runtime.video_source`: a file, a camera, a stream),
    decoded ahead in a thread; ``max_frames`` caps the count read. ``source``: a
    :class:`~runtime.video_source.VideoSource`, a string as ``--video`` takes it, or a path (a file).

    Two hand-over policies. A file, by default, is read in full: frames wait in a bounded queue
    (``queue_size``), so every frame is processed and a slow consumer slows the reading down. A live
    source (``latest``, the default for cameras and streams) is read at its own pace into a
    one-slot :class:`runtime.mailbox.Mailbox`: the consumer always gets the newest frame, older ones
    are dropped and counted (:attr:`frames_dropped`), never queued, so the delay from capture to
    result stays bounded when the consumer is slower than the source. ``pace`` makes a file behave
    like a camera: frame *i* is handed over when it is due (its timestamp after the first frame's,
    from the start of reading), into the mailbox. A live source's reader starts on construction
    (frames keep being taken from the source while the model loads); a file's on iteration.

    After iteration: :attr:`frames_read`, :attr:`stopped_reason` (None at the end of the video or
    stream, ``"max-frames"``, ``"corrupt or truncated video at frame N"``, or ``"stalled: no frame
    for S s"``: see :meth:`frames`), :attr:`first_arrival_s` / :attr:`last_arrival_s`
    (``time.perf_counter``). :attr:`prepare`, set before iterating, runs on each frame in the reader
    thread (e.g. the model's preprocessing, so that it overlaps the consumer's work on the previous
    frame) into :attr:`Frame.prepared`; on a mailbox it would be spent on frames that are then
    dropped, so the consumer prepares those.

    ``decode_threads``: FFmpeg's decoder threads (0: OpenCV's default, one per core). Default 1:
    the reader thread already decodes in parallel with the model, and a decoder spread over every
    core takes them from a CPU model (960x540 H.264, AMD EPYC: 1.72 CPU ms per frame on one thread
    against 1.98 CPU ms over two, the second core's share taken from ONNX Runtime).
    ``timeout_s``: a stream's open and read timeout (seconds).
    """

    def __init__(self, source: str | os.PathLike[str] | VideoSource, max_frames: int | None = None, queue_size: int = 8,
                 decode_threads: int = DECODE_THREADS, cores: Collection[int] | None = None, latest: bool | None = None,
                 pace: bool = False, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        if isinstance(source, os.PathLike):  # a path is a file, whatever its name (a file called 0 is no camera)
            source = VideoSource(os.fspath(source), "file")
        self.source = source if isinstance(source, VideoSource) else parse_source(source)
        self.cores = cores  # the reading thread's CPU cores (runtime.affinity; None: not pinned)
        self.timeout_s = timeout_s
        self.cap, self.info = open_capture(self.source, decode_threads, timeout_s)
        self.pace = pace
        if pace and self.source.live:
            raise ValueError("pace is for files: a live source already delivers at its own pace")
        self.latest = self.source.live or pace if latest is None else latest or pace
        self.max_frames = max_frames
        self.frames_read = 0
        self.frames_dropped = 0
        self.first_arrival_s: float | None = None
        self.last_arrival_s: float | None = None
        self.stopped_reason: str | None = None
        self.error: BaseException | None = None
        self._box: Mailbox | queue.Queue[Any] = Mailbox() if self.latest else queue.Queue(maxsize=max(1, queue_size))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._clock: tuple[float, float] | None = None  # (perf_counter, pts ms) of the first frame handed over (pace)
        self._timed_out_at: int | None = None  # frames read when a read last hit the timeout (live)
        self._abandoned = False  # a read never returned: the capture is left to the process's exit
        self.prepare: Callable[[np.ndarray], Any] | None = None
        first = self._first_frame()
        if first is None:
            self.cap.release()
            raise DataError(self.source.spec, f"the stream ended or sent no frame within {timeout_s:g} s" if self.source.live else
                            "the video has no frames that can be decoded")
        self._first: Frame | None = first
        self.size = (first.image.shape[1], first.image.shape[0])  # (w, h) of the decoded frames
        if self.source.live:
            self.start()

    def _first_frame(self) -> Frame | None:
        """The first frame; a live source's within ``timeout_s`` (cameras and pipelines have no read
        timeout of their own: the read runs in a helper thread, left blocked if it never returns)."""
        if not self.source.live:
            return self._read()
        box: list[Frame | None] = []
        helper = threading.Thread(target=lambda: box.append(self._read()), name="first-frame", daemon=True)
        helper.start()
        helper.join(self.timeout_s + 1.0)
        if helper.is_alive():
            self._abandoned = True
            raise DataError(self.source.spec, f"no frame within {self.timeout_s:g} s")
        return box[0] if box else None

    @property
    def expected_frames(self) -> int | None:
        """Frames this reader will deliver if the video is intact (None when unknown or live)."""
        if self.source.live:
            return self.max_frames
        count = self.info.frame_count or None
        if self.max_frames is not None:
            return self.max_frames if count is None else min(count, self.max_frames)
        return count

    def _timestamp(self, index: int) -> float | None:
        """The source's timestamp (ms) of the frame just read: FFmpeg's presentation time (files and
        streams; a file without one: the index over its nominal rate); None for cameras and
        pipelines, whose clock is not read (a camera's nominal rate is no clock: it may deliver fewer)."""
        if not self.source.has_clock:
            return None
        pts = float(self.cap.get(cv2.CAP_PROP_POS_MSEC) or 0.0)
        if index == 0 or pts > 0.0:
            return pts
        return 1000.0 * index / self.info.fps if self.info.fps > 0 and not self.source.live else None

    def _read(self) -> Frame | None:
        start = time.perf_counter()
        ok, image = self.cap.read()
        end = time.perf_counter()
        if self.source.live and end - start >= TIMED_OUT * self.timeout_s:
            self._timed_out_at = self.frames_read  # FFmpeg's read timeout: the frames after it are the decoder's flush
        if not ok or image is None:
            if self._timed_out_at is not None and self.frames_read - self._timed_out_at <= FLUSHED_FRAMES:
                self.stopped_reason = f"stalled: no frame for {self.timeout_s:g} s"
            return None
        frame = Frame(self.frames_read, image, (end - start) * 1000.0, arrival_s=end, capture_s=end,
                      pts_ms=self._timestamp(self.frames_read))
        self.frames_read += 1
        return frame

    def _end_reason(self) -> str | None:
        if self.stopped_reason is not None:  # a stall
            return self.stopped_reason
        if self.info.frame_count and self.frames_read < self.info.frame_count:
            return f"corrupt or truncated video at frame {self.frames_read}"
        return None

    def _due(self, frame: Frame) -> float:
        """When a paced file's frame is due (perf_counter s): its timestamp after the first one's."""
        if self._clock is None:
            self._clock = (time.perf_counter(), frame.pts_ms or 0.0)
        t0, pts0 = self._clock
        pts = frame.pts_ms if frame.pts_ms is not None else 1000.0 * frame.index / (self.info.fps or 25.0)
        return t0 + max(0.0, pts - pts0) / 1000.0

    def _put(self, item: Any) -> bool:
        """Hand ``item`` over (a frame: paced and prepared first) unless asked to stop (then False)."""
        if isinstance(item, Frame):
            if self.pace:
                due = self._due(item)
                while (wait := due - time.perf_counter()) > 0:
                    if self._stop.wait(min(wait, 0.1)):
                        return False
                item = replace(item, arrival_s=time.perf_counter(), capture_s=due)
            if self.prepare is not None and not self.latest:
                start = time.perf_counter()
                prepared = self.prepare(item.image)
                item = replace(item, prepared=prepared, prepare_ms=(time.perf_counter() - start) * 1000.0)
            self.first_arrival_s = self.first_arrival_s or item.arrival_s
            self.last_arrival_s = item.arrival_s
        if isinstance(self._box, Mailbox):
            if item is _END:  # the last frame is taken before the end is announced
                while not self._stop.is_set() and not self._box.wait_taken(0.1):
                    pass
                self._box.put(item)
                return True
            if self._box.put(item):
                self.frames_dropped += 1
            return not self._stop.is_set()
        while not self._stop.is_set():
            try:
                self._box.put(item, timeout=0.1)
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
                    more = self.source.live or self.cap.grab()
                    self.stopped_reason = "max-frames" if more else self._end_reason()
                    break
                frame = self._read()
                if frame is None:
                    self.stopped_reason = self._end_reason()
                    break
                if (frame.image.shape[1], frame.image.shape[0]) != self.size:
                    self.frames_read -= 1
                    what = "the stream's" if self.source.live else f"corrupt or truncated video at frame {frame.index} ("
                    self.stopped_reason = (f"{what} frame size changed" + ("" if self.source.live else ")"))
                    break
                if not self._put(frame):
                    return
        except BaseException as err:  # surfaced to the consumer by frames()
            self.error = err
        finally:
            self._put(_END)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="frame-reader", daemon=True)
            self._thread.start()

    def frames(self, stop: threading.Event | None = None, stall_s: float | None = None) -> Iterator[Frame]:
        """The frames, until the source ends, ``stop`` is set, or (``stall_s``) no frame has arrived
        for ``stall_s`` seconds: then :attr:`stopped_reason` says ``"stalled: no frame for S s"``."""
        self.start()
        began = time.perf_counter()
        while not (stop is not None and stop.is_set()):
            try:
                item = self._box.get(timeout=0.1)
            except queue.Empty:
                if stall_s is not None and time.perf_counter() - max(began, self.last_arrival_s or 0.0) >= stall_s:
                    self.stopped_reason = f"stalled: no frame for {stall_s:g} s"
                    return
                continue
            if item is _END:
                if self.error is not None:
                    raise self.error
                return
            yield item

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    @property
    def stalled(self) -> bool:
        return (self.stopped_reason or "").startswith("stalled")

    def close(self) -> None:
        """Stop the decoding thread and release the source (safe to call twice). A thread still
        blocked in a read after the timeout keeps its capture (released at exit) rather than
        having it freed under it."""
        self._stop.set()
        if self._abandoned:
            return
        if self._thread is not None:
            self._thread.join(timeout=self.timeout_s + 2.0)
            if self._thread.is_alive():
                self._abandoned = True
                return
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
