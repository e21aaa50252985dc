"""One pipeline per output folder: an exclusive lock on ``runs/<dataset>/pipeline.lock``.

The lock is the operating system's (``flock``): it is held while the run lives and released by the
kernel when the process ends however it ends (kill -9 included), so a killed run never blocks the
next one. The file also says who holds it (pid, host, start time); a file still naming an owner
whose lock is free is a run that ended without tidying up (killed): the next run takes it over and
says so in one line. A second run while the first holds it refuses in one line naming the owner.
"""
from __future__ import annotations

import fcntl
import os
import socket
from datetime import datetime, timezone
from pathlib import Path

from runtime.errors import DataError


class FolderLock:
    """Held from construction until :meth:`release`; :class:`DataError` when another run holds it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        previous = os.read(self.fd, 4096).decode("utf-8", "replace").strip()
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise DataError(path, f"another pipeline is running in this folder ({previous or 'owner not written yet'}): "
                                  "wait for it, or stop it first") from None
        if previous:
            print(f"pipeline: {path}: taking over the lock of a run that ended without releasing it ({previous})", flush=True)
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"pid {os.getpid()} on {socket.gethostname()}, started {started}\n".encode(), 0)

    def release(self) -> None:
        """Empty the owner line (a clean end) and release the lock."""
        if self.fd < 0:
            return
        os.ftruncate(self.fd, 0)
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = -1
