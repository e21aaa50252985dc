"""``python -m lanedata.llamas.synthetic --out DIR [--train N] [--valid N] [--seed S]``

A synthetic LLAMAS-style dataset in the official layout, so that every LLAMAS tool (the label
reader and segmentation targets of :mod:`lanedata.llamas.metric`, the converter
:mod:`lanedata.llamas.convert`, the official mAP) runs on it as on the real data::

    DIR/color_images/<split>/<rec>/<ts>_color_rect.png   1276x717 colour frames
    DIR/labels/<split>/<rec>/<ts>.json                   markers of every lane, the official schema
    DIR/synthetic.json                                   parameters, counts, timing (written last)

Splits ``train`` and ``valid`` (the real test split has no public labels; IntRA-KD divides
``valid`` into its own val / test, ``python -m lanedata.llamas.convert --split-valid``).

Scenes are the CULane generator's (:func:`~lanedata.synthetic.scene.sample_scene`; highway-like
categories only: no crossings or arrows) seen through a LLAMAS-like camera instead of the CULane
dashcam (:func:`llamas_camera`: 1276x717 rectified frames, focal length ~1380 px, vanishing point
near row 369 as in the official sample; no hood, margins, overlay or lens: LLAMAS frames are
rectified and cropped). Labels are written as LLAMAS' are, from the road geometry (its labels come
from a map, so worn, hidden or missing paint is still labelled, and the official reader's
renumbering never shifts an outer line inwards): every interval of a line's paint pattern is one
marker (a dash; a solid line cut into ``SOLID_PIECE`` m pieces; a double line's on its inner line), with world end points in camera
coordinates (x right, y down = camera height, z forward; metres) and their projections through the
``projection_matrix`` K (rounded pixels; ``pixel_start`` the near end). Markers are cut to the
frame, as the real ones (whose pixels lie in columns 0..1275, rows 0..716; the official spline
tools index rows 0..716 by them): from the distance of the bottom row 716 and, where a line leaves
the frame sideways, to the distance where it crosses column 0 or 1275 (:func:`in_frame`). Lanes are
named by their side and rank from the ego lane (l0 / r0 its borders, l1 / r1 the next; LLAMAS'
``lane_id``). Types as the published labels (the sample ``1419287247_0942030000.json`` of
karstenBehrendt/benchmarks_website): every marker number a string, ``projection_matrix`` JSON
numbers (the official reader fails on strings there). Every image has its own seed; a killed run
resumes; writes are atomic.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from lanedata.llamas import metric as llamas
from lanedata.synthetic import versions
from lanedata.synthetic.dataset import (
    MANIFEST,
    PARTIAL,
    SplitJob,
    add_generator_arguments,
    claim_root,
    finish,
    generator_main,
    plan_splits,
    run_figures,
    run_jobs,
)
from lanedata.synthetic.geometry import Camera, Road
from lanedata.synthetic.render import painted_intervals, render_scene
from lanedata.synthetic.scene import Marking, Scene, _u, sample_scene
from runtime.atomic import atomic_write_bytes, atomic_write_text
from runtime.cli import Parser, non_negative_int
from runtime.errors import DataError

GENERATOR_VERSION = versions.LLAMAS
SPLITS = ("train", "valid")
RECORD_SIZE = 50  # frames per recording folder
SALT = 0x11A3A5  # keeps these scenes apart from the other synthetic sets' of the same seed and index
MIX = {"normal": 0.35, "crowd": 0.15, "hlight": 0.05, "shadow": 0.1, "noline": 0.05, "curve": 0.1, "night": 0.2}
"""Scene categories: LLAMAS is highway driving (no crossings, no arrows)."""
SOLID_PIECE = 1.5  # m: a solid line's markers
FAR = 80.0  # m: markers end here at the latest (a line's own end first)


@dataclass(frozen=True)
class Job(SplitJob):
    @property
    def stem(self) -> str:
        """``<rec>/<ts>``: 50 frames a recording, 0.1 s apart."""
        rec = f"images-synth-{self.split}-{self.index // RECORD_SIZE:03d}"
        stamp = 1419283521 + self.index // 10
        return f"{rec}/{stamp}_{(self.index % 10) * 100_000_000:010d}"

    @property
    def label(self) -> Path:
        return Path(self.root) / "labels" / self.split / f"{self.stem}.json"

    @property
    def image(self) -> Path:
        return llamas.image_path(self.label)


def llamas_camera(rng: np.random.Generator, culane: Camera) -> Camera:
    """A camera of LLAMAS' frame: 1276x717, focal 1330-1430 px, principal point 630-665, vanishing
    point on rows 355-385 (the official sample: fx 1382, cx 648, cy 369); the CULane camera's height."""
    return Camera(width=llamas.IMAGE_WIDTH, height_px=llamas.IMAGE_HEIGHT, focal=_u(rng, 1330, 1430), cx=_u(rng, 630, 665),
                  horizon=_u(rng, 355, 385), height=culane.height)


def retarget(scene: Scene, camera: Camera) -> Scene:
    """The scene through ``camera`` instead of its own, with no rig; the light's pixel positions (glare,
    street lights) moved with the view (same direction from the vanishing point, scaled by focal length)."""
    old, s = scene.camera, camera.focal / scene.camera.focal

    def move(u: float, v: float) -> tuple[float, float]:
        return camera.cx + (u - old.cx) * s, camera.horizon + (v - old.horizon) * s

    light = scene.light
    glare = None if light.glare is None else (*move(*light.glare[:2]), light.glare[2] * s, light.glare[3])
    light = dataclasses.replace(light, glare=glare, street_lights=[move(u, v) for u, v in light.street_lights])
    return dataclasses.replace(scene, camera=camera, rig=None, light=light)


def llamas_scene(rng: np.random.Generator) -> Scene:
    """A highway-like CULane-generator scene of a category drawn from ``MIX``, through a LLAMAS camera."""
    names = list(MIX)
    category = names[int(rng.choice(len(names), p=np.array([MIX[n] for n in names]) / sum(MIX.values())))]
    scene = sample_scene(rng, category)
    scene.decals = []
    return retarget(scene, llamas_camera(rng, scene.camera))


def lane_ids(markings: list[Marking]) -> dict[int, str]:
    """Position in ``markings`` -> LLAMAS lane ID: lines left of the camera l0, l1, ... outwards, right r0, r1, ..."""
    left = sorted((i for i, m in enumerate(markings) if m.index < 0), key=lambda i: -markings[i].index)
    right = sorted((i for i, m in enumerate(markings) if m.index >= 0), key=lambda i: markings[i].index)
    return {**{i: f"l{k}" for k, i in enumerate(left)}, **{i: f"r{k}" for k, i in enumerate(right)}}


def marker_intervals(m: Marking, near: float) -> list[tuple[float, float]]:
    """(start, end) distances (m) of a line's markers: its dashes, or its solid stretch in pieces."""
    far_line = dataclasses.replace(m, end=min(m.end, FAR))
    out = []
    for a, b in painted_intervals(far_line, near, 0.0):
        cuts = np.linspace(a, b, max(1, int(np.ceil((b - a) / SOLID_PIECE))) + 1) if not m.dashed else np.array([a, b])
        out += [(float(p), float(q)) for p, q in zip(cuts[:-1], cuts[1:])]
    return out


def _s(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")


def bottom_distance(cam: Camera) -> float:
    """Distance (m) of the ground on the frame's last row, ``height_px - 1`` (716): markers start there."""
    return float(cam.row_to_distance(cam.height_px - 1))


IN_FRAME_SAMPLES = 17  # points per marker where in_frame looks for the frame's side edges
IN_FRAME_STEPS = 50  # bisection steps for an edge crossing (to well below 1e-9 m on a marker)


def in_frame(cam: Camera, road: Road, offset: float, a: float, b: float) -> list[tuple[float, float]]:
    """The parts of the marker ``[a, b]`` (m, ``a`` >= :func:`bottom_distance`) of the line at
    lateral ``offset`` whose projection lies in columns 0..W-1 (each crossing of a side edge found
    by bisection, on the inner side), so that its rounded pixels are in the frame."""
    def inside(z: np.ndarray) -> np.ndarray:
        u = cam.project(road.lateral(offset, z), z)[0]
        return (u >= 0) & (u <= cam.width - 1)

    z = np.linspace(a, b, IN_FRAME_SAMPLES)
    ok = inside(z)
    if ok.all():
        return [(a, b)]

    def edge(z_in: float, z_out: float) -> float:
        for _ in range(IN_FRAME_STEPS):
            mid = (z_in + z_out) / 2
            z_in, z_out = (mid, z_out) if inside(np.array([mid]))[0] else (z_in, mid)
        return z_in

    out, i = [], 0
    while i < len(z):
        if not ok[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(z) and ok[j + 1]:
            j += 1
        start = a if i == 0 else edge(z[i], z[i - 1])
        end = b if j == len(z) - 1 else edge(z[j], z[j + 1])
        if end > start:
            out.append((float(start), float(end)))
        i = j + 1
    return out


def label_content(scene: Scene, name: str) -> dict:
    """The scene's LLAMAS label: ``projection_matrix`` K and each line's markers (unpainted lines too,
    as a map has them), cut to the frame; keys and types as the published labels."""
    cam, road = scene.camera, scene.road
    f, cx, cy = (float(_s(v)) for v in (cam.focal, cam.cx, cam.horizon))
    k = [[f, 0, cx], [0, f, cy], [0, 0, 1]]  # numbers, as the published labels (0 and 1 as there)
    near = bottom_distance(cam)
    lanes, marker_id = [], 0
    for position, lane_id in lane_ids(scene.markings).items():
        m = scene.markings[position]
        offset = m.index * road.lane_width - (np.sign(m.index) * (m.paint_width + 0.12) / 2 if m.double else 0.0)  # render.paint_markings' gap
        markers = []
        for a, b in (piece for interval in marker_intervals(m, near) for piece in in_frame(cam, road, offset, *interval)):
            z = np.array([a, b])
            x = road.lateral(offset, z)
            u, v = cam.project(x, z)
            px = [(int(round(u[i])), int(round(v[i]))) for i in (0, 1)]
            if not all(0 <= c < cam.width and 0 <= r < cam.height_px for c, r in px):
                raise RuntimeError(f"marker outside the frame: {px}")  # in_frame's promise broken: a bug here
            ends = [({"x": _s(x[i]), "y": _s(cam.height), "z": _s(z[i])}, {"x": str(px[i][0]), "y": str(px[i][1])})
                    for i in (0, 1)]
            marker_id += 1
            markers.append({"lane_marker_id": str(marker_id), "world_start": ends[0][0], "pixel_start": ends[0][1],
                            "world_end": ends[1][0], "pixel_end": ends[1][1]})  # the published key order
        if markers:
            lanes.append({"lane_id": lane_id, "markers": markers})
    return {"image_name": name, "projection_matrix": k, "lanes": lanes}


def image_rng(job: Job) -> np.random.Generator:
    return job.rng(SPLITS, SALT)


def make_image(job: Job) -> bool:
    """Render one frame; write its PNG and label JSON (skipped, returning True, when both are there and readable)."""
    if job.image.is_file() and job.label.is_file():
        try:
            llamas.read_label(job.label)
            return True
        except DataError:
            pass  # an unreadable label (disk trouble) is made again
    scene = llamas_scene(image_rng(job))
    frame = render_scene(scene)
    ok, png = cv2.imencode(".png", frame.image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise RuntimeError(f"OpenCV could not encode {job.image}")
    atomic_write_bytes(job.image, png.tobytes())
    atomic_write_text(job.label, json.dumps(label_content(scene, job.stem.rsplit("/", 1)[1])))
    return False


def plan(root: Path, counts: dict[str, int], seed: int) -> list[Job]:
    return plan_splits(Job, root, {split: counts[split] for split in SPLITS}, seed)


def _remove_owned(root: Path) -> None:
    for folder in ("color_images", "labels"):
        shutil.rmtree(root / folder, ignore_errors=True)
    for name in (MANIFEST, PARTIAL):
        (root / name).unlink(missing_ok=True)


def generate(out: str | os.PathLike[str], train: int, valid: int, seed: int = 0, workers: int | None = None,
             force: bool = False, progress: bool = True) -> dict:
    """Generate (or resume, or confirm up to date) the set; returns its manifest."""
    root = Path(out)
    counts = {"train": train, "valid": valid}
    params = {**counts, "seed": seed, "version": GENERATOR_VERSION}
    done = claim_root(root, params, force, _remove_owned)
    if done is not None:
        return done
    jobs = plan(root, counts, seed)
    workers = workers or len(os.sched_getaffinity(0))
    skipped, elapsed = run_jobs(make_image, jobs, workers, "synthetic LLAMAS", progress)
    return finish(root, {
        "synthetic": True,
        "generator": "lanedata.llamas.synthetic",
        "params": params,
        "image_size": [llamas.IMAGE_WIDTH, llamas.IMAGE_HEIGHT],
        "counts": counts,
        **run_figures(skipped, elapsed, workers),
    })


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m lanedata.llamas.synthetic",
                    description="Generate a synthetic LLAMAS-style lane dataset in the official layout.")
    add_generator_arguments(parser, "data/llamas-synth-src")
    parser.add_argument("--train", type=non_negative_int, default=1000, help="training images")
    parser.add_argument("--valid", type=non_negative_int, default=200, help="validation images (split into val / test by the converter)")
    args = parser.parse_args(argv)
    return generator_main(args.out, lambda: generate(args.out, args.train, args.valid, args.seed, workers=args.workers,
                                                     force=args.force, progress=not args.no_progress), "synthetic LLAMAS")


if __name__ == "__main__":
    sys.exit(main())
