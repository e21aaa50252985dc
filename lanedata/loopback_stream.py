"""A live video source made from a clip, for the tests and benchmarks of live input: FFmpeg streaming it over loopback TCP at its native rate.

:func:`tcp_stream` starts ``ffmpeg -re`` listening on a free loopback port (MPEG-TS over TCP, the
clip's own video packets, no re-encoding) and yields its URL once the port listens; the reader
(``runtime.infer_video --video tcp://...``) connects as the one client. The shared dashcam clip is
used where it exists (``../shared/data/videos/solidWhiteRight.mp4``, 960x540, 25 fps, 8.8 s),
else FFmpeg's own test pattern at the same size and rate. ``loops`` repeats the clip. FFmpeg comes
from the system's packages (``setup.sh`` installs it where it can); :func:`ffmpeg` is None without it.
"""
from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DASHCAM_CLIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos" / "solidWhiteRight.mp4"
CLIP_FPS = 25.0
FFMPEG_MISSING = "FFmpeg is not installed (setup.sh installs it from the system's packages where it can: apt-get install ffmpeg)"


def ffmpeg() -> str | None:
    return shutil.which("ffmpeg")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening(port: int) -> bool:
    """Whether a TCP socket listens on ``port`` (Linux: /proc/net/tcp, without connecting to it)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
            return True
    return False


def source_args(seconds: float, loops: int) -> list[str]:
    """FFmpeg input arguments: the dashcam clip (``loops`` times) or a test pattern of ``seconds`` x ``loops``."""
    if DASHCAM_CLIP.is_file():
        return ["-stream_loop", str(loops - 1), "-re", "-i", str(DASHCAM_CLIP), "-an", "-c:v", "copy"]
    pattern = f"testsrc2=size=960x540:rate={CLIP_FPS:g}:duration={seconds * loops:g}"
    return ["-re", "-f", "lavfi", "-i", pattern, "-c:v", "mpeg4", "-q:v", "5", "-g", "25"]


@contextmanager
def tcp_stream(loops: int = 1, seconds: float = 8.8, timeout: float = 10.0) -> Iterator[tuple[str, subprocess.Popen]]:
    """``(url, ffmpeg process)`` of a clip streamed at its native rate once a client connects."""
    port = free_port()
    command = [ffmpeg() or "ffmpeg", "-nostdin", "-loglevel", "error", *source_args(seconds, loops),
               "-f", "mpegts", f"tcp://127.0.0.1:{port}?listen=1"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + timeout
        while not listening(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ffmpeg did not listen on {port}: {process.stderr.read().decode(errors='replace')}")
            time.sleep(0.02)
        yield f"tcp://127.0.0.1:{port}", process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)
            process.kill()
        process.wait()
        process.stderr.close()
