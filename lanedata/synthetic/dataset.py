"""Write a synthetic dataset in the exact CULane layout.

::

    OUT/driver_synth_{train,val,test}/<clip>.MP4/<nnnnn>.jpg      images, 1640x590 JPEG
    OUT/driver_synth_*/<clip>.MP4/<nnnnn>.lines.txt               lanes (CULane format)
    OUT/laneseg_label_w16/driver_synth_{train,val}/...png         labels, 16 px lines, 0..4
    OUT/laneseg_label_w16_test/driver_synth_test/...png           test labels (for mIoU)
    OUT/list/train_gt.txt, val_gt.txt   "/img.jpg /label.png e1 e2 e3 e4"
    OUT/list/train.txt, val.txt, test.txt   "/img.jpg"
    OUT/list/test_split/test{0..8}_<category>.txt   "img.jpg" (no leading slash, as CULane)
    OUT/synthetic.json   parameters, counts per split and category, generator version, timing

Every image has its own seed (from the dataset seed, its split and its index), so the output is
identical for a seed whatever the number of worker processes, and a killed run resumes by
skipping the files already written (all writes are atomic). ``synthetic.json`` is written last:
its presence means the dataset is complete.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

import cv2
import numpy as np

from lanedata.synthetic import versions
from lanedata.synthetic.render import render_scene
from lanedata.synthetic.scene import TRAIN_MIX, sample_scene
from runtime.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from runtime.cli import check_output_dir, fail
from runtime.resources import worker_count
from runtime.culane import CATEGORIES, CULANE_HEIGHT, CULANE_WIDTH, split_list_name
from runtime.errors import DataError
from runtime.lines import format_lines
from runtime.parallel import worker_context

log = logging.getLogger(__name__)
J = TypeVar("J")
R = TypeVar("R")

GENERATOR_VERSION = versions.CULANE
SPLITS = ("train", "val", "test")
CLIP_SIZE = 100  # images per clip folder
MANIFEST = "synthetic.json"
PARTIAL = "synthetic.partial.json"


@dataclass(frozen=True)
class Job:
    """One image to generate: where, and from which seed."""

    root: str
    split: str
    index: int
    category: str | None  # fixed for test images; drawn from TRAIN_MIX otherwise
    seed: int

    @property
    def image(self) -> str:
        clip = f"{self.category}_{self.index // CLIP_SIZE:04d}" if self.split == "test" else f"clip_{self.index // CLIP_SIZE:04d}"
        return f"driver_synth_{self.split}/{clip}.MP4/{self.index % CLIP_SIZE:05d}.jpg"

    @property
    def label(self) -> str:
        folder = "laneseg_label_w16_test" if self.split == "test" else "laneseg_label_w16"
        return f"{folder}/{self.image[:-4]}.png"


@dataclass(frozen=True)
class Result:
    image: str
    label: str
    exist: tuple[int, ...]
    category: str
    skipped: bool


def image_rng(seed: int, split: str, index: int, category: str | None) -> np.random.Generator:
    """The generator of one image: independent of worker count and of the other images."""
    key = [seed, SPLITS.index(split), index] + ([CATEGORIES.index(category)] if category else [])
    return np.random.default_rng(np.random.SeedSequence(key))


def pick_category(rng: np.random.Generator) -> str:
    names = list(TRAIN_MIX)
    p = np.array([TRAIN_MIX[n] for n in names])
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def _worker_init() -> None:
    cv2.setNumThreads(1)


def make_image(job: Job) -> Result:
    """Render one image and write its JPEG, ``.lines.txt`` and label PNG (skipped if present)."""
    root = Path(job.root)
    rng = image_rng(job.seed, job.split, job.index, job.category)
    category = job.category or pick_category(rng)
    paths = [root / job.image, root / (job.image[:-4] + ".lines.txt"), root / job.label]
    if all(p.is_file() for p in paths):
        # Written atomically by an earlier, interrupted run of the same parameters; an
        # unreadable label (disk trouble) is regenerated rather than trusted.
        label = cv2.imread(str(paths[2]), cv2.IMREAD_UNCHANGED)
        if label is not None:
            exist = tuple(int(v) for v in np.isin(np.arange(1, 5), label))
            return Result(job.image, job.label, exist, category, skipped=True)
    scene = sample_scene(rng, category)
    frame = render_scene(scene)
    ok, jpg = cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, scene.light.jpeg_quality])
    ok2, png = cv2.imencode(".png", frame.label, [cv2.IMWRITE_PNG_COMPRESSION, 1])  # decodes 2x faster than the default
    if not (ok and ok2):
        raise RuntimeError(f"OpenCV could not encode {job.image}")
    atomic_write_bytes(paths[0], jpg.tobytes())
    atomic_write_text(paths[1], format_lines([frame.lanes[k] for k in sorted(frame.lanes)]))
    atomic_write_bytes(paths[2], png.tobytes())
    return Result(job.image, job.label, frame.exist, category, skipped=False)


def plan(root: Path, train: int, val: int, test_per_category: int, seed: int) -> list[Job]:
    jobs = [Job(str(root), "train", i, None, seed) for i in range(train)]
    jobs += [Job(str(root), "val", i, None, seed) for i in range(val)]
    for c in CATEGORIES:
        jobs += [Job(str(root), "test", i, c, seed) for i in range(test_per_category)]
    return jobs


# What the generator owns inside --out (and --force may delete): never a real dataset's folders.
OWNED_DIRS = tuple(f"{prefix}driver_synth_{split}" for split in SPLITS for prefix in ("", "laneseg_label_w16/", "laneseg_label_w16_test/"))
OWNED_LISTS = ("train_gt.txt", "val_gt.txt", "train.txt", "val.txt", "test.txt") + tuple(f"test_split/{split_list_name(c)}" for c in CATEGORIES)


def _remove_owned(root: Path) -> None:
    for name in OWNED_DIRS:
        shutil.rmtree(root / name, ignore_errors=True)
    for name in OWNED_LISTS:
        (root / "list" / name).unlink(missing_ok=True)
    for name in (MANIFEST, PARTIAL):
        (root / name).unlink(missing_ok=True)


def _read_params(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())["params"]
    except (OSError, ValueError, KeyError):
        return None


def claim_root(root: Path, params: dict, force: bool, remove_owned: Callable[[Path], None]) -> dict | None:
    """Make ``root`` ours for a dataset of ``params``: the manifest if it is already complete (nothing to
    do), else None after clearing what another run left (``force`` or other parameters) and writing the
    partial marker. Refuses a folder that holds something else, or a dataset of other parameters
    without ``force`` (FileExistsError)."""
    existing = _read_params(root / MANIFEST)
    if existing == params and not force:
        log.info("%s is up to date (%s)", root, MANIFEST)
        return json.loads((root / MANIFEST).read_text())
    partial = _read_params(root / PARTIAL)
    ours = existing is not None or partial is not None
    if not ours and root.is_dir() and any(root.iterdir()):
        raise FileExistsError(f"{root}: not empty and not a synthetic dataset (no {MANIFEST}); choose an empty or new --out")
    stale = (existing is not None and existing != params) or (partial is not None and partial != params)
    if stale and not force:
        raise FileExistsError(
            f"{root}: holds a synthetic dataset made with other parameters "
            f"({existing or partial}); pass --force to replace it, or choose another --out"
        )
    if ours and (force or stale):
        remove_owned(root)
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_json(root / PARTIAL, {"params": params})
    return None


def run_jobs(make: Callable[[J], R], jobs: list[J], workers: int, desc: str, progress: bool) -> tuple[list[R], float]:
    """``make`` of every job, in order, on ``workers`` processes (a tqdm bar with ``progress``);
    the results and the seconds it took."""
    start = time.perf_counter()
    results: list[R] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc=desc, unit="img")
    if workers <= 1:
        for job in jobs:
            results.append(make(job))
            if bar:
                bar.update()
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=worker_context(), initializer=_worker_init) as pool:
            for result in pool.map(make, jobs, chunksize=8):
                results.append(result)
                if bar:
                    bar.update()
    if bar:
        bar.close()
    return results, time.perf_counter() - start


def finish(root: Path, manifest: dict) -> dict:
    """Write the manifest (the dataset is complete) and drop the partial marker."""
    atomic_write_json(root / MANIFEST, manifest)
    (root / PARTIAL).unlink(missing_ok=True)
    return manifest


@dataclass(frozen=True)
class SplitJob:
    """One image of a generator whose images are numbered per split: its root, split, index and the set's seed."""

    root: str
    split: str
    index: int
    seed: int

    def rng(self, splits: tuple[str, ...], salt: int) -> np.random.Generator:
        """The image's own random stream (``salt`` keeps one generator's scenes apart from another's)."""
        return np.random.default_rng(np.random.SeedSequence([self.seed, splits.index(self.split), self.index, salt]))


SJ = TypeVar("SJ", bound=SplitJob)


def plan_splits(job: Callable[[str, str, int, int], SJ], root: Path, counts: dict[str, int], seed: int) -> list[SJ]:
    """Every image's job, split by split in ``counts``' order."""
    return [job(str(root), split, i, seed) for split, n in counts.items() for i in range(n)]


def run_figures(skipped: list[bool], elapsed: float, workers: int) -> dict:
    """A manifest's record of the run: images generated and kept from an earlier run, seconds, workers,
    ms per image per worker."""
    return {"generated": sum(not s for s in skipped), "resumed_skipped": sum(skipped), "seconds": round(elapsed, 2), "workers": workers,
            "ms_per_image_per_worker": round(1000 * elapsed * workers / max(1, len(skipped)), 2)}


def generator_main(out: str, make: Callable[[], dict], what: str, extra: Callable[[dict], str] = lambda manifest: "") -> int:
    """A generator's command-line body: check ``out``, ``make()`` the manifest, print one line about it
    (``what`` names the set; ``extra`` adds to the line), or one ``error:`` line (exit 2)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        check_output_dir(out, "dataset folder")
        manifest = make()
    except (DataError, OSError, ValueError, RuntimeError) as err:
        return fail(err)
    print(f"{what} at {out}: {manifest['counts']} images, {manifest['seconds']} s "
          f"({manifest['ms_per_image_per_worker']} ms/image/worker, {manifest['workers']} workers){extra(manifest)}")
    return 0


def add_generator_arguments(parser: argparse.ArgumentParser, example: str) -> None:
    """The options every synthetic generator's command line has: --out (``example``), --seed, --workers, --force, --no-progress."""
    parser.add_argument("--out", required=True, help=f"dataset root to write (e.g. {example})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=worker_count, default=len(os.sched_getaffinity(0)), help="worker processes (default: usable CPUs)")
    parser.add_argument("--force", action="store_true", help="replace a dataset generated with other parameters")
    parser.add_argument("--no-progress", action="store_true")


def generate_dataset(
    out: str | os.PathLike[str],
    train: int,
    val: int,
    test_per_category: int,
    seed: int = 0,
    workers: int | None = None,
    force: bool = False,
    progress: bool = True,
) -> dict:
    """Generate (or resume, or confirm up to date) a synthetic CULane dataset; returns the manifest."""
    root = Path(out)
    params = {"train": train, "val": val, "test_per_category": test_per_category, "seed": seed, "version": GENERATOR_VERSION}
    done = claim_root(root, params, force, _remove_owned)
    if done is not None:
        return done
    jobs = plan(root, train, val, test_per_category, seed)
    workers = workers or len(os.sched_getaffinity(0))
    results, elapsed = run_jobs(make_image, jobs, workers, "synthetic CULane", progress)
    write_lists(root, jobs, results)
    return finish(root, {
        "synthetic": True,
        "generator": "lanedata.synthetic",
        "params": params,
        "image_size": [CULANE_WIDTH, CULANE_HEIGHT],
        "counts": {s: sum(1 for j in jobs if j.split == s) for s in SPLITS},
        "categories": {
            s: dict(Counter(r.category for j, r in zip(jobs, results) if j.split == s)) for s in SPLITS
        },
        **run_figures([r.skipped for r in results], elapsed, workers),
    })


def write_lists(root: Path, jobs: list[Job], results: list[Result]) -> None:
    """CULane list files for the generated images."""
    lists: dict[str, list[str]] = {"train_gt.txt": [], "val_gt.txt": [], "train.txt": [], "val.txt": [], "test.txt": []}
    splits: dict[str, list[str]] = {c: [] for c in CATEGORIES}
    for job, r in zip(jobs, results):
        if job.split in ("train", "val"):
            flags = " ".join(str(e) for e in r.exist)
            lists[f"{job.split}_gt.txt"].append(f"/{r.image} /{r.label} {flags}")
            lists[f"{job.split}.txt"].append(f"/{r.image}")
        else:
            lists["test.txt"].append(f"/{r.image}")
            splits[r.category].append(r.image)
    for name, rows in lists.items():
        atomic_write_text(root / "list" / name, "".join(row + "\n" for row in rows))
    for category, rows in splits.items():
        atomic_write_text(root / "list" / "test_split" / split_list_name(category), "".join(row + "\n" for row in rows))
