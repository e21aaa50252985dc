"""The seeded subset of a real CULane-format root that a reduced profile runs on, and the view that serves it.

:func:`plan` draws the lists (checked to the last file), :func:`write_view` writes the view folder (a
dataset root whose ``list/`` holds the drawn lists and whose other entries link to the source's folders),
:func:`describe` says what was drawn; ``python -m pipeline.subset`` is the command, :mod:`pipeline.run`
checks a subset's source with :func:`plan` before any stage.

Draws are without replacement, seeded (``numpy.random.default_rng(seed)``; a list shorter than its
count is taken whole), and keep the source lists' order. Before anything is written, the source
must have ``list/train_gt.txt``, ``list/val_gt.txt`` and ``list/test_split/``, and every drawn
image, label and ``.lines.txt`` must exist (one line naming the first missing file otherwise); the
view is built in a temporary folder and moved into place.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtime.atomic import atomic_write_json, staged_directory
from runtime.culane import CulaneDataset, Sample, read_list
from runtime.errors import DataError
from runtime.culane import default_lists

MAKE_LABELS = "python -m lanedata.labels.make_labels --data-root {root} --list {name}"


@dataclass(frozen=True)
class Drawn:
    """The samples drawn from one source list, and the list's size."""

    source: Path
    samples: list[Sample]
    of: int

    @property
    def rows(self) -> list[str]:
        """The drawn lines, as list lines (:attr:`runtime.culane.Sample.row`)."""
        return [s.row for s in self.samples]


def gt_list(root: Path, name: str) -> Path:
    """``ROOT/list/<name>_gt.txt``; a missing one names the command that makes it from ``.lines.txt``."""
    path = root / "list" / f"{name}_gt.txt"
    if not path.is_file():
        hint = MAKE_LABELS.format(root=root, name=f"{name}.txt") if (root / "list" / f"{name}.txt").is_file() else "or make it from lanes"
        raise DataError(path, f"list file not found: a reduced profile trains on labelled frames ({hint})")
    return path


def draw(path: Path, count: int, rng: np.random.Generator) -> Drawn:
    """``count`` lines of a list, drawn without replacement, in the list's order."""
    samples = read_list(path).samples
    if not samples:
        raise DataError(path, "the list names no images (empty file)")
    keep = np.sort(rng.choice(len(samples), size=min(count, len(samples)), replace=False))
    return Drawn(path, [samples[i] for i in keep], len(samples))


def check_files(root: Path, drawn: Drawn, labels: bool, lanes: bool) -> None:
    """Every drawn image (and label, ``.lines.txt``) exists; :class:`DataError` naming the first that does not."""
    data = CulaneDataset(root)
    for sample in drawn.samples:
        wanted = [(sample.image, "image")]
        if labels and sample.label:
            wanted.append((sample.label, "label map"))
        if lanes:
            wanted.append((sample.lines_name, "lane annotation (.lines.txt)"))
        for relative, what in wanted:
            if not data.path(relative).is_file():
                hint = f" (make labels with {MAKE_LABELS.format(root=root, name=Path(drawn.source).name.replace('_gt', ''))})" if what == "label map" else ""
                raise DataError(data.path(relative), f"{what} not found (listed in {drawn.source}, line {sample.line}){hint}")


def plan(source: str | os.PathLike[str], train: int, val: int, test_per_category: int, seed: int) -> dict[str, Drawn]:
    """The drawn lists (keys: train_gt, val_gt, test_split/<file name>), every file checked to exist."""
    root = Path(source).resolve()
    if not (root / "list").is_dir():
        raise DataError(root, "not a CULane-format dataset root (no list/ folder)")
    if train < 1:
        raise DataError(root, "the subset would be empty: the profile draws no training images")
    rng = np.random.default_rng(seed)
    drawn = {"train_gt": draw(gt_list(root, "train"), train, rng), "val_gt": draw(gt_list(root, "val"), max(val, 1), rng)}
    for category, path in default_lists(root).items():
        drawn[f"test_split/{path.name}"] = draw(path, max(test_per_category, 1), rng)
    for key, item in drawn.items():
        check_files(root, item, labels=key.endswith("_gt"), lanes=key.startswith("test_split/"))
    return drawn


def write_view(source: str | os.PathLike[str], out: str | os.PathLike[str], drawn: dict[str, Drawn], seed: int) -> Path:
    """The view folder (see the module docstring): built beside ``out``, then swapped in for any earlier one."""
    root, out = Path(source).resolve(), Path(out)
    fresh, stale = out.with_name(f".{out.name}.new"), out.with_name(f".{out.name}.old")
    for leftover in (fresh, stale):
        shutil.rmtree(leftover, ignore_errors=True)
    with staged_directory(fresh) as stage:
        for entry in sorted(root.iterdir()):
            if entry.name != "list" and not entry.name.startswith("."):
                (stage / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
        lists = stage / "list"
        (lists / "test_split").mkdir(parents=True)
        for key, item in drawn.items():
            (lists / (key if key.startswith("test_split/") else f"{key}.txt")).write_text("".join(r + "\n" for r in item.rows))
        for name in ("train", "val"):
            (lists / f"{name}.txt").write_text("".join(f"/{s.image}\n" for s in drawn[f"{name}_gt"].samples))
        tests = [f"/{s.image}\n" for key, item in drawn.items() if key.startswith("test_split/") for s in item.samples]
        (lists / "test.txt").write_text("".join(dict.fromkeys(tests)))
        atomic_write_json(stage / "subset.json", {
            "source": str(root), "seed": seed,
            "lists": {key: {"source": str(item.source), "drawn": len(item.rows), "of": item.of} for key, item in drawn.items()}})
    if out.is_dir() and not out.is_symlink():
        os.replace(out, stale)
    os.replace(fresh, out)
    shutil.rmtree(stale, ignore_errors=True)
    return out


def describe(drawn: dict[str, Drawn]) -> str:
    """``24 of 1000 train, 6 of 100 val, 2-2 of 30-40 test per category (9 categories)``."""
    tests = [item for key, item in drawn.items() if key.startswith("test_split/")]
    per = sorted({len(t.rows) for t in tests})
    return (f"{len(drawn['train_gt'].rows)} of {drawn['train_gt'].of} train, {len(drawn['val_gt'].rows)} of {drawn['val_gt'].of} val, "
            f"{'-'.join(map(str, (per[0], per[-1]) if len(per) > 1 else per))} test per category ({len(tests)} categories)")
