"""``python -m lanedata.llamas.convert --llamas-root L --split train [--split valid] --out-root R [--split-valid] [--images color|gray]``

LLAMAS -> a trainable root in the CULane layout (lanes task, ``dataset.classes: culane``), so
every CULane tool applies. For every label ``L/labels/<split>/<rec>/<ts>.json`` (cleaned as the
official reader cleans it: :func:`lanedata.llamas.metric.read_label`):

- ``R/<color_images|grayscale_images>/<split>/<rec>/<ts>_<kind>_rect.png``: the image, hard-linked
  (a copy where links are impossible);
- ``R/labels_multiclass/<split>/<rec>/<ts>.png``: the official multi-class segmentation label
  (:func:`lanedata.llamas.metric.segmentation_label`: background 0, l1 1, l0 2, r0 3, r1 4, each marker 0.1 m
  wide in the world), whose values are CULane's lane IDs left to right;
- ``.lines.txt`` beside the image: the four lanes' marker end points (pixels), bottom first, for
  CULane F1;
- ``R/labels/<split>/<rec>/<ts>.json``: the label JSON, hard-linked, so that R is a LLAMAS root too
  (``lanedata.llamas.predict`` and the official mAP run on it);
- ``R/list/<split>_gt.txt`` (``/image /label e1 e2 e3 e4``, a flag per lane class drawn) and
  ``R/list/<split>.txt`` (images).

The official test split has no public labels; IntRA-KD splits the official validation set into its
own val / test (10,029 / 10,815 images; lists not published). ``--split-valid`` does so here: each
recording's frames in time order, the first half ``val``, the rest ``test`` (our choice: whole
stretches of a drive, so that neighbouring frames rarely straddle the two; both see every
recording). They become the LLAMAS splits ``val`` and ``test`` of R (images and labels linked
under those names) with ``list/val_gt.txt``, ``list/test.txt``, ``list/test_gt.txt`` and
``list/test_split/test0_llamas.txt`` (the CULane F1 tools' one category). The paper's crop (rows 333.., 1276x384 -> 960x288) is the
configs' preprocessing (``lanedata.llamas.metric.CROP_TOP``, ``NET_SIZE``). Every label file is read and
every image checked before anything is written (one line naming the first bad file); a label
already converted and newer than its JSON is kept (a killed run resumes; ``--force`` redoes all);
files are written atomically, lists last. ``--force`` first removes the output's folders of the splits it
writes (images, label JSONs, label PNGs: links and files of an earlier conversion, never the source's),
since the official tools score every label a split folder holds.
"""
from __future__ import annotations

import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from lanedata.llamas import metric as llamas
from runtime.atomic import atomic_write_bytes, atomic_write_text, place_file
from runtime.cli import Parser, check_output_dir, run_main
from runtime.resources import worker_count
from runtime.culane import Sample
from runtime.errors import DataError
from runtime.lines import write_lines_file

LABELS_DIR = "labels_multiclass"
LANE_IDS = ("l1", "l0", "r0", "r1")  # CULane lane IDs 1..4, left to right


@dataclass(frozen=True)
class Entry:
    """One labelled image: its cleaned label, and paths relative to the roots."""

    label: llamas.Label
    json: Path  # absolute
    source: Path  # the image, absolute
    image: str  # relative to the output root (the source's own relative path unless renamed by --split-valid)
    target: str  # the label PNG, relative to the output root

    @property
    def json_link(self) -> str:
        """The label JSON's place in the output root: ``labels/<split>/<rec>/<ts>.json`` of the image's split."""
        split, rec = Path(self.image).parts[1:3]
        return f"labels/{split}/{rec}/{self.json.name}"

    @property
    def stem(self) -> str:
        return self.image.rsplit(".", 1)[0]


def read_split(root: Path, split: str, kind: str) -> list[Entry]:
    """Every label of a split, read and cleaned, with its image checked to exist."""
    entries = []
    for path in llamas.list_labels(root / "labels", split):
        image = llamas.image_path(path, kind=kind)
        if not image.is_file():
            raise DataError(path, f"its image {image} not found")
        relative = image.relative_to(root).as_posix()
        rec_ts = path.relative_to(root / "labels" / split).with_suffix(".png").as_posix()
        entries.append(Entry(llamas.read_label(path), path, image, relative, f"{LABELS_DIR}/{split}/{rec_ts}"))
    return entries


def renamed(entry: Entry, split: str, new: str) -> Entry:
    """The entry under another split name (its image, label PNG and JSON placed there)."""
    def move(relative: str) -> str:
        parts = Path(relative).parts
        return Path(parts[0], new, *parts[2:]).as_posix() if parts[1] == split else relative

    return Entry(entry.label, entry.json, entry.source, move(entry.image), move(entry.target))


def split_valid(entries: list[Entry]) -> dict[str, list[Entry]]:
    """IntRA-KD's val / test of the official valid split: per recording, in time order, the first half val, the rest test."""
    recordings: dict[str, list[Entry]] = {}
    for entry in entries:
        recordings.setdefault(entry.json.parent.name, []).append(entry)
    out: dict[str, list[Entry]] = {"val": [], "test": []}
    for frames in recordings.values():
        frames = sorted(frames, key=lambda e: e.json.name)
        half = len(frames) // 2
        out["val"] += [renamed(e, "valid", "val") for e in frames[:half]]
        out["test"] += [renamed(e, "valid", "test") for e in frames[half:]]
    return out


def lane_points(label: llamas.Label) -> list[np.ndarray]:
    """(N, 2) float x, y px of each of the four lanes present, markers' end points, bottom first."""
    out = []
    for lane in sorted((lane for lane in label.lanes if lane.lane_id in LANE_IDS), key=lambda lane: LANE_IDS.index(lane.lane_id)):
        points = {p for m in lane.markers for p in (m.pixel_start, m.pixel_end)}
        out.append(np.array(sorted(points, key=lambda p: -p[1]), np.float64))
    return out


def convert_entry(root: Path, out: Path, entry: Entry, force: bool) -> tuple[int, ...]:
    """Place the image, write label and ``.lines.txt`` (unless up to date); the existence flags."""
    place_file(entry.source, out / entry.image)
    place_file(entry.json, out / entry.json_link)
    target = out / entry.target
    if force or not target.is_file() or target.stat().st_mtime < entry.json.stat().st_mtime:
        label = llamas.segmentation_label(entry.label, multi_class=True)
        ok, png = cv2.imencode(".png", label)
        if not ok:
            raise DataError(target, "cannot encode the label PNG")
        atomic_write_bytes(target, png.tobytes(), durable=False)
        write_lines_file(out / f"{entry.stem}.lines.txt", lane_points(entry.label), durable=False)
    else:  # kept from an earlier run: its flags from the file
        label = cv2.imread(str(target), cv2.IMREAD_GRAYSCALE)
    return tuple(int((label == c).any()) for c in range(1, 5))


def convert(llamas_root: str | Path, splits: list[str], out_root: str | Path, kind: str = "color", workers: int = 4,
            force: bool = False, progress: bool = False, valid_to_val_test: bool = False) -> dict[str, int]:
    """Convert each split (``valid_to_val_test``: ``valid`` as IntRA-KD's val and test, :func:`split_valid`);
    returns {split: images}. Everything is read and checked before writing."""
    root, out = Path(llamas_root), Path(out_root)
    if not root.is_dir():
        raise DataError(root, "LLAMAS root is not a directory")
    if out.resolve() == root.resolve():
        raise DataError(out, "the output root is the LLAMAS root: choose another --out-root")
    entries = {split: read_split(root, split, kind) for split in splits}
    if valid_to_val_test:
        if "valid" not in entries:
            raise DataError(root, "--split-valid divides the valid split: add --split valid")
        entries = {**{k: v for k, v in entries.items() if k != "valid"}, **split_valid(entries["valid"])}
        if not entries["val"]:
            raise DataError(root / "labels" / "valid", "too few images to split into val and test (no recording has 2 frames)")
    if force:  # nothing of an earlier conversion may stay in a split folder: the official tools read whole folders
        for split in entries:
            for folder in (f"{'color' if kind == 'color' else 'grayscale'}_images", "labels", LABELS_DIR):
                shutil.rmtree(out / folder / split, ignore_errors=True)
    from tqdm import tqdm

    for split, found in entries.items():
        with ThreadPoolExecutor(max_workers=workers) as pool:
            flags = list(tqdm(pool.map(lambda e: convert_entry(root, out, e, force), found), total=len(found), unit="image",
                              desc=split, disable=not progress, file=sys.stderr, leave=False))
        atomic_write_text(out / "list" / f"{split}_gt.txt",
                          "\n".join(Sample(e.image, e.target, f).row for e, f in zip(found, flags)) + "\n")
        atomic_write_text(out / "list" / f"{split}.txt", "\n".join(Sample(e.image).row for e in found) + "\n")
        if split == "test":
            atomic_write_text(out / "list" / "test_split" / "test0_llamas.txt", "\n".join(Sample(e.image).row for e in found) + "\n")
    return {split: len(found) for split, found in entries.items()}


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m lanedata.llamas.convert", description=__doc__.split("\n")[2])
    parser.add_argument("--llamas-root", required=True, help="LLAMAS root (labels/, color_images/ or grayscale_images/)")
    parser.add_argument("--split", action="append", required=True, choices=("train", "valid"), help="split to convert; repeat")
    parser.add_argument("--out-root", required=True, help="the trainable root to write")
    parser.add_argument("--split-valid", action="store_true", help="valid as IntRA-KD's val and test halves (per recording, in time order)")
    parser.add_argument("--images", choices=("color", "gray"), default="color")
    parser.add_argument("--workers", type=worker_count, default=4)
    parser.add_argument("--force", action="store_true", help="convert every label again")
    args = parser.parse_args(argv)

    def body() -> int:
        check_output_dir(args.out_root, "output root", [args.llamas_root])
        counts = convert(args.llamas_root, list(dict.fromkeys(args.split)), args.out_root, args.images, args.workers, args.force,
                         progress=sys.stderr.isatty(), valid_to_val_test=args.split_valid)
        print(", ".join(f"{split}: {n} images -> {Path(args.out_root) / 'list' / f'{split}_gt.txt'}" for split, n in counts.items()))
        return 0

    return run_main(body)


if __name__ == "__main__":
    sys.exit(main())
