"""CULane label maps drawn from lanes: one drawing function for the synthetic generator and
:mod:`lanedata.labels.make_labels`.

CULane's ``laneseg_label_w16`` maps draw each annotated lane 16 px wide with its ID (1, 2 left of
the ego vehicle, 3, 4 right of it) on a 0 background, through a spline of its points. We draw
through the spline the official evaluator uses (:func:`runtime.culane_metric.interpolate_lane`),
so a label covers the same pixels the metric rasterises.
"""
from __future__ import annotations

import cv2
import numpy as np

from runtime.culane_metric import interpolate_lane

LABEL_WIDTH = 16  # px, CULane's laneseg_label_w16


def draw_label(lanes: dict[int, np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """(H, W) uint8 label map: each lane ((N, 2) x, y pixels) drawn ``LABEL_WIDTH`` px wide with its ID."""
    label = np.zeros(shape, dtype=np.uint8)
    for lane_id in sorted(lanes):
        pts = np.rint(interpolate_lane(lanes[lane_id])).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(label, [pts], False, int(lane_id), thickness=LABEL_WIDTH, lineType=cv2.LINE_8)
    return label
