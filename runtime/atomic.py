"""Atomic file writes: write a temporary file in the target's folder, then rename over it.

A reader (or a killed job) never sees a half-written file: the target is either the old complete
file or the new complete one.
"""
from __future__ import annotations

import contextlib
import filecmp
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, durable: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically (parent folders are created), with the permissions
    a plain ``open`` would give, flushed to disk before the rename unless ``durable`` is False
    (bulk outputs that are cheap to redo: still never seen half-written). Returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), _FILE_MODE)
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str, durable: bool = True) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"), durable)


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON (trailing newline) to ``path`` atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


@contextlib.contextmanager
def staged_directory(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary folder beside ``path`` to write into; on success its files are moved into
    ``path`` (a new folder: one rename; an existing one: file by file, replacing same-named files,
    leaving others), on failure it is removed with any parent folders it created: a failed job
    leaves no half-written output folder."""
    target = Path(path)
    created = [p for p in (target.parent, *target.parent.parents) if not p.exists()]
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for folder in created:  # innermost first
            try:
                folder.rmdir()
            except OSError:
                break
        raise
    if not target.exists():
        os.chmod(staging, 0o777 & ~_umask())
        os.replace(staging, target)
        return
    for file in sorted(p for p in staging.rglob("*") if not p.is_dir()):
        destination = target / file.relative_to(staging)
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.replace(file, destination)
    shutil.rmtree(staging, ignore_errors=True)


def place_file(source: Path, target: Path) -> str:
    """Hard-link (else copy) ``source`` to ``target`` atomically: ``"linked"``, ``"copied"`` or ``"kept"``."""
    if target.exists() and (os.path.samefile(source, target) or filecmp.cmp(source, target, shallow=True)):
        return "kept"
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.urandom(8).hex()}.tmp")
    try:
        try:
            os.link(source, temporary)
            how = "linked"
        except OSError:
            shutil.copy2(source, temporary)
            how = "copied"
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return how
