"""ApolloScape lane-marking segmentation: the official class table, label reading, and mIoU as the
official evaluation counts it.

Source of every fact: ApolloScapeAuto/dataset-api, ``lane_segmentation/helpers/laneMarkDetection.py``
(the table, final revision of 2018-08-28) and ``lane_segmentation/evaluation/evalPixelLevelSemanticLabeling.py``,
which runs cityscapesScripts' ``evalPixelLevelSemanticLabeling`` (commit 4031404) with this table.

Classes. 38 entries: ``void`` (background, id 0) and 35 marking types (lines by colour and
solid/dashed/double, arrows, zebra, stop lines, ...) have train IDs 0..35 (the paper's "36
classes"); ``noise`` (249) and ``ignored`` (255) have train ID 255. **Choice**: our models have
36 outputs (train IDs 0..35) and train ID 255 is ignored by the loss, as the table's train IDs
suggest; the IntRA-KD code instead trains a 37th channel for noise + ignored (weight 0.05), which
the evaluation never rewards.

Labels. The released ``*_bin.png`` label maps are colour-coded RGB at 3384x2710 (each pixel one of
the table's colours); a grey variant with the regular IDs (0, 200..250) circulates too. Both are
read into train IDs (:func:`read_label`); a colour or ID outside the table is refused naming the
file. Images: ``ColorImage_road0X/ColorImage/Record*/Camera N/<ts>_Camera_N.jpg``, labels
``Labels_road0X/Label/Record*/Camera N/<ts>_Camera_N_bin.png``.

Crop. IntRA-KD keeps rows 1700.. (3384x1010) and halves them to 1692x505 (``CROP_TOP``,
``NET_SIZE``); a prediction goes back by nearest-neighbour upsampling and the rows above the
crop are ``void``.

mIoU (:func:`official_iou`), as cityscapesScripts computes it: one confusion matrix over all
images (pixels, not a mean of per-image IoUs); per evaluated class c (``ignoreInEval`` false: 18
classes, ``void`` included) IoU = TP / (TP + FP + FN) with TP = pixels of c predicted c, FN = pixels
of c predicted anything else, FP = pixels predicted c whose ground truth is an *evaluated* class
other than c (ground truth of an ignored class, noise or ignored never makes a false positive); a
class with TP + FP + FN = 0 (absent from both) is left out of the mean, one predicted but absent
scores 0. The mean is over the evaluated classes left. The paper's test figures come from
ApolloScape's server, whose exact class set is not published.
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from runtime.culane import read_encoded
from runtime.errors import DataError
from runtime.marking_classes import CLASS_NAMES, EVALUATED, IGNORE, LABELS, NUM_CLASSES, PALETTE_RGB
from runtime.miou import confusion_matrix, evaluated_iou, iou_report, nan_mean


SOURCE_SIZE = (3384, 2710)  # (w, h) px of the released images and labels
CROP_TOP = 1700  # IntRA-KD keeps rows 1700.. (3384x1010)
NET_SIZE = (1692, 505)  # (w, h): the cropped frame halved, the paper's input

_CODES = np.array([(r << 16) | (g << 8) | b for (r, g, b) in (lab.color for lab in LABELS)], np.int64)
_ORDER = np.argsort(_CODES)
_SORTED_CODES = _CODES[_ORDER]
_CODE_TRAIN_ID = np.array([LABELS[i].train_id for i in _ORDER], np.uint8)
_ID_TO_TRAIN = np.full(256, -1, np.int16)
for _lab in LABELS:
    _ID_TO_TRAIN[_lab.id] = _lab.train_id
def train_ids_from_color(rgb: np.ndarray, path: str | os.PathLike[str] = "<array>") -> np.ndarray:
    """(H, W, 3) uint8 RGB colour label -> (H, W) uint8 train IDs (255: noise / ignored).
    A colour outside the table raises :class:`DataError` naming ``path``, the colour and its pixel count."""
    codes = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    index = np.clip(np.searchsorted(_SORTED_CODES, codes), 0, len(_SORTED_CODES) - 1)
    unknown = _SORTED_CODES[index] != codes
    if unknown.any():
        colours, counts = np.unique(codes[unknown], return_counts=True)
        c = int(colours[np.argmax(counts)])
        raise DataError(path, f"{int(unknown.sum())} pixels of colours outside the ApolloScape table, e.g. "
                              f"RGB ({c >> 16}, {(c >> 8) & 255}, {c & 255}) on {int(counts.max())} pixels")
    return _CODE_TRAIN_ID[index]


def train_ids_from_ids(ids: np.ndarray, path: str | os.PathLike[str] = "<array>") -> np.ndarray:
    """(H, W) uint8 regular IDs (0, 200..250, 255) -> (H, W) uint8 train IDs; unknown IDs refused."""
    train = _ID_TO_TRAIN[ids]
    if (train < 0).any():
        bad = sorted({int(v) for v in np.unique(ids[train < 0])})
        raise DataError(path, f"label IDs {bad[:5]} are not in the ApolloScape table")
    return train.astype(np.uint8)


def read_label(path: str | os.PathLike[str], expected_shape: tuple[int, int] | None = None, colour: bool = True) -> np.ndarray:
    """A label PNG (colour-coded as released, or grey regular IDs) -> (H, W) uint8 train IDs;
    ``expected_shape`` (H, W) checked when given. ``colour=False``: one channel of IDs only (a
    submission: ApolloScape's server refuses colour predictions)."""
    image = cv2.imdecode(np.frombuffer(read_encoded(path, "label map"), np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DataError(path, "cannot decode label map (corrupt or not an image)")
    if image.dtype != np.uint8:
        raise DataError(path, f"label map must be 8-bit, got {image.dtype}")
    if expected_shape is not None and image.shape[:2] != tuple(expected_shape):
        raise DataError(path, f"label map is {image.shape[1]}x{image.shape[0]}, expected "
                              f"{expected_shape[1]}x{expected_shape[0]} (the image's size)")
    if image.ndim == 2:
        return train_ids_from_ids(image, path)
    if not colour:
        raise DataError(path, "a colour image: a prediction must be one channel of the table's IDs (0, 200..250)")
    if image.shape[2] == 4:
        image = image[..., :3]
    return train_ids_from_color(image[..., ::-1], path)  # OpenCV reads BGR


def color_label(train_ids: np.ndarray) -> np.ndarray:
    """(H, W) train IDs -> (H, W, 3) uint8 RGB in the official colours (255 -> the 'ignored' white),
    the released label format."""
    lut = np.full((256, 3), 255, np.uint8)
    lut[:NUM_CLASSES] = PALETTE_RGB
    return lut[train_ids]


def confusion(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(NUM_CLASSES, NUM_CLASSES) int64 pixel counts, rows = ground-truth train ID, columns =
    prediction; ground truth 255 (noise / ignored) is not counted. Both (H, W) integer maps."""
    return confusion_matrix(pred, gt, NUM_CLASSES, IGNORE)


def official_iou(matrix: np.ndarray) -> np.ndarray:
    """(36,) float64 IoU per train ID from a summed :func:`confusion` matrix, counted as the official
    evaluation counts; NaN for classes not evaluated (``ignoreInEval``) or absent from both."""
    return evaluated_iou(matrix, EVALUATED)


def official_miou(matrix: np.ndarray) -> float:
    """The mean of :func:`official_iou` over the classes it scores (NaN if none)."""
    return nan_mean(official_iou(matrix))


def report(matrix: np.ndarray) -> dict:
    """For a JSON report: the official mIoU, the IoU per evaluated class by name (None where absent),
    and the classes scored."""
    return iou_report(matrix, CLASS_NAMES, EVALUATED)


def sample_label(image: str, label: str | None) -> str:
    """A list entry's label, relative to the root: its own column, else the released one beside the image."""
    return label or str(label_path(image))


def label_path(image: str | os.PathLike[str]) -> Path:
    """The released label of an image: ``ColorImage_roadXX/ColorImage/.../<ts>.jpg`` ->
    ``Labels_roadXX/Label/.../<ts>_bin.png``."""
    parts = list(Path(image).parts)
    for i, part in enumerate(parts):
        if part.startswith("ColorImage_road"):
            parts[i] = part.replace("ColorImage_", "Labels_", 1)
            if i + 1 < len(parts) and parts[i + 1] == "ColorImage":
                parts[i + 1] = "Label"
            return Path(*parts).with_name(Path(image).stem + "_bin.png")
    raise DataError(image, "not an ApolloScape image path (no ColorImage_roadXX folder in it)")
