"""Drawing primitives shared by the synthetic renderer's modules (pixels at the render scale).

Ground shapes follow the road: a strip at a lateral offset is sampled at distances 1.5 % apart
(dense near the camera) and projected through the pinhole :class:`Camera`.
"""
from __future__ import annotations

import cv2
import numpy as np

from lanedata.synthetic.geometry import Camera, Road

SHIFT = 4  # sub-pixel bits for OpenCV polygon drawing
ONE = 1 << SHIFT


def fill(canvas: np.ndarray, polygon: np.ndarray, value: float | tuple[float, ...] | np.ndarray) -> None:
    """Fill an image-space polygon ((N, 2) float pixels) with sub-pixel anti-aliased edges."""
    colour = tuple(float(c) for c in value) if isinstance(value, (tuple, list, np.ndarray)) else float(value)
    pts = np.rint(np.clip(polygon, -1e5, 1e5) * ONE).astype(np.int32).reshape(-1, 1, 2)
    cv2.fillPoly(canvas, [pts], colour, lineType=cv2.LINE_AA, shift=SHIFT)


def polyline(canvas: np.ndarray, points: np.ndarray, value: float | tuple[float, ...], thickness: int) -> None:
    """Anti-aliased open polyline through (N, 2) float pixels."""
    colour = tuple(float(c) for c in value) if isinstance(value, (tuple, list, np.ndarray)) else float(value)
    pts = np.rint(np.clip(points, -1e5, 1e5) * ONE).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(canvas, [pts], False, colour, max(1, int(thickness)), cv2.LINE_AA, SHIFT)


def box(left: float, top: float, right: float, bottom: float) -> np.ndarray:
    return np.array([[left, top], [right, top], [right, bottom], [left, bottom]])


def distances(near: float, far: float) -> np.ndarray:
    """Distances from ``near`` to ``far`` (m), 1.5 % apart: dense near the camera."""
    if far <= near:
        return np.zeros(0)
    n = max(2, int(np.ceil(np.log(far / near) / np.log(1.015))) + 1)
    return np.geomspace(near, far, n)


def strip(cam: Camera, road: Road, offset: float, half_width: float, z: np.ndarray) -> np.ndarray:
    """Image polygon of a ground strip following the road: lateral ``offset`` +- ``half_width`` (m)."""
    ul, vl = cam.project(road.lateral(offset - half_width, z), z)
    ur, vr = cam.project(road.lateral(offset + half_width, z), z)
    return np.concatenate([np.stack([ul, vl], 1), np.stack([ur, vr], 1)[::-1]])


def ground_quad(cam: Camera, x0: float, x1: float, z0: float, z1: float) -> np.ndarray:
    """Image polygon of a ground rectangle (lateral x0..x1, distance z0..z1): near-left,
    near-right, far-right, far-left."""
    u, v = cam.project(np.array([x0, x1, x1, x0]), np.array([z0, z0, z1, z1]))
    return np.stack([u, v], 1)


def road_points(cam: Camera, road: Road, offsets: np.ndarray, z: np.ndarray) -> np.ndarray:
    """(N, 2) image points of ground points at lateral ``offsets`` (m, road frame) and distances ``z``."""
    u, v = cam.project(road.lateral(0.0, z) + offsets, z)
    return np.stack([u, v], 1)
