"""``python -m lanedata.apolloscape.synthetic --out DIR [--train N] [--val N] [--test N] [--seed S]``

A synthetic ApolloScape-style lane-marking dataset, in the official layout and class table, so that
every ApolloScape tool (the converter :mod:`lanedata.apolloscape.convert`, the official mIoU) runs on
it as on the real data::

    DIR/ColorImage_road0{1,2,3}/ColorImage/Record<NNN>/Camera 5/<stamp>_Camera_5.jpg   1640x590 JPEG
    DIR/Labels_road0{1,2,3}/Label/Record<NNN>/Camera 5/<stamp>_Camera_5_bin.png         colour-coded labels
    DIR/lists/{train,val,test}.txt      "image label" lines relative to DIR
    DIR/synthetic.json                  parameters, counts, pixels per class, timing (written last)

``road01`` is the training split, ``road02`` validation, ``road03`` test. Scenes are the CULane
generator's (:func:`~lanedata.synthetic.scene.sample_scene`) with more arrows, crossings and
marking types (:func:`marking_scene`); labels are the visible markings by class
(:mod:`~lanedata.synthetic.marking_labels`), in the official colours (:mod:`lanedata.apolloscape.labels`).
The frames keep the CULane camera (1640x590, not ApolloScape's 3384x2710): the configs in
``training/configs/synthetic/markings_*.yaml`` crop and size for it. Every image has its own seed; a
killed run resumes; writes are atomic.
"""
from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from lanedata.apolloscape import labels as apolloscape
from lanedata.synthetic import versions
from lanedata.synthetic.dataset import (
    MANIFEST,
    PARTIAL,
    SPLITS,
    SplitJob,
    add_generator_arguments,
    claim_root,
    finish,
    generator_main,
    plan_splits,
    run_figures,
    run_jobs,
)
from lanedata.synthetic.render import render_scene
from lanedata.synthetic.scene import YELLOW, Crossing, Decal, Scene, _u, sample_scene
from runtime import marking_classes
from runtime.atomic import atomic_write_bytes, atomic_write_text
from runtime.cli import Parser, non_negative_int
from runtime.culane import CULANE_HEIGHT, CULANE_WIDTH
from runtime.errors import DataError

GENERATOR_VERSION = versions.APOLLOSCAPE
ROADS = {"train": "road01", "val": "road02", "test": "road03"}
RECORD_SIZE = 100  # images per Record folder
SALT = 0xA9011  # keeps these scenes apart from the CULane set's of the same seed and index
MIX = {"normal": 0.2, "crowd": 0.13, "hlight": 0.04, "shadow": 0.06, "noline": 0.04, "arrow": 0.25, "curve": 0.05,
       "cross": 0.15, "night": 0.08}
"""Scene categories: arrows and crossings raised well above CULane's mix, so that every class is common."""
DECAL_MIX = {"straight": 0.18, "left": 0.11, "right": 0.11, "straight_left": 0.1, "straight_right": 0.1, "left_right": 0.06,
             "text": 0.12, "diamond": 0.1, "reduction": 0.12}
WORDS = ("STOP", "SLOW", "BUS", "KEEP", "30", "50", "XING")


@dataclass(frozen=True)
class Job(SplitJob):
    @property
    def image(self) -> str:
        stamp = f"170927_{self.index:09d}_Camera_5"
        return f"ColorImage_{ROADS[self.split]}/ColorImage/Record{self.index // RECORD_SIZE + 1:03d}/Camera 5/{stamp}.jpg"

    @property
    def label(self) -> str:
        return str(apolloscape.label_path(self.image))


def marking_scene(rng: np.random.Generator) -> Scene:
    """A CULane-generator scene of a category drawn from ``MIX``, then: some yellow lines dashed and
    some inner lines solid (all four line classes), arrows of every direction, words, diamonds and
    speed-reduction bars on about half the frames (more in ``arrow`` scenes), lane lines cut at
    crossings."""
    names = list(MIX)
    category = names[int(rng.choice(len(names), p=np.array([MIX[n] for n in names]) / sum(MIX.values())))]
    scene = sample_scene(rng, category)
    lane = scene.road.lane_width
    for m in scene.markings:
        if m.color == YELLOW and not m.double and rng.random() < 0.4:
            m.dashed = True
        elif m.dashed and rng.random() < 0.15:
            m.dashed = False
    count = int(rng.integers(1, 4)) if category == "arrow" or rng.random() < 0.45 else 0
    kinds = list(DECAL_MIX)
    p = np.array([DECAL_MIX[k] for k in kinds])
    scene.decals = [d for d in scene.decals if d.kind == "text"] if category != "arrow" else []
    for _ in range(count):
        kind = kinds[int(rng.choice(len(kinds), p=p / p.sum()))]
        centre = float(rng.choice([-1, 0, 0, 1])) * lane
        wide = kind in ("diamond", "reduction")
        scene.decals.append(Decal(
            kind=kind, lateral=centre + (0.0 if wide else _u(rng, -0.2, 0.2)), distance=_u(rng, 6, 35),
            length=_u(rng, 2.0, 3.5) if kind == "reduction" else _u(rng, 4.0, 7.0) if kind == "diamond" else _u(rng, 3.5, 6.0),
            width=lane * _u(rng, 0.75, 0.9) if kind == "reduction" else _u(rng, 1.4, 2.2) if kind == "diamond" else _u(rng, 1.0, 1.8),
            text=str(rng.choice(WORDS)), wear=_u(rng, 0.0, 0.35)))
    if scene.crossing is not None:
        c: Crossing = scene.crossing
        scene.decals = [d for d in scene.decals if d.distance + d.length < c.distance - 2.5 or d.distance > c.far_lanes_from]
    return scene


@dataclass(frozen=True)
class Result:
    pixels: np.ndarray  # (36,) int64 labelled pixels per train ID
    skipped: bool


def image_rng(job: Job) -> np.random.Generator:
    return job.rng(SPLITS, SALT)


def make_image(job: Job) -> Result:
    """Render one frame; write its JPEG and colour label (skipped when both are there)."""
    root = Path(job.root)
    image, label = root / job.image, root / job.label
    if image.is_file() and label.is_file():
        try:
            ids = apolloscape.read_label(label)
            return Result(np.bincount(ids[ids != marking_classes.IGNORE].ravel(), minlength=marking_classes.NUM_CLASSES), True)
        except DataError:
            pass  # an unreadable label (disk trouble) is made again
    scene = marking_scene(image_rng(job))
    frame = render_scene(scene, classes=True)
    assert frame.classes is not None
    ok, jpg = cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, scene.light.jpeg_quality])
    ok2, png = cv2.imencode(".png", apolloscape.color_label(frame.classes)[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not (ok and ok2):
        raise RuntimeError(f"OpenCV could not encode {job.image}")
    atomic_write_bytes(image, jpg.tobytes())
    atomic_write_bytes(label, png.tobytes())
    return Result(np.bincount(frame.classes.ravel(), minlength=marking_classes.NUM_CLASSES), False)


def plan(root: Path, counts: dict[str, int], seed: int) -> list[Job]:
    return plan_splits(Job, root, {split: counts[split] for split in SPLITS}, seed)


def _remove_owned(root: Path) -> None:
    for road in ROADS.values():
        for prefix in ("ColorImage_", "Labels_"):
            shutil.rmtree(root / f"{prefix}{road}", ignore_errors=True)
    for split in SPLITS:
        (root / "lists" / f"{split}.txt").unlink(missing_ok=True)
    for name in (MANIFEST, PARTIAL):
        (root / name).unlink(missing_ok=True)


def generate(out: str | os.PathLike[str], train: int, val: int, test: int, seed: int = 0, workers: int | None = None,
             force: bool = False, progress: bool = True) -> dict:
    """Generate (or resume, or confirm up to date) the set; returns its manifest."""
    root = Path(out)
    counts = {"train": train, "val": val, "test": test}
    params = {**counts, "seed": seed, "version": GENERATOR_VERSION}
    done = claim_root(root, params, force, _remove_owned)
    if done is not None:
        return done
    jobs = plan(root, counts, seed)
    workers = workers or len(os.sched_getaffinity(0))
    results, elapsed = run_jobs(make_image, jobs, workers, "synthetic ApolloScape", progress)
    for split in SPLITS:
        rows = [f"{j.image} {j.label}\n" for j in jobs if j.split == split]
        atomic_write_text(root / "lists" / f"{split}.txt", "".join(rows))
    pixels = {split: np.sum([r.pixels for j, r in zip(jobs, results) if j.split == split] or [np.zeros(1)], axis=0)
              for split in SPLITS}
    return finish(root, {
        "synthetic": True,
        "generator": "lanedata.apolloscape.synthetic",
        "classes": "apolloscape",
        "params": params,
        "image_size": [CULANE_WIDTH, CULANE_HEIGHT],
        "counts": counts,
        "pixels_per_class": {split: {marking_classes.CLASS_NAMES[k]: int(n) for k, n in enumerate(pixels[split]) if n}
                             for split in SPLITS},
        **run_figures([r.skipped for r in results], elapsed, workers),
    })


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m lanedata.apolloscape.synthetic",
                    description="Generate a synthetic ApolloScape-style lane-marking dataset in the official layout.")
    add_generator_arguments(parser, "data/apolloscape-synth-src")
    parser.add_argument("--train", type=non_negative_int, default=1000, help="training images (road01)")
    parser.add_argument("--val", type=non_negative_int, default=100, help="validation images (road02)")
    parser.add_argument("--test", type=non_negative_int, default=200, help="test images (road03)")
    args = parser.parse_args(argv)
    return generator_main(args.out, lambda: generate(args.out, args.train, args.val, args.test, args.seed, workers=args.workers,
                                                     force=args.force, progress=not args.no_progress),
                          "synthetic ApolloScape", lambda m: f"; {len(m['pixels_per_class']['train'])} classes in the training split")


if __name__ == "__main__":
    sys.exit(main())
