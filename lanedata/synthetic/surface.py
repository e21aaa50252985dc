"""The tarmac's own texture: what makes real asphalt look unlike a flat grey polygon.

Patches of repaired asphalt, darker tyre tracks in each lane's wheel paths, longitudinal and
transverse cracks and sealed seams (thin dark lines along the road: lane look-alikes), ghosts of
old removed markings, and a wet sheen that mirrors the sky towards the horizon. Sampled once per
scene (:func:`sample_surface`), drawn at the render scale onto the ground (:func:`draw_surface`),
before the paint, so paint covers them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from lanedata.synthetic.geometry import Camera, Road
from lanedata.synthetic.primitives import distances, fill, ground_quad, polyline, road_points, strip


@dataclass
class Patch:
    """A repaired rectangle of tarmac: lateral x0..x1 (m, road frame), distance z0..z1, tone (x asphalt)."""

    x0: float
    x1: float
    z0: float
    z1: float
    tone: float


@dataclass
class Crack:
    """A crack or sealed seam: ground polyline (lateral m, distance m), width (m), darkness 0..1."""

    points: np.ndarray  # (N, 2) lateral, distance
    width: float
    darkness: float


@dataclass
class Surface:
    patches: list[Patch] = field(default_factory=list)
    tracks: list[float] = field(default_factory=list)  # lateral centres (m) of tyre tracks
    track_width: float = 0.5
    track_tone: float = 0.9  # x asphalt in the tracks (< 1 darker, > 1 polished)
    cracks: list[Crack] = field(default_factory=list)
    ghosts: list[float] = field(default_factory=list)  # lateral offsets of removed old lines
    ghost_alpha: float = 0.0
    wet: float = 0.0  # 0..1


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def sample_surface(rng: np.random.Generator, lane_width: float, lane_centres: list[float], left: float, right: float,
                   night: bool) -> Surface:
    """Surface details of a road whose tarmac spans lateral ``left..right`` (m, from the ego-lane centre)."""
    s = Surface()
    for _ in range(int(rng.integers(0, 5)) if rng.random() < 0.6 else 0):
        x0 = _u(rng, left, right - 0.5)
        z0 = _u(rng, 3, 60)
        s.patches.append(Patch(x0, min(right, x0 + _u(rng, 0.5, 4.0)), z0, z0 + _u(rng, 1.0, 20.0), _u(rng, 0.7, 1.3)))
    if rng.random() < 0.6:
        s.track_width = _u(rng, 0.35, 0.7)
        s.track_tone = _u(rng, 0.82, 0.95) if rng.random() < 0.7 else _u(rng, 1.05, 1.15)
        for c in lane_centres:
            s.tracks += [c - _u(rng, 0.7, 0.9), c + _u(rng, 0.7, 0.9)]
    for _ in range(int(rng.integers(0, 7)) if rng.random() < 0.6 else 0):
        if rng.random() < 0.6:  # longitudinal: along the road, wandering a little
            z = np.linspace(0, _u(rng, 5, 60), 12) + _u(rng, 2, 40)
            x = _u(rng, left, right) + np.cumsum(rng.normal(0, 0.06, len(z)))
        else:  # transverse
            x = np.linspace(0, _u(rng, 0.5, 6.0), 10) + _u(rng, left, right - 0.5)
            z = _u(rng, 3, 50) + np.cumsum(rng.normal(0, 0.05, len(x)))
        s.cracks.append(Crack(np.stack([x, z], 1), _u(rng, 0.02, 0.08), _u(rng, 0.3, 0.8)))
    if rng.random() < 0.2:  # sealed seam along the road: long, straight, dark, lane-like
        x = _u(rng, left, right)
        s.cracks.append(Crack(np.array([[x, 2.0], [x, _u(rng, 40, 120)]]), _u(rng, 0.03, 0.12), _u(rng, 0.4, 0.9)))
    if rng.random() < 0.12:
        s.ghosts = [_u(rng, left, right) for _ in range(int(rng.integers(1, 3)))]
        s.ghost_alpha = _u(rng, 0.08, 0.3)
    s.wet = _u(rng, 0.3, 0.9) if rng.random() < (0.25 if night else 0.08) else 0.0
    return s


def draw_surface(img: np.ndarray, cam: Camera, road: Road, surface: Surface, road_mask: np.ndarray, sky: np.ndarray,
                 near: float) -> None:
    """Draw the surface details into ``img`` ((h, w, 3) float32) inside ``road_mask`` ((h, w) float32 0..1)."""
    h, w = img.shape[:2]
    tone = np.ones((h, w), np.float32)
    for p in surface.patches:
        shift = float(road.lateral(0.0, np.array((p.z0 + p.z1) / 2)))
        fill(tone, ground_quad(cam, shift + p.x0, shift + p.x1, p.z0, p.z1), p.tone)
    if surface.tracks:
        z = distances(near, 90.0)
        for x in surface.tracks:
            fill(tone, strip(cam, road, x, surface.track_width / 2, z), surface.track_tone)
        tone = cv2.GaussianBlur(tone, (0, 0), 1.2)
    for c in surface.cracks:
        z = np.maximum(c.points[:, 1], near)
        pts = road_points(cam, road, c.points[:, 0], z)
        px = max(1, int(round(c.width * cam.focal / float(np.median(z)))))
        polyline(tone, pts, 1.0 - c.darkness, px)
    for x in surface.ghosts:
        fill(tone, strip(cam, road, x, 0.08, distances(near, 80.0)), 1.0 + surface.ghost_alpha)
    m = road_mask[:, :, None]
    img *= (1.0 - m) + m * tone[:, :, None]
    if surface.wet:
        # Wet tarmac: darker, and mirrors the sky more towards the horizon (grazing angle).
        hz = int(np.clip(np.ceil(cam.horizon), 0, h - 1))
        rows = np.arange(hz, h, dtype=np.float32)
        graze = np.exp(-(rows - cam.horizon) / np.float32(max(8.0, 0.12 * (h - cam.horizon))))[:, None, None]
        wet = np.float32(surface.wet)
        band = img[hz:]
        band *= 1.0 - 0.35 * wet * m[hz:]
        band += (wet * graze * m[hz:]) * (sky.astype(np.float32) * 0.8 - band)
