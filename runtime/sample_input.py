"""A fixed, real-looking network input for latency measurements.

Latency does not depend on pixel values for these networks, but a constant or random-noise input
can still mislead (denormals, branch-free kernels, INT8 saturation), so the benchmark feeds a
road scene: either a user's image (``--image``) or a deterministic procedurally drawn 1640x590
BGR dashcam-like frame (sky gradient, grey road narrowing to a horizon, white dashed and solid
lane lines, a little sensor noise) drawn with numpy + OpenCV only. Either is resized to the
artifact's original image size (sidecar ``preprocess.src_width`` x ``src_height``) and then
preprocessed exactly as at deployment (:class:`runtime.preprocess.Preprocess`).
"""
from __future__ import annotations

import os

import cv2
import numpy as np

from runtime.culane import CULANE_HEIGHT, CULANE_WIDTH, read_image
from runtime.preprocess import Preprocess

SCENE_WIDTH, SCENE_HEIGHT = CULANE_WIDTH, CULANE_HEIGHT
HORIZON = 0.40  # horizon row as a fraction of the height (CULane crops the top 240 of 590 rows)
DASH_DEPTH = 700.0  # ground distance of a row is DASH_DEPTH / (rows below the horizon); one dash + gap = 1 unit
DASH_NEAR = 12  # no dashes closer than this many rows to the horizon (they would be sub-pixel)


def _sky_and_ground(width: int, height: int, horizon: int) -> np.ndarray:
    """Vertical gradients: pale blue sky above ``horizon``, olive verge below (H, W, 3) uint8 BGR."""
    image = np.empty((height, width, 3), dtype=np.float32)
    sky = np.linspace(0.0, 1.0, horizon, dtype=np.float32)[:, None]
    image[:horizon] = ((1 - sky) * np.array([200, 150, 110]) + sky * np.array([235, 220, 205]))[:, None, :]
    ground = np.linspace(0.0, 1.0, height - horizon, dtype=np.float32)[:, None]
    image[horizon:] = ((1 - ground) * np.array([90, 110, 105]) + ground * np.array([60, 85, 70]))[:, None, :]
    return image.clip(0, 255).astype(np.uint8)


def _road_x(bottom_x: float, vanish_x: float, y: np.ndarray | float, horizon: int, height: int) -> np.ndarray:
    """x of a straight road line that meets the vanishing point at the horizon, at rows ``y``."""
    t = (np.asarray(y, dtype=np.float64) - horizon) / (height - 1 - horizon)
    return vanish_x + t * (bottom_x - vanish_x)


def _line_quad(bottom_x: float, vanish_x: float, y0: float, y1: float, horizon: int, height: int,
               half_width: float) -> np.ndarray:
    """Corners of a lane-line piece between rows y0 < y1; its width grows linearly below the horizon (px)."""
    ys = np.array([y0, y1])
    xs = _road_x(bottom_x, vanish_x, ys, horizon, height)
    w = half_width * (ys - horizon) / (height - 1 - horizon)
    return np.array([[xs[0] - w[0], y0], [xs[0] + w[0], y0], [xs[1] + w[1], y1], [xs[1] - w[1], y1]], dtype=np.int32)


def _dash_rows(horizon: int, height: int) -> list[tuple[float, float]]:
    """Row intervals of the dashes of a dashed line, equally long on the ground (perspective: 1/(y - horizon))."""
    rows = np.arange(horizon + DASH_NEAR, height, dtype=np.float64)
    depth = DASH_DEPTH / (rows - horizon)  # proportional to the distance along the road
    on = (np.floor(depth * 2.0) % 2) == 0
    spans, start = [], None
    for y, lit in zip(rows, on):
        if lit and start is None:
            start = y
        elif not lit and start is not None:
            spans.append((start, y))
            start = None
    if start is not None:
        spans.append((start, float(height - 1)))
    return spans


def draw_road_scene(width: int = SCENE_WIDTH, height: int = SCENE_HEIGHT, seed: int = 0) -> np.ndarray:
    """A deterministic dashcam-like road frame, (height, width, 3) uint8 BGR (same ``seed``: same pixels)."""
    horizon = int(round(HORIZON * height))
    image = _sky_and_ground(width, height, horizon)
    vanish_x = 0.5 * width
    road = np.array([[vanish_x - 0.01 * width, horizon], [vanish_x + 0.01 * width, horizon],
                     [1.15 * width, height - 1], [-0.15 * width, height - 1]], dtype=np.int32)
    cv2.fillConvexPoly(image, road, (105, 105, 100), lineType=cv2.LINE_AA)
    half = 0.006 * width
    lines = [(-0.05 * width, False), (0.30 * width, True), (0.70 * width, True), (1.05 * width, False)]
    for bottom_x, dashed in lines:
        spans = _dash_rows(horizon, height) if dashed else [(horizon + 2.0, float(height - 1))]
        for y0, y1 in spans:
            quad = _line_quad(bottom_x, vanish_x, y0, y1, horizon, height, half)
            cv2.fillConvexPoly(image, quad, (235, 240, 240), lineType=cv2.LINE_AA)
    noise = np.random.default_rng(seed).normal(0.0, 4.0, image.shape)
    return np.clip(image.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def sample_image(pre: Preprocess, image: str | os.PathLike[str] | None = None) -> np.ndarray:
    """The original-size frame (src_height, src_width, 3) uint8 BGR: ``image`` read, or the drawn scene."""
    frame = read_image(image) if image is not None else draw_road_scene()
    if frame.shape[:2] != (pre.src_height, pre.src_width):
        frame = cv2.resize(frame, (pre.src_width, pre.src_height), interpolation=cv2.INTER_AREA)
    return frame


def sample_batch(pre: Preprocess, batch: int = 1, image: str | os.PathLike[str] | None = None) -> np.ndarray:
    """(batch, 3, net_height, net_width) float32: the same preprocessed frame repeated ``batch`` times."""
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    one = pre(sample_image(pre, image))
    return np.ascontiguousarray(np.repeat(one, batch, axis=0))
