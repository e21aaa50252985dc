"""CULane label maps from lane points (the library behind ``python -m lanedata.labels.make_labels``
and every converter): lanes get CULane IDs as CULane's own generator assigns them
(:mod:`lanedata.labels.lane_ids`) and are drawn 16 px wide with their ID 1..4 through the
evaluator's spline (:mod:`lanedata.labels.lane_label`); :func:`make_labels` writes each label
atomically (a label newer than its ``.lines.txt`` is kept: a killed run resumes) and the
``*_gt.txt`` list with the four existence flags last.
"""
from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from lanedata.labels.lane_ids import MAX_LANES, assign_ids
from lanedata.labels.lane_label import draw_label
from runtime.atomic import atomic_write_bytes, atomic_write_text
from runtime.cli import Parser, check_output_dir, check_output_file
from runtime.resources import worker_count
from runtime.culane import CulaneDataset, Sample, image_size
from runtime.errors import DataError
from runtime.lines import read_lines_file

LABELS_DIR = "laneseg_label_w16"
HEADER_BYTES = 1 << 16  # an image's size is read from its first bytes (more only if its header is longer)


@dataclass(frozen=True)
class Frame:
    """One image to label: its lanes by CULane ID ((N, 2) x, y px), its size, and where its label goes."""

    sample: Sample
    label: str  # relative to the root
    size: tuple[int, int]  # width, height in px
    lanes: dict[int, np.ndarray]
    read: int  # lanes in its .lines.txt

    @property
    def exist(self) -> tuple[int, ...]:
        return tuple(int(i in self.lanes) for i in range(1, MAX_LANES + 1))

    def gt_line(self) -> str:
        return Sample(self.sample.image, self.label, self.exist).row


def read_size(path: Path) -> tuple[int, int]:
    """(width, height) of a JPEG or PNG from its header; :class:`DataError` if missing or not an image."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(HEADER_BYTES)
            size = image_size(head) or image_size(head + handle.read())
    except FileNotFoundError:
        raise DataError(path, "image not found (listed but missing)") from None
    except OSError as err:
        raise DataError(path, f"cannot read image ({err.strerror or err.__class__.__name__})") from None
    if size is None:
        raise DataError(path, "not a JPEG or PNG image (no size in its header)")
    return size


def label_path(sample: Sample, labels_dir: str) -> str:
    return f"{labels_dir}/{sample.stem}.png"


def plan_frame(data: CulaneDataset, sample: Sample, labels_dir: str) -> Frame:
    """Read and check one frame's image header and ``.lines.txt``; its lanes named."""
    width, height = read_size(data.path(sample.image))
    lanes = read_lines_file(data.path(sample.lines_name))
    return Frame(sample, label_path(sample, labels_dir), (width, height), assign_ids(lanes, width, height), len(lanes))


def write_label(data: CulaneDataset, frame: Frame, force: bool) -> bool:
    """Draw and write the frame's label unless a label newer than its ``.lines.txt`` is there; True if drawn."""
    target = data.path(frame.label)
    if not force and target.is_file() and target.stat().st_mtime >= data.path(frame.sample.lines_name).stat().st_mtime:
        return False
    width, height = frame.size
    ok, png = cv2.imencode(".png", draw_label(frame.lanes, (height, width)))
    if not ok:
        raise DataError(target, "cannot encode the label map as PNG")
    atomic_write_bytes(target, png.tobytes(), durable=False)
    return True


def default_out_list(list_path: Path) -> Path:
    """``train.txt`` -> ``train_gt.txt`` beside it (``x_gt.txt`` -> ``x_gt.txt``: refused as its own input)."""
    stem = list_path.stem[:-3] if list_path.stem.endswith("_gt") else list_path.stem
    return list_path.with_name(f"{stem}_gt.txt")


def _progress(iterable, total: int, enabled: bool, desc: str):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="frame", file=sys.stderr, leave=False)


def make_labels(root: str | os.PathLike[str], list_name: str, out_list: str | None = None, labels_dir: str = LABELS_DIR,
                force: bool = False, workers: int = 4, progress: bool = False) -> dict[str, int | str]:
    """Label every frame of the list (see the module docstring); returns the counts and the list written."""
    data = CulaneDataset(root)
    if Path(labels_dir).is_absolute() or ".." in Path(labels_dir).parts:
        raise DataError(labels_dir, "--labels-dir must be a folder inside the dataset root (a relative path without '..')")
    list_path = data.list_path(list_name)
    samples = data.read_list(str(list_path)).samples
    if not samples:
        raise DataError(list_path, "the list names no images (empty file)")
    out = Path(out_list) if out_list else default_out_list(list_path)
    out = out if out.is_absolute() or out_list is None else data.root / "list" / out
    if out.resolve() == list_path.resolve():
        raise DataError(list_path, "is already a *_gt.txt list, and the list to write would replace it: pass --out-list")
    check_output_file(out, "label list")
    check_output_dir(data.root / labels_dir, "labels folder")
    with ThreadPoolExecutor(max_workers=workers) as pool:
        frames = list(_progress(pool.map(lambda s: plan_frame(data, s, labels_dir), samples), len(samples), progress, "reading lanes"))
        drawn = sum(_progress(pool.map(lambda f: write_label(data, f, force), frames), len(frames), progress, "drawing labels"))
    atomic_write_text(out, "".join(f.gt_line() + "\n" for f in frames))
    read = sum(f.read for f in frames)
    named = sum(len(f.lanes) for f in frames)
    return {"frames": len(frames), "drawn": drawn, "kept": len(frames) - drawn, "lanes_read": read, "lanes_labelled": named,
            "lanes_left_out": read - named, "frames_without_lanes": sum(not f.lanes for f in frames), "list": str(out)}


def add_drawing_arguments(parser: Parser) -> None:
    """``--force``, ``--workers``, ``--no-progress``: the options of every command that draws labels through make_labels."""
    parser.add_argument("--force", action="store_true", help="redraw labels that are already there")
    parser.add_argument("--workers", type=worker_count, default=min(8, os.cpu_count() or 1), help="threads (default: CPUs, at most 8)")
    parser.add_argument("--no-progress", action="store_true")
