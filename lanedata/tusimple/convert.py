"""``python -m lanedata.tusimple.convert --tusimple-root T --label-json label_data_0313.json [--label-json ...] --out-root R [--list-name train]``

TuSimple in the CULane layout, so that every CULane tool (training, :mod:`runtime.evaluate_culane`,
:mod:`lanedata.labels.make_labels`) applies. Each ``--label-json`` (a name under T, or a path) holds
one JSON object per line, ``{"raw_file": "clips/.../20.jpg", "lanes": [[x, ...], ...],
"h_samples": [y, ...]}`` (x in px at each h_samples row, -2 = no lane there; blank lines are
skipped). For every entry:

- the image ``T/<raw_file>`` is placed at ``R/<raw_file>``: **hard-linked** when T and R share a
  file system (no extra space; the two names are one file), **copied** (with its times) where a
  link is refused (another file system, no permission); an image already there and equal to the
  source (the same file, or equal size and time, or equal bytes) is kept;
- its lanes are written to ``R/<raw_file without extension>.lines.txt`` in CULane's format: one
  lane per text line, ``x y x y ...`` over its rows with x >= 0 only, bottom row first; a lane with
  fewer than 2 such points is dropped. All other lanes are kept, up to TuSimple's 5;
- ``R/list/<list-name>.txt`` lists the images, ``/<raw_file>`` per line, in the order read.

Then :func:`lanedata.labels.make_labels.make_labels` draws ``R/laneseg_label_w16/...png`` and writes
``R/list/<list-name>_gt.txt`` with the existence flags. It names lanes by geometry
(:mod:`lanedata.labels.lane_ids`): two left of the ego vehicle (IDs 1, 2), two right (3, 4). A 5th
TuSimple lane (a lane change) therefore gets no ID: it is in the ``.lines.txt`` (so
:mod:`runtime.evaluate_culane` counts it as an annotated lane) but not in the label map nor the
flags; likewise a lane that lane_ids takes for the outer line of a double line (mean distance to
its neighbour < 120 px).

Every label file, entry and image header is checked before anything is written; a problem is one
line naming the label file and line (a malformed JSON line, a missing key, a lane whose length
differs from h_samples, a missing or unreadable image, a raw_file listed twice) and exit status 2.
Every file is written atomically; an unchanged ``.lines.txt`` is not rewritten (its time stays, so
make_labels keeps its label), so a killed run resumes where it stopped.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from lanedata.labels.label_maps import add_drawing_arguments, make_labels, read_size
from lanedata.tusimple.metric import GT_KEYS, checked_h_samples, checked_lanes, read_json_lines
from runtime.atomic import atomic_write_text, place_file
from runtime.cli import Parser, check_output_dir, run_main
from runtime.culane import Sample
from runtime.errors import DataError
from runtime.lines import format_lines

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
PROGRESS_MIN_ENTRIES = 100  # a progress bar for runs with at least this many entries


@dataclass(frozen=True)
class Entry:
    """One labelled TuSimple frame: its image path (relative, no leading ``/``) and its lanes."""

    raw_file: str
    lanes: tuple[np.ndarray, ...]  # each (N >= 2, 2) x, y px, bottom row first
    read: int  # lanes in the JSON entry
    source: str  # label file
    line: int

    @property
    def sample(self) -> Sample:
        return Sample(image=self.raw_file)


def lane_points(xs: Sequence[float], ys: Sequence[float]) -> np.ndarray:
    """(N, 2) x, y points of a TuSimple lane where x >= 0, bottom row (largest y) first."""
    pts = np.array([(x, y) for x, y in zip(xs, ys) if x >= 0], dtype=np.float64).reshape(-1, 2)
    return pts[np.argsort(-pts[:, 1], kind="stable")]


def _raw_file(value: str, path: Path, line: int) -> str:
    """The entry's image path relative to the root (a leading ``/`` is read as the root, as in
    CULane lists), checked to stay inside it and to name a JPEG or PNG."""
    rel = PurePosixPath(value.lstrip("/"))
    if ".." in rel.parts or not rel.parts:
        raise DataError(path, f"raw_file {value!r} leaves the TuSimple root", line=line)
    if rel.suffix.lower() not in IMAGE_EXTENSIONS:
        raise DataError(path, f"raw_file {value!r} is not a .jpg, .jpeg or .png image", line=line)
    return str(rel)


def read_label_file(path: Path) -> list[Entry]:
    """Every entry of one TuSimple label file, checked (see the module docstring)."""
    entries = []
    for number, obj in read_json_lines(path, GT_KEYS):
        ys = checked_h_samples(obj, path, number)
        lanes = checked_lanes(obj, len(ys), path, number)
        points = tuple(p for p in (lane_points(xs, ys) for xs in lanes) if len(p) >= 2)
        entries.append(Entry(_raw_file(obj["raw_file"], path, number), points, len(lanes), str(path), number))
    return entries


def resolve_label_file(root: Path, name: str) -> Path:
    """A label file given as a name under the TuSimple root, or as a path."""
    for candidate in (root / name, Path(name)):
        if candidate.is_file():
            return candidate
    raise DataError(name, f"label file not found (looked in {root} and as given)")


def read_entries(root: Path, label_files: Iterable[Path]) -> list[Entry]:
    """The entries of all label files, in order; a raw_file named twice is refused."""
    seen: dict[str, Entry] = {}
    for path in label_files:
        for entry in read_label_file(path):
            if entry.raw_file in seen:
                first = seen[entry.raw_file]
                raise DataError(path, f"raw_file {entry.raw_file!r} is already labelled at {first.source}:{first.line}", line=entry.line)
            seen[entry.raw_file] = entry
    return list(seen.values())


def check_image(root: Path, entry: Entry) -> None:
    """The entry's image exists and is a JPEG or PNG (its header is read), else :class:`DataError` naming the entry."""
    try:
        read_size(root / entry.raw_file)
    except DataError as err:
        raise DataError(entry.source, f"{err.problem}: {root / entry.raw_file}", line=entry.line) from None


def write_lines(target: Path, lanes: Sequence[np.ndarray]) -> bool:
    """Write the lanes as a ``.lines.txt`` unless the same text is there; True if written."""
    text = format_lines(lanes)
    try:
        if target.read_text(encoding="utf-8") == text:
            return False
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    atomic_write_text(target, text, durable=False)
    return True


def _progress(iterable, total: int, enabled: bool, desc: str):
    if not enabled or total < PROGRESS_MIN_ENTRIES:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="frame", file=sys.stderr, leave=False)


def _list_file_name(name: str) -> str:
    stem = name[:-4] if name.endswith(".txt") else name
    if not stem or "/" in stem or "\\" in stem or stem in (".", ".."):
        raise DataError(name, "--list-name must be a plain name such as 'train' (written as ROOT/list/<name>.txt)")
    if stem.endswith("_gt"):
        raise DataError(name, "--list-name must not end in '_gt' (make_labels writes <name>_gt.txt beside it)")
    return f"{stem}.txt"


def convert(tusimple_root: str | os.PathLike[str], label_jsons: Sequence[str], out_root: str | os.PathLike[str],
            list_name: str = "train", workers: int = 4, force: bool = False, progress: bool = False) -> dict[str, int | str]:
    """Convert the entries of ``label_jsons`` (see the module docstring); returns the counts."""
    root, out = Path(tusimple_root), Path(out_root)
    if not root.is_dir():
        raise DataError(root, "TuSimple root is not a directory")
    list_file = _list_file_name(list_name)
    if not label_jsons:
        raise DataError(root, "no label file given (--label-json)")
    entries = read_entries(root, [resolve_label_file(root, name) for name in label_jsons])
    check_output_dir(out, "output root")
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(_progress(pool.map(lambda e: check_image(root, e), entries), len(entries), progress, "checking images"))
        placed = list(_progress(pool.map(lambda e: place_file(root / e.raw_file, out / e.raw_file), entries),
                                len(entries), progress, "placing images"))
        written = sum(_progress(pool.map(lambda e: write_lines(out / e.sample.lines_name, e.lanes), entries),
                                len(entries), progress, "writing lanes"))
    atomic_write_text(out / "list" / list_file, "".join(e.sample.row + "\n" for e in entries))
    labels = make_labels(out, list_file, workers=workers, force=force, progress=progress)
    return {"entries": len(entries), "linked": placed.count("linked"), "copied": placed.count("copied"),
            "kept": placed.count("kept"), "lines_written": written, "lanes_read": sum(e.read for e in entries),
            "lanes_written": sum(len(e.lanes) for e in entries), "list": str(out / "list" / list_file),
            "labels_drawn": labels["drawn"], "lanes_labelled": labels["lanes_labelled"], "gt_list": labels["list"]}


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m lanedata.tusimple.convert", description="TuSimple labels in the CULane layout.")
    parser.add_argument("--tusimple-root", required=True, help="TuSimple root holding clips/ and the label files")
    parser.add_argument("--label-json", action="append", required=True,
                        help="TuSimple label file, JSON lines (a name under the root, or a path; repeatable)")
    parser.add_argument("--out-root", required=True, help="CULane-format root to write (may be the TuSimple root)")
    parser.add_argument("--list-name", default="train", help="list to write: ROOT/list/<name>.txt and <name>_gt.txt (default train)")
    add_drawing_arguments(parser)
    args = parser.parse_args(argv)

    def body() -> int:
        c = convert(args.tusimple_root, args.label_json, args.out_root, args.list_name, args.workers, args.force,
                    progress=sys.stderr.isatty() and not args.no_progress)
        print(f"tusimple: {c['entries']} frames (images {c['linked']} linked, {c['copied']} copied, {c['kept']} kept); "
              f"lanes: {c['lanes_read']} read, {c['lanes_written']} written ({c['lines_written']} .lines.txt written), "
              f"{c['lanes_labelled']} labelled; {c['labels_drawn']} labels drawn; wrote {c['list']} and {c['gt_list']}")
        return 0

    return run_main(body)


if __name__ == "__main__":
    sys.exit(main())
