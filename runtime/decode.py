"""Probability maps -> lanes in original-image pixels (the established CULane convention).

For each lane class c = 1..4 whose existence probability exceeds ``exist_threshold``:

1. smooth its probability map with a ``blur_kernel`` x ``blur_kernel`` box filter (default: the
   convention's 9 at the recipe's 976-pixel width, scaled with the network width and kept odd:
   5 at 528, 3 at 256. A fixed 9 would average a lane that is 2.5 px wide at 256 px below the
   0.3 threshold however confident the network is);
2. sample ``num_rows`` image rows, ``row_step`` pixels apart upward from ``first_row``
   (CULane: 18 rows, 589, 569, ..., 249);
3. on each sampled row take the column of the maximum; keep the point if the maximum exceeds
   ``prob_threshold``;
4. optionally (``outlier_px``, off by default) drop points far off the lane's own trend: fit
   ``x = a + b y + c y^2`` to the lane's points by least squares and remove the worst point while
   its residual exceeds ``outlier_px`` original-image pixels (a weak row maximum that jumped to
   another structure makes the lane zig-zag);
5. keep the lane if it has at least ``min_points`` points.

Rows and columns map between the original image and the network grid through
:class:`runtime.preprocess.Preprocess` (pixel-centre convention, nearest network row). The
SCNN/ERFNet MATLAB and Python tools compute the row as ``int(h - i*gap/H*h - 1)`` and the column
as ``int(col/w*W)``; ours differs from that by at most one network row and half a network column
and is the exact inverse of the preprocessing, so that a lane drawn in a label decodes back onto
itself. Sampled rows above the crop are skipped.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from runtime.preprocess import Preprocess


@dataclass(frozen=True)
class DecodeParams:
    """Decoding parameters (rows in original-image pixels)."""

    blur_kernel: int | None = None  # None: 9 at 976 px network width, scaled (odd) otherwise
    first_row: int = 589
    row_step: int = 20
    num_rows: int = 18
    prob_threshold: float = 0.3
    exist_threshold: float = 0.5
    min_points: int = 2
    outlier_px: float | None = None  # None: keep every point above the threshold

    def __post_init__(self) -> None:
        """Types and ranges (a hand-edited sidecar is refused here, not mid-video)."""
        def number(value: Any, integer: bool) -> bool:
            kinds = (int,) if integer else (int, float)
            return isinstance(value, kinds) and not isinstance(value, bool)

        for name, integer, optional in (("blur_kernel", True, True), ("first_row", True, False), ("row_step", True, False),
                                        ("num_rows", True, False), ("prob_threshold", False, False),
                                        ("exist_threshold", False, False), ("min_points", True, False), ("outlier_px", False, True)):
            value = getattr(self, name)
            if not (value is None and optional) and not number(value, integer):
                raise ValueError(f"decode.{name} must be {'an integer' if integer else 'a number'}{' or null' if optional else ''}, got {value!r}")
        if not (0 <= self.prob_threshold <= 1 and 0 <= self.exist_threshold <= 1):
            raise ValueError("decode thresholds must lie within [0, 1]")
        if self.row_step < 1 or self.num_rows < 1 or self.min_points < 1 or self.first_row < 0:
            raise ValueError("decode.row_step, num_rows and min_points must be >= 1, first_row >= 0")
        if (self.blur_kernel is not None and self.blur_kernel < 1) or (self.outlier_px is not None and self.outlier_px <= 0):
            raise ValueError("decode.blur_kernel must be >= 1 and decode.outlier_px > 0 when given")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DecodeParams":
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown decoding parameters {unknown}; known: {', '.join(cls.__dataclass_fields__)}")
        return cls(**data)


@dataclass(frozen=True)
class DecodedLane:
    """A decoded lane: its CULane ID (1..4) and its points, (N, 2) float64 x, y, bottom first."""

    lane_id: int
    points: np.ndarray


def lanes_agree(a: list[DecodedLane], b: list[DecodedLane], tolerance: float = 1e-4) -> bool:
    """Same lanes kept (by ID), sampled on the same rows, every x within ``tolerance`` px.

    With the default tolerance this is "identical lanes" (up to float rounding)."""
    pa, pb = {lane.lane_id: lane.points for lane in a}, {lane.lane_id: lane.points for lane in b}
    if pa.keys() != pb.keys():
        return False
    for lane_id, x in pa.items():
        y = pb[lane_id]
        if x.shape != y.shape or np.abs(x[:, 1] - y[:, 1]).max(initial=0) > 1e-4 or np.abs(x[:, 0] - y[:, 0]).max(initial=0) > tolerance:
            return False
    return True


REFERENCE_WIDTH = 976
REFERENCE_KERNEL = 9


def scaled_kernel(net_width: int) -> int:
    """The convention's 9x9 blur scaled to another network width, odd and at least 1."""
    k = max(1, round(REFERENCE_KERNEL * net_width / REFERENCE_WIDTH))
    return k if k % 2 else k + 1


def softmax(logits: np.ndarray, axis: int = 0) -> np.ndarray:
    """Numerically stable softmax along ``axis`` (float32)."""
    shifted = logits - logits.max(axis=axis, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=axis, keepdims=True)
    return shifted


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))


def drop_outliers(points: np.ndarray, tolerance: float, min_points: int = 2) -> np.ndarray:
    """Remove, worst first, the points of a lane ((N, 2) x, y pixels) whose horizontal residual to
    the least-squares quadratic ``x(y)`` through the remaining points exceeds ``tolerance`` pixels.
    Lanes with fewer than 4 points (a quadratic through 3 fits exactly) are returned unchanged."""
    pts = points
    while len(pts) >= max(4, min_points + 1):
        y = (pts[:, 1] - pts[:, 1].mean()) / 100.0  # conditioned powers
        design = np.stack([np.ones_like(y), y, y * y], axis=1)
        coef, *_ = np.linalg.lstsq(design, pts[:, 0], rcond=None)
        residual = np.abs(design @ coef - pts[:, 0])
        worst = int(residual.argmax())
        if residual[worst] <= tolerance:
            break
        pts = np.delete(pts, worst, axis=0)
    return pts


class LaneDecoder:
    """Decode (C, h, w) class probabilities + (C-1,) existence probabilities into lanes."""

    def __init__(self, preprocess: Preprocess, params: DecodeParams | None = None) -> None:
        self.pre = preprocess
        self.params = params or DecodeParams()
        p = self.params
        self.blur_kernel = p.blur_kernel if p.blur_kernel is not None else scaled_kernel(preprocess.net_width)
        image_rows = p.first_row - p.row_step * np.arange(p.num_rows)
        image_rows = image_rows[(image_rows >= preprocess.crop_top) & (image_rows < preprocess.src_height)]
        _, net_rows = preprocess.image_to_net(0.0, image_rows.astype(np.float64))
        self.image_rows = image_rows.astype(np.float64)
        self.net_rows = np.clip(np.rint(net_rows), 0, preprocess.net_height - 1).astype(np.int64)

    def decode_lane(self, prob: np.ndarray) -> np.ndarray:
        """One lane's (h, w) probability map -> (N, 2) points (N may be 0)."""
        p = self.params
        prob = np.asarray(prob, dtype=np.float32)
        if self.blur_kernel > 1:
            prob = cv2.blur(prob, (self.blur_kernel, self.blur_kernel), borderType=cv2.BORDER_REPLICATE)
        rows = prob[self.net_rows]
        cols = rows.argmax(axis=1)
        peak = rows[np.arange(len(cols)), cols]
        keep = peak > p.prob_threshold
        if keep.sum() < p.min_points:
            return np.zeros((0, 2))
        x, _ = self.pre.net_to_image(cols[keep].astype(np.float64), 0.0)
        points = np.stack([x, self.image_rows[keep]], axis=1)
        if p.outlier_px is not None:
            points = drop_outliers(points, p.outlier_px, p.min_points)
        return points

    def __call__(self, probs: np.ndarray, exist: np.ndarray) -> list[DecodedLane]:
        """``probs``: (C, h, w) probabilities (class 0 = background); ``exist``: (C-1,) probabilities."""
        probs = np.asarray(probs)
        exist = np.asarray(exist).reshape(-1)
        if probs.ndim != 3 or probs.shape[1:] != (self.pre.net_height, self.pre.net_width):
            raise ValueError(
                f"probability maps must be (C, {self.pre.net_height}, {self.pre.net_width}), got {probs.shape}"
            )
        if exist.shape[0] != probs.shape[0] - 1:
            raise ValueError(f"need {probs.shape[0] - 1} existence probabilities, got {exist.shape[0]}")
        lanes = []
        for lane_id in range(1, probs.shape[0]):
            if exist[lane_id - 1] <= self.params.exist_threshold:
                continue
            points = self.decode_lane(probs[lane_id])
            if len(points) >= self.params.min_points:
                lanes.append(DecodedLane(lane_id, points))
        return lanes
