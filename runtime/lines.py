"""CULane ``.lines.txt`` files: one lane per line, ``x y x y ...`` in original-image pixels.

Reading follows the official evaluator's parser where files are well formed: every text line is a
lane (an empty line is a lane with no points, which still counts as an annotation or a
detection), and the final newline does not start another lane. Where the official parser would
silently stop (a non-number, an odd count of numbers), we raise :class:`DataError` instead.
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from runtime.atomic import atomic_write_text
from runtime.errors import DataError

Lane = np.ndarray
"""A lane: float64 array of shape (N, 2), columns x, y in pixels of the original image."""


def parse_lines(text: str, source: str | os.PathLike[str] = "<text>") -> list[Lane]:
    """Parse the text of a ``.lines.txt`` file into lanes (each (N, 2) float64)."""
    rows = text.split("\n")
    if rows and rows[-1] == "":
        rows.pop()  # a final newline ends the last lane; it does not start another
    lanes: list[Lane] = []
    for number, row in enumerate(rows, start=1):
        tokens = row.split()
        try:
            values = np.array([float(t) for t in tokens], dtype=np.float64)
        except ValueError:
            bad = next(t for t in tokens if not _is_number(t))
            raise DataError(source, f"not a number: {bad!r}", line=number) from None
        if values.size % 2:
            raise DataError(source, f"odd number of coordinates ({values.size}); expected x y pairs", line=number)
        if not np.all(np.isfinite(values)):
            raise DataError(source, "coordinate is not finite", line=number)
        lanes.append(values.reshape(-1, 2))
    return lanes


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def read_lines_file(path: str | os.PathLike[str]) -> list[Lane]:
    """Read a ``.lines.txt`` file. Raises :class:`DataError` if it is missing or malformed."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise DataError(path, "lane annotation file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(path, f"cannot read lane file ({err.__class__.__name__}: {err})") from None
    return parse_lines(text, path)


def format_lines(lanes: Sequence[Lane], decimals: int = 3) -> str:
    """Format lanes as ``.lines.txt`` text (``x y`` pairs, a trailing space and newline per lane,
    as CULane writes them). Lanes with no points are skipped."""
    out = []
    for lane in lanes:
        pts = np.asarray(lane, dtype=np.float64).reshape(-1, 2)
        if len(pts) == 0:
            continue
        out.append("".join(f"{_num(x, decimals)} {_num(y, decimals)} " for x, y in pts) + "\n")
    return "".join(out)


def _num(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def write_lines_file(path: str | os.PathLike[str], lanes: Sequence[Lane], decimals: int = 3, durable: bool = True) -> None:
    """Write lanes to ``path`` atomically (parent folders are created); ``durable=False`` skips the
    fsync, for bulk predictions (measured here on /tmp: 0.63 ms per file with it, 0.36 ms without)."""
    atomic_write_text(path, format_lines(lanes, decimals), durable)
