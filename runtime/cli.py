"""What every command line of the product shares: one-line errors, count arguments, output checks.

The rule (applied by every command): arguments, inputs and output locations are checked **before**
the work starts; a problem is one line ``error: <file>: <problem>`` (or ``<prog>: error: <what>``
for a bad argument) on stderr and exit status 2; no traceback, nothing half-written.

- :class:`Parser`: ``argparse`` whose usage errors are one line (``--help`` shows the usage).
- :func:`positive_int`, :func:`non_negative_int`, :func:`positive_float`: argument types that
  refuse negative or zero counts at parse time.
- :func:`check_output_file`, :func:`check_output_dir`: an output can be created where asked
  (every missing parent folder creatable, the nearest existing one writable, no file in the way),
  checked by creating and removing a probe file, so read-only disks are found before the work.
- :func:`run_main`: calls a command's body and turns :class:`DataError` and ``OSError`` (and the
  error types a command names) into the one line and exit status 2.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NoReturn

from runtime.errors import DataError

EXIT_BAD_INPUT = 2


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line: ``<prog>: error: <message> (see --help)``."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


def _count(text: str, minimum: int, kind: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {kind}, got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _count(text, 1, "an integer >= 1")


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _count(text, 0, "an integer >= 0")


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def _nearest_existing(path: Path) -> Path:
    """The path itself or its nearest existing ancestor (``.`` for a relative path with none)."""
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return candidate
    return Path(".")


def _probe(folder: Path, target: Path, what: str) -> None:
    """Create and remove a file in ``folder``; :class:`DataError` naming ``target`` if that fails."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-check.", dir=folder)
    except OSError as err:
        reason = err.strerror or err.__class__.__name__
        raise DataError(target, f"cannot write the {what} here: {folder} is not writable ({reason})") from None
    os.close(fd)
    os.unlink(probe)


def _not_an_input(target: Path, what: str, inputs: Iterable[str | os.PathLike[str] | None]) -> None:
    resolved = target.resolve()
    for item in inputs:
        if item is not None and Path(item).resolve() == resolved:
            raise DataError(target, f"the {what} would overwrite an input of this command")


def with_sidecars(*artifacts: str | os.PathLike[str] | None) -> list[str]:
    """Each artifact path and its ``.json`` sidecar: the inputs an output must never replace."""
    return [p for a in artifacts if a is not None for p in (os.fspath(a), f"{os.fspath(a)}.json")]


def check_output_file(path: str | os.PathLike[str], what: str = "output",
                      inputs: Iterable[str | os.PathLike[str] | None] = ()) -> Path:
    """Check that the file ``path`` can be written (atomically: a temporary file beside it, then a
    rename) without writing it or creating any folder, and is none of ``inputs``; :class:`DataError`
    naming it otherwise."""
    target = Path(path)
    _not_an_input(target, what, inputs)
    if target.is_dir():
        raise DataError(target, f"the {what} is a folder; expected a file path")
    existing = _nearest_existing(target.parent)
    if not existing.is_dir():
        raise DataError(target, f"cannot create the {what}: {existing} is a file, not a folder")
    _probe(existing, target, what)
    return target


def check_output_dir(path: str | os.PathLike[str], what: str = "output folder",
                     inputs: Iterable[str | os.PathLike[str] | None] = ()) -> Path:
    """Check that the folder ``path`` exists and is writable, or can be created, and is none of
    ``inputs`` (e.g. a dataset root whose annotations predictions would replace); nothing is created."""
    target = Path(path)
    _not_an_input(target, what, inputs)
    existing = _nearest_existing(target)
    if not existing.is_dir():
        raise DataError(target, f"cannot create the {what}: {existing} is a file, not a folder")
    _probe(existing, target, what)
    return target


def fail(err: BaseException) -> int:
    """Print ``error: <err>`` (one line) on stderr; the exit status for bad input."""
    text = str(err)
    if isinstance(err, OSError) and err.filename is not None:
        text = f"{err.filename}: {err.strerror or err.__class__.__name__}"
    print(f"error: {' '.join(text.split())}", file=sys.stderr)
    return EXIT_BAD_INPUT


def run_main(body: Callable[[], int], *errors: type[BaseException]) -> int:
    """``body()``, with :class:`DataError`, ``OSError`` and ``errors`` turned into one line and exit 2."""
    try:
        return body()
    except (DataError, OSError, *errors) as err:
        return fail(err)
