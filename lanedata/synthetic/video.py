"""A temporally continuous synthetic drive: MP4 video plus the ground-truth lanes of every frame.

The car drives a multi-lane road whose curvature comes and goes (straights joined to curves by
smooth transitions), drifting in its lane and changing lanes now and then; dashes scroll with the
distance driven, vehicles are overtaken and overtake, and a stretch of the drive is at night
(dusk fade in, dawn fade out). Lane IDs follow CULane: 2 and 3 bound the ego lane, 1 and 4 the
lanes beside it, re-assigned whenever the car crosses a line.

Outputs, for ``--video DIR/drive.mp4``::

    DIR/drive.mp4                    1640x590, 30 fps, mp4v
    DIR/drive_gt/<nnnnn>.lines.txt   lanes of frame n (CULane format)
    DIR/drive_gt/list.txt            "<nnnnn>.jpg" per frame: the evaluator's list
    DIR/drive.json                   fps, size, frames, per-frame condition, night range, seed

so ``python -m runtime.evaluate_culane --data-root DIR/drive_gt --pred-dir P --list DIR/drive_gt/list.txt``
scores predictions written per frame as ``P/<nnnnn>.lines.txt``.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from runtime.atomic import atomic_write_json
from runtime.lines import format_lines
from lanedata.synthetic.geometry import Road
from lanedata.synthetic.render import render_scene
from lanedata.synthetic.rig import sample_rig
from lanedata.synthetic.scene import WHITE, YELLOW, Light, Marking, Scene, sample_camera
from lanedata.synthetic.vehicles import TWO_WHEELERS, Vehicle, sample_vehicles

FPS = 30
LOOKAHEAD = 160.0  # metres of road described ahead of the car
STEP = 1.0  # metres between curvature samples


@dataclass
class Car:
    lane_pos: float  # lateral position on the road (m, from the road's left line)
    distance: float  # along the road (m)
    speed: float  # m/s
    vehicle: Vehicle  # kind, size, colour (its lateral and distance are set per frame)


def curvature_profile(rng: np.random.Generator, length: float) -> np.ndarray:
    """Curvature (1/m) every ``STEP`` m: straights and curves joined by raised-cosine ramps."""
    n = int(length / STEP) + 1
    kappa = np.zeros(n)
    pos = int(rng.uniform(40, 120) / STEP)
    while pos < n:
        ramp, body = int(rng.uniform(30, 60) / STEP), int(rng.uniform(60, 200) / STEP)
        peak = float(rng.choice([-1, 1])) * rng.uniform(2e-3, 9e-3)
        shape = np.concatenate([0.5 - 0.5 * np.cos(np.linspace(0, np.pi, ramp)), np.ones(body), 0.5 + 0.5 * np.cos(np.linspace(0, np.pi, ramp))])
        end = min(n, pos + len(shape))
        kappa[pos:end] = peak * shape[: end - pos]
        pos = end + int(rng.uniform(80, 250) / STEP)
    return kappa


class Drive:
    """State of the drive; :meth:`scene` gives the scene of the current frame."""

    def __init__(self, rng: np.random.Generator, frames: int) -> None:
        self.rng = rng
        self.frames = frames
        self.lane_width = rng.uniform(3.4, 3.8)
        self.camera, self.mount, window = sample_camera(rng, frame="band")  # a full 1640x590 frame: the demo video
        self.rig = sample_rig(rng, self.camera, window)
        self.n_lanes = 3
        self.speed = rng.uniform(22, 28)
        length = self.speed * frames / FPS + LOOKAHEAD + 50
        self.kappa = curvature_profile(rng, length)
        self.travelled = 0.0
        self.pos = 1.5 * self.lane_width  # centre of the middle lane
        self.target = self.pos
        self.yaw = 0.0
        self.night_from, self.night_to = int(frames * 0.55), int(frames * 0.8)
        self.cars: list[Car] = [self._new_car(rng.uniform(15, 90)) for _ in range(4)]
        self.base = [self._line(k) for k in range(self.n_lanes + 1)]
        self.scenery_seed = int(rng.integers(0, 2**31))
        self.asphalt = (95.0, 96.0, 98.0)
        self.offroad = (60.0, 105.0, 75.0)

    def _line(self, k: int) -> Marking:
        edge = k in (0, self.n_lanes)
        return Marking(
            index=0.0, lane_id=None, dashed=not edge, color=YELLOW if k == 0 else WHITE,
            paint_width=0.15, dash_length=3.0, dash_period=12.0, dash_phase=float(self.rng.uniform(0, 12)),
            wear=float(self.rng.uniform(0.0, 0.3)), end=95.0,
        )

    def _new_car(self, ahead: float) -> Car:
        vehicle = sample_vehicles(self.rng, Road(), [0.0], 1, min_distance=10.0, max_distance=11.0)[0]
        return Car(
            lane_pos=(int(self.rng.integers(0, self.n_lanes)) + 0.5) * self.lane_width,
            distance=self.travelled + ahead,
            speed=self.speed + self.rng.uniform(-6, 4),
            vehicle=vehicle,
        )

    def darkness(self, frame: int) -> float:
        """0 by day, 1 at night, ramps over 45 frames at dusk and dawn."""
        ramp = 45
        if frame < self.night_from - ramp or frame >= self.night_to + ramp:
            return 0.0
        if frame < self.night_from:
            return (frame - self.night_from + ramp) / ramp
        if frame >= self.night_to:
            return 1.0 - (frame - self.night_to) / ramp
        return 1.0

    def step(self) -> None:
        dt = 1.0 / FPS
        self.travelled += self.speed * dt
        if abs(self.pos - self.target) < 0.05 and self.rng.random() < 0.004:  # start a lane change
            lane = int(self.pos // self.lane_width) + int(self.rng.choice([-1, 1]))
            lane = int(np.clip(lane, 0, self.n_lanes - 1))
            self.target = (lane + 0.5) * self.lane_width
        drift = 0.25 * np.sin(self.travelled / 37.0)
        goal = self.target + drift
        self.pos += np.clip(goal - self.pos, -1.0 * dt, 1.0 * dt)  # at most 1 m/s sideways
        self.yaw = 0.9 * self.yaw + 0.1 * float(np.clip(goal - self.pos, -1, 1)) * 0.01
        for i, car in enumerate(self.cars):
            car.distance += car.speed * dt
            ahead = car.distance - self.travelled
            if ahead < 4.0 or ahead > 130.0:
                self.cars[i] = self._new_car(self.rng.uniform(60, 110) if ahead < 4 else self.rng.uniform(6, 20))

    def road(self) -> tuple[Road, float]:
        """The road ahead as a sampled centre line (relative to the camera's heading), and the
        lateral position of the ego lane's centre on the road (m)."""
        z = np.arange(0.0, LOOKAHEAD + STEP, STEP)
        i0 = int(self.travelled / STEP)
        k = self.kappa[i0 : i0 + len(z)]
        heading = self.yaw + np.concatenate([[0.0], np.cumsum(k[:-1]) * STEP])
        lateral = np.concatenate([[0.0], np.cumsum(heading[:-1]) * STEP])
        ego_lane = int(np.clip(self.pos // self.lane_width, 0, self.n_lanes - 1))
        ego_centre = (ego_lane + 0.5) * self.lane_width
        return Road(lane_width=self.lane_width, ego_offset=self.pos - ego_centre, profile=(z, lateral)), ego_centre

    def scene(self, frame: int) -> Scene:
        road, ego_centre = self.road()
        markings = []
        for k, base in enumerate(self.base):
            index = (k * self.lane_width - ego_centre) / self.lane_width
            lane_id = {-1.5: 1, -0.5: 2, 0.5: 3, 1.5: 4}.get(round(index * 2) / 2)
            markings.append(replace(base, index=index, lane_id=lane_id))
        dark = self.darkness(frame)
        light = Light(night=dark > 0, ambient=1.0 - 0.88 * dark, noise=2.5 + 6.0 * dark, blur=0.6, jpeg_quality=90)
        vehicles = [
            replace(c.vehicle, lateral=c.lane_pos - ego_centre + (c.vehicle.lateral if c.vehicle.kind in TWO_WHEELERS else 0.0),
                    distance=c.distance - self.travelled)
            for c in self.cars
        ]
        scene = Scene(
            category="night" if dark > 0.5 else ("curve" if abs(self.kappa[int(self.travelled / STEP) + 30]) > 3e-3 else "normal"),
            camera=self.camera, road=road, markings=markings,
            road_left=-ego_centre / self.lane_width - 0.3,
            road_right=(self.n_lanes * self.lane_width - ego_centre) / self.lane_width + 0.3,
            asphalt=self.asphalt, offroad=self.offroad, sky_top=(200.0, 150.0, 90.0), sky_horizon=(225.0, 215.0, 205.0),
            light=light, annotate_until=85.0, vehicles=vehicles, scenery_seed=self.scenery_seed,
            noise_seed=frame, travelled=self.travelled, rig=self.rig,
        )
        if any(4 <= v.distance <= 60 and abs(v.lateral) < 1.5 * self.lane_width for v in vehicles) and scene.category == "normal":
            scene.category = "crowd"
        return scene


def generate_video(path: str | os.PathLike[str], frames: int, seed: int = 0, progress: bool = True) -> dict:
    """Render the drive to ``path`` (MP4) with per-frame ground truth; returns the sidecar dict.

    The video, the ground-truth folder and the sidecar are replaced as a set: everything is
    written under temporary names first, the old sidecar is removed before the swap and the new
    one written last, so a sidecar always describes the video and ground truth beside it.
    """
    path = Path(path)
    if path.suffix.lower() != ".mp4":
        raise ValueError(f"{path}: the video must be an .mp4 file")
    if frames < 1:
        raise ValueError("--frames must be at least 1")
    path.parent.mkdir(parents=True, exist_ok=True)
    gt_dir = path.with_name(path.stem + "_gt")
    tmp_gt = path.with_name(f".{path.stem}_gt.partial")
    tmp_video = path.with_name(f".{path.stem}.partial.mp4")
    sidecar_path = path.with_suffix(".json")
    shutil.rmtree(tmp_gt, ignore_errors=True)
    tmp_gt.mkdir()
    drive = Drive(np.random.default_rng(np.random.SeedSequence([seed, 0xD21FE])), frames)
    cam = drive.camera
    writer = cv2.VideoWriter(str(tmp_video), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (cam.width, cam.height_px))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write MP4 video to {tmp_video} (no mp4v encoder)")
    conditions = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=frames, desc="synthetic drive", unit="frame")
    try:
        for n in range(frames):
            scene = drive.scene(n)
            frame = render_scene(scene)
            writer.write(frame.image)
            (tmp_gt / f"{n:05d}.lines.txt").write_text(format_lines([frame.lanes[k] for k in sorted(frame.lanes)]))
            conditions.append(scene.category)
            drive.step()
            if bar:
                bar.update()
        (tmp_gt / "list.txt").write_text("".join(f"{n:05d}.jpg\n" for n in range(frames)))
    except BaseException:
        writer.release()
        tmp_video.unlink(missing_ok=True)
        shutil.rmtree(tmp_gt, ignore_errors=True)
        raise
    finally:
        if bar:
            bar.close()
    writer.release()
    sidecar_path.unlink(missing_ok=True)
    os.replace(tmp_video, path)
    shutil.rmtree(gt_dir, ignore_errors=True)
    os.replace(tmp_gt, gt_dir)
    sidecar = {
        "video": path.name,
        "fps": FPS,
        "width": cam.width,
        "height": cam.height_px,
        "frames": frames,
        "seed": seed,
        "ground_truth": gt_dir.name,
        "night_frames": [drive.night_from, drive.night_to],
        "conditions": conditions,
    }
    atomic_write_json(sidecar_path, sidecar)
    return sidecar
