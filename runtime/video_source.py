"""Where frames come from: a video file, a camera, a network stream or a GStreamer pipeline.

:func:`parse_source` reads what a user gives ``--video`` and checks it before anything is loaded:

==============  ==============================================  ==========================
kind            given as                                        opened by (OpenCV backend)
==============  ==============================================  ==========================
``file``        a path to a video file                          FFmpeg
``camera``      ``/dev/videoN`` or a bare index ``N``           V4L2 on Linux, else any
``stream``      ``rtsp://``, ``rtsps://``, ``rtmp://``,         FFmpeg (OpenCV's bundled
                ``udp://``, ``tcp://``, ``srt://``, ``rtp://``,  build reads these)
                ``http://``, ``https://``
``gstreamer``   a pipeline string ending in ``appsink``         GStreamer (where OpenCV was
                (``... ! videoconvert ! appsink``)              built with it, e.g. JetPack)
==============  ==============================================  ==========================

Every kind but ``file`` is *live*: frames arrive at the source's pace whether or not anyone reads
them (:mod:`runtime.video_io` then hands the model the newest one). :func:`open_capture` opens a
source; FFmpeg sources get an open and a read timeout (ms), so a stream that never answers or stops
sending ends a read instead of blocking forever.
"""
from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2

from runtime.errors import DataError

STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "udp", "tcp", "srt", "rtp", "http", "https")
KINDS = ("file", "camera", "stream", "gstreamer")
DEFAULT_TIMEOUT_S = 10.0  # no frame for this long: a live source has stalled (infer_video --stall-timeout)
MAX_TIMEOUT_MS = 2**31 - 1  # OpenCV's parameters are int32: a longer timeout (about 24.8 days) is this one
FPS_SANITY = 1000.0  # a container or stream announcing more frames per second than this does not know its rate

STILL_IMAGE_MAGIC = {b"\xff\xd8\xff": "JPEG", b"\x89PNG": "PNG", b"BM": "BMP", b"GIF8": "GIF", b"II*\x00": "TIFF",
                     b"MM\x00*": "TIFF"}
_CAMERA_INDEX = re.compile(r"^\d{1,3}$")
_CAMERA_DEVICE = re.compile(r"^/dev/video(\d+)$")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


@dataclass(frozen=True)
class VideoSource:
    """A source as given (``spec``), its ``kind`` (one of :data:`KINDS`) and, for a camera, its index."""

    spec: str
    kind: str
    camera_index: int | None = None

    @property
    def has_clock(self) -> bool:
        """Whether its frames carry the source's own timestamps (FFmpeg's presentation times: files and
        streams); a camera's or a pipeline's frames here do not (their driver's time is not read)."""
        return self.kind in ("file", "stream")

    @property
    def live(self) -> bool:
        """Frames come at the source's pace (camera, stream, pipeline), not when read (file)."""
        return self.kind != "file"

    @property
    def path(self) -> Path:
        """The file (``file`` sources) or device path; for other kinds the spec as a path (messages only)."""
        return Path(self.spec)

    def __str__(self) -> str:
        return self.spec


@dataclass(frozen=True)
class VideoInfo:
    source: VideoSource
    width: int
    height: int
    fps: float  # 0.0 when the source does not say (or says something absurd)
    frame_count: int  # as a file's container announces it; 0 when unknown and for live sources

    @property
    def path(self) -> Path:
        return self.source.path


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


def opencv_has(feature: str) -> bool:
    """Whether this OpenCV build lists a Video I/O backend (``GStreamer``, ``FFMPEG``, ``v4l/v4l2``) as YES."""
    for line in cv2.getBuildInformation().splitlines():
        name, _, value = line.strip().partition(":")
        if name.strip() == feature:
            return value.strip().upper().startswith("YES")
    return False


def parse_source(spec: str | os.PathLike[str]) -> VideoSource:
    """What ``spec`` names (see the module's table), checked: a missing file or camera device, a
    still image, an unknown URL scheme, a GStreamer pipeline without ``appsink`` or on an OpenCV
    built without GStreamer are one :class:`DataError` each."""
    text = str(spec).strip()
    if not text:
        raise DataError(text, "an empty video source (an unset variable?)")
    if os.path.isfile(text):  # an existing file is a file, whatever its name ("0", "a!b.mp4")
        check_video_file(Path(text))
        return VideoSource(text, "file")
    if "!" in text:
        return _gstreamer(text)
    if _CAMERA_INDEX.match(text) or _CAMERA_DEVICE.match(text):
        return _camera(text)
    scheme = _SCHEME.match(text)
    if scheme:
        name = scheme.group(1).lower()
        if name == "file":
            return parse_source(text[len("file://"):])
        if name not in STREAM_SCHEMES:
            raise DataError(text, f"unknown stream scheme {name}://; streams read here: "
                                  + ", ".join(f"{s}://" for s in STREAM_SCHEMES))
        return VideoSource(text, "stream")
    check_video_file(Path(text))
    return VideoSource(text, "file")


def _camera(text: str) -> VideoSource:
    index = int(_CAMERA_DEVICE.match(text).group(1)) if text.startswith("/dev/") else int(text)
    if sys.platform.startswith("linux"):
        device = Path(f"/dev/video{index}")
        if not device.exists():
            present = sorted(p.name for p in Path("/dev").glob("video*"))
            listed = ", ".join(present) if present else "none"
            raise DataError(device, f"camera not found (video devices here: {listed}; v4l2-ctl --list-devices names them)")
        if not os.access(device, os.R_OK | os.W_OK):
            raise DataError(device, "camera not readable by this user (add the user to the 'video' group)")
    return VideoSource(text, "camera", index)


def _gstreamer(text: str) -> VideoSource:
    if "appsink" not in text:
        raise DataError(text, "a GStreamer pipeline must end in appsink, where OpenCV takes the frames "
                              "(... ! videoconvert ! video/x-raw,format=BGR ! appsink drop=true max-buffers=1)")
    if not opencv_has("GStreamer"):
        raise DataError(text, "this OpenCV was built without GStreamer (cv2.getBuildInformation()); on Jetson use "
                              "JetPack's OpenCV (apt install python3-opencv; pip's opencv-python lacks GStreamer), "
                              "or give the camera as /dev/videoN or a stream URL")
    return VideoSource(text, "gstreamer")


def _capture_params(source: VideoSource, decode_threads: int, timeout_s: float) -> tuple[int, list[int]]:
    """OpenCV backend and the open parameters it accepts (an unaccepted one makes the open fail)."""
    if source.kind == "gstreamer":
        return cv2.CAP_GSTREAMER, []
    if source.kind == "camera":
        return (cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY), []
    params = [cv2.CAP_PROP_N_THREADS, int(decode_threads)] if decode_threads > 0 else []
    if source.kind == "stream":
        ms = min(MAX_TIMEOUT_MS, max(1, int(round(timeout_s * 1000))))
        params += [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
    return cv2.CAP_FFMPEG, params


def open_capture(source: VideoSource, decode_threads: int, timeout_s: float = DEFAULT_TIMEOUT_S
                 ) -> tuple[cv2.VideoCapture, VideoInfo]:
    """An opened ``cv2.VideoCapture`` and what the source says of itself; :class:`DataError` when it
    cannot be opened (for a stream: no answer within ``timeout_s``)."""
    if source.kind == "file":
        check_video_file(source.path)
    api, params = _capture_params(source, decode_threads, timeout_s)
    target = source.camera_index if source.kind == "camera" else source.spec
    cap = cv2.VideoCapture(target, api, params)
    if not cap.isOpened():
        cap.release()
        raise DataError(source.spec, _open_failure(source, timeout_s))
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    count = 0 if source.live else int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    info = VideoInfo(source=source, width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                     fps=fps if 0 < fps <= FPS_SANITY else 0.0, frame_count=max(0, count))
    return cap, info


def _open_failure(source: VideoSource, timeout_s: float) -> str:
    return {
        "file": "cannot open as a video (not a video file, an empty one, or an MP4 cut off before its index was written)",
        "camera": "cannot open the camera (in use by another program, or not a capture device)",
        "stream": f"cannot open the stream (no answer within {timeout_s:g} s, refused, or not a video stream)",
        "gstreamer": "GStreamer could not start the pipeline (run it with gst-launch-1.0 to see why)",
    }[source.kind]
