"""Class maps of marking models (torch-free): the argmax of the seg output, and its way back from
the network grid to the source image (evaluation) or to a video frame (drawing: :class:`ClassOverlay`).

The full-resolution rule of the ApolloScape evaluation (IntRA-KD's submission code): the
network-size map is resized by nearest neighbour onto the crop (``src_width`` x ``src_height -
crop_top``) and the rows above ``crop_top`` are class 0 (``void``): the model never saw them.
Nearest neighbour by pixel centres, in integers: full-resolution row ``i`` of ``H`` takes network
row ``floor((2i + 1) h / 2H)`` (likewise columns), the preprocessing's own convention
(:meth:`Preprocess.label`). At the paper's exact 2x (1692x505 -> 3384x1010) this is IntRA-KD's
``cv2.INTER_NEAREST`` pixel for pixel; at other sizes that one shifts by half a network pixel.
(OpenCV's ``INTER_NEAREST_EXACT`` rounds exact ties the other way, hence the explicit indices.)
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from runtime.classes import ClassTable
from runtime.draw import draw_classes
from runtime.frame_policy import FramePolicy
from runtime.preprocess import Preprocess

VOID = 0


def class_map(seg: np.ndarray) -> np.ndarray:
    """(..., C, h, w) probabilities or logits -> (..., h, w) uint8 class IDs (argmax over C)."""
    return np.asarray(seg).argmax(axis=-3).astype(np.uint8)


def to_source(classes: np.ndarray, pre: Preprocess) -> np.ndarray:
    """(net_height, net_width) class map -> (src_height, src_width) uint8: nearest neighbour onto the
    crop, :data:`VOID` above it."""
    if classes.shape != (pre.net_height, pre.net_width):
        raise ValueError(f"class map {classes.shape} is not the network size ({pre.net_height}, {pre.net_width})")
    full = np.full((pre.src_height, pre.src_width), VOID, np.uint8)
    rows, cols = nearest_indices(pre.net_height, pre.crop_height), nearest_indices(pre.net_width, pre.src_width)
    full[pre.crop_top :] = classes.astype(np.uint8, copy=False)[rows[:, None], cols[None, :]]
    return full


def nearest_indices(small: int, large: int) -> np.ndarray:
    """(large,) int64: for each of ``large`` pixels the one of ``small`` whose area holds its centre."""
    return (2 * np.arange(large, dtype=np.int64) + 1) * small // (2 * large)


def to_frame(classes: np.ndarray, policy: FramePolicy) -> np.ndarray:
    """(net_height, net_width) class map -> (frame_h, frame_w) uint8 for drawing on a video frame:
    the frame policy's network warp inverted, nearest neighbour, :data:`VOID` where the network saw
    nothing (above the crop, padding). A frame of the source geometry gets :func:`to_source`."""
    if policy.identity:
        return to_source(classes, policy.pre)
    return cv2.warpAffine(classes.astype(np.uint8), policy.net_matrix, (policy.frame_w, policy.frame_h),
                          flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=VOID)


@dataclass(frozen=True)
class ClassOverlay:
    """What a marking model shows on a frame: its class map at the network size ((net_height,
    net_width) uint8), mapped onto the frame and blended when drawn (the video writer's thread)."""

    classes: np.ndarray
    policy: FramePolicy
    table: ClassTable

    def frame_classes(self) -> np.ndarray:
        """(frame_h, frame_w) uint8 class IDs (:func:`to_frame`)."""
        return to_frame(self.classes, self.policy)

    def draw(self, frame: np.ndarray, legend: bool = True) -> np.ndarray:
        """Blend the classes onto the (frame_h, frame_w, 3) frame in place (legend of the classes present)."""
        return draw_classes(frame, self.frame_classes(), self.table, legend)
