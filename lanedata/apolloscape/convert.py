"""``python -m lanedata.apolloscape.convert --apollo-root A --list train=LIST [--list val=LIST2 ...] --out-root R``

ApolloScape lane-marking data -> a trainable root in the CULane layout with class maps
(``dataset.classes: apolloscape``). For every image of each list (ApolloScape paths relative to A;
``image``, ``image label`` or IntRA-KD's ``image label 1 1 1 1`` lines; without a label column the
released ``Labels_roadXX/Label/..._bin.png`` beside it is used):

- ``R/<image path>``: the image, hard-linked (a copy where links are impossible);
- ``R/labels_trainid/<image path>.png``: the label as one channel of train IDs 0..35 (255:
  noise / ignored), decoded from the released colour PNG (or grey IDs) through the official table
  (:mod:`lanedata.apolloscape.labels`), full size (the crop to rows 1700.. is the configs' preprocessing);
- ``R/list/<name>_gt.txt``: ``/image /label`` lines (no existence flags: markings have none).

Every image and label is checked to exist before anything is written (one line naming the first
missing file and its list line). A label already converted and newer than its source is kept, so a
killed run resumes (``--force`` converts all again); files are written atomically, lists last.
"""
from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2

from lanedata.apolloscape import labels as apolloscape
from runtime.atomic import atomic_write_bytes, atomic_write_text, place_file
from runtime.cli import Parser, check_output_dir, run_main
from runtime.resources import worker_count
from runtime.culane import Sample, read_list
from runtime.errors import DataError

LABELS_DIR = "labels_trainid"


def source_label(sample: Sample) -> str:
    """The sample's label path relative to the ApolloScape root (its list's, else the released one)."""
    return apolloscape.sample_label(sample.image, sample.label)


def converted_label(sample: Sample) -> str:
    return f"{LABELS_DIR}/{sample.stem}.png"


def check_sources(root: Path, samples: list[Sample]) -> None:
    for sample in samples:
        if ".." in Path(sample.image).parts or ".." in Path(source_label(sample)).parts:
            raise DataError(sample.source, "paths must stay inside the ApolloScape root (no '..')", line=sample.line)
        for path, what in ((root / sample.image, "image"), (root / source_label(sample), "label map")):
            if not path.is_file():
                raise DataError(sample.source, f"{what} {path} not found", line=sample.line)


def convert_sample(root: Path, out: Path, sample: Sample, force: bool) -> bool:
    """Place the image and write the train-ID label (unless up to date); True if the label was written."""
    place_file(root / sample.image, out / sample.image)
    source, target = root / source_label(sample), out / converted_label(sample)
    if not force and target.is_file() and target.stat().st_mtime >= source.stat().st_mtime:
        return False
    ok, png = cv2.imencode(".png", apolloscape.read_label(source))
    if not ok:
        raise DataError(target, "cannot encode the label PNG")
    atomic_write_bytes(target, png.tobytes(), durable=False)
    return True


def parse_lists(items: list[str]) -> dict[str, Path]:
    """``name=path`` pairs (``train=lists/train.txt``) -> {name: path}; names unique."""
    lists: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path or "/" in name:
            raise DataError(item, "expected --list NAME=PATH (e.g. train=list/train.txt)")
        if name in lists:
            raise DataError(item, f"list name {name!r} given twice")
        lists[name] = Path(path)
    return lists


def convert(apollo_root: str | os.PathLike[str], lists: dict[str, Path], out_root: str | os.PathLike[str],
            workers: int = 4, force: bool = False, progress: bool = False) -> dict[str, int]:
    """Convert every list; returns {name: images}. Lists are written last, after every label."""
    root, out = Path(apollo_root), Path(out_root)
    if not root.is_dir():
        raise DataError(root, "ApolloScape root is not a directory")
    samples = {name: read_list(path).samples for name, path in lists.items()}
    for name, found in samples.items():
        if not found:
            raise DataError(lists[name], "the list names no images (empty file)")
        check_sources(root, found)
    unique = list({s.image: s for found in samples.values() for s in found}.values())
    from tqdm import tqdm

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in tqdm(pool.map(lambda s: convert_sample(root, out, s, force), unique), total=len(unique), unit="image",
                      desc="labels", disable=not progress, file=sys.stderr, leave=False):
            pass
    for name, found in samples.items():
        rows = [Sample(s.image, converted_label(s)).row for s in found]
        atomic_write_text(out / "list" / f"{name}_gt.txt", "\n".join(rows) + "\n")
    return {name: len(found) for name, found in samples.items()}


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m lanedata.apolloscape.convert", description=__doc__.split("\n")[2])
    parser.add_argument("--apollo-root", required=True, help="ApolloScape root (ColorImage_roadXX/, Labels_roadXX/)")
    parser.add_argument("--list", action="append", required=True, metavar="NAME=PATH",
                        help="a list of images to convert, named (train, val, test -> list/<name>_gt.txt); repeat")
    parser.add_argument("--out-root", required=True, help="the trainable root to write")
    parser.add_argument("--workers", type=worker_count, default=4)
    parser.add_argument("--force", action="store_true", help="convert every label again")
    args = parser.parse_args(argv)

    def body() -> int:
        lists = parse_lists(args.list)
        check_output_dir(args.out_root, "output root", [args.apollo_root])
        counts = convert(args.apollo_root, lists, args.out_root, args.workers, args.force, progress=sys.stderr.isatty())
        print(", ".join(f"{name}: {n} images -> {Path(args.out_root) / 'list' / f'{name}_gt.txt'}" for name, n in counts.items()))
        return 0

    return run_main(body)


if __name__ == "__main__":
    sys.exit(main())
