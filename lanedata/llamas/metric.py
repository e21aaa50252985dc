"""LLAMAS (unsupervised_llamas): label files, official segmentation labels and the official mAP
(command: :mod:`lanedata.llamas.evaluate`).

Facts (and their sources) come from karstenBehrendt/unsupervised_llamas at 9b99f46; this is an
independent re-implementation of them (see docs/sources/llamas_tusimple.md, section A):

- Layout: ``<root>/labels/<split>/<rec>/<ts>.json`` with the images at
  ``<root>/color_images/<split>/<rec>/<ts>_color_rect.png`` and
  ``<root>/grayscale_images/<split>/<rec>/<ts>_gray_rect.png``; every image is 1276x717 (W x H).
- :func:`read_label` applies the cleaning of ``label_file_scripts.read_json``: lanes whose markers'
  ``pixel_start.y`` span < 20 px are dropped, then lanes with < 2 markers, then each side is
  renumbered in sorted order (l-ids become l0, l1, ..., r-ids r0, r1, ...).
- :func:`segmentation_label` draws the official binary / multi-class targets (717, 1276) uint8.
- :func:`binary_approx_auc` / :func:`average_precision` are the per-image, per-class AP of
  ``evaluation/segmentation_metrics.binary_approx_auc``; :func:`segmentation_map` averages them over
  images like ``evaluate_segmentation.evaluate_set`` and adds the leaderboard mAP.

Prediction files (the official script's layout): for each label ``<labels>/<split>/<rec>/<ts>.json``
an 8-bit grayscale PNG per class at ``<pred-root>/<rec>/<ts>.json_<c>.png`` (note the kept
``.json``), 1276x717, pixel value = probability * 255. Multi-class reads c = 0..4 (0 background,
1 l1, 2 l0, 3 r0, 4 r1); binary reads only c = 1 (every marker).
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from runtime.errors import DataError, warn_data
from runtime.parallel import worker_context

IMAGE_WIDTH = 1276
IMAGE_HEIGHT = 717
IMAGE_SHAPE = (IMAGE_HEIGHT, IMAGE_WIDTH)
SPLITS = ("train", "valid", "test", "val")  # val / test: IntRA-KD's halves of valid (lanedata.llamas.convert --split-valid)

MIN_LANE_HEIGHT = 20  # px, over the markers' pixel_start.y (read_json's default)
MIN_MARKERS = 2
MARKER_WIDTH_M = 0.1  # every marker is drawn 0.1 m wide in the world

# Multi-class target indices (evaluate_segmentation.py): 0 background, then the four ego-near lanes.
CLASS_NAMES = ("background", "l1", "l0", "r0", "r1")
LANE_CLASSES = (1, 2, 3, 4)  # the classes averaged into the leaderboard mAP
BINARY_CLASS = 1

# dataset_constants.DICT_COLORS (BGR), as zip(LANE_NAMES, DCOLORS) pairs them (its 18th colour is unused).
LANE_COLOURS: dict[str, tuple[int, int, int]] = {
    "l7": (110, 30, 30), "l6": (75, 25, 230), "l5": (75, 180, 60), "l4": (200, 130, 0),
    "l3": (48, 130, 245), "l2": (180, 30, 145), "l1": (0, 0, 255), "l0": (24, 140, 34),
    "r0": (255, 0, 0), "r1": (0, 255, 255), "r2": (40, 110, 170), "r3": (200, 250, 255),
    "r4": (255, 190, 230), "r5": (0, 0, 128), "r6": (195, 255, 170), "r7": (0, 128, 128),
    "r8": (195, 255, 170),
}

# The paper's (IntRA-KD, Sec. 4) LLAMAS input: "remove the upper part" -> 1276x384, resized to
# 960x288 (both sizes stated in the paper). The offset 333 = 717 - 384 and the rest come from
# ENet-SAD-Simple in unsupervised_llamas (datasets/transforms.lua ScaleWH: image.crop(0, 333, 1276,
# 717), bicubic resize of the image, nearest ('simple') for labels; testLane.lua: the argmax mask is
# resized back to 1276x384 nearest and 333 top rows are padded, 1 for class 0 and 0 for the others).
# UNVERIFIED: that IntRA-KD itself used this code (its repository has no LLAMAS pipeline), these
# interpolations, and the top-row padding; the paper only gives the two sizes.
CROP_TOP = 333  # first kept row
CROP_HEIGHT = IMAGE_HEIGHT - CROP_TOP  # 384: rows 333..716
CROP_SIZE = (IMAGE_WIDTH, CROP_HEIGHT)  # (W, H) = (1276, 384)
NET_SIZE = (960, 288)  # (W, H) network input

THRESHOLD_STEPS = 100  # binary_approx_auc: thresholds (100 - i) / 100 for i = 0..100
THRESHOLDS = tuple((THRESHOLD_STEPS - i) / THRESHOLD_STEPS for i in range(THRESHOLD_STEPS + 1))
_ASCENDING = np.array(THRESHOLDS[::-1], dtype=np.float64)

ProbMaps = Mapping[int, np.ndarray] | Sequence[np.ndarray] | np.ndarray


# ----------------------------------------------------------------------------- label files


@dataclass(frozen=True)
class Marker:
    """One lane marker: world points in metres (camera frame: x right, y down, z forward) and the
    file's pixel points (x, y) in px; ``*_start`` is the near end."""

    world_start: tuple[float, float, float]
    world_end: tuple[float, float, float]
    pixel_start: tuple[int, int]
    pixel_end: tuple[int, int]


@dataclass(frozen=True)
class Lane:
    """A lane after cleaning: ``lane_id`` renumbered (``l0``, ``r1``, ...), ``source_id`` as in the file."""

    lane_id: str
    source_id: str
    markers: tuple[Marker, ...]


@dataclass(frozen=True)
class Label:
    """A cleaned label file: ``projection`` (3, 3) float64 camera matrix, lanes in file order."""

    path: str
    projection: np.ndarray
    lanes: tuple[Lane, ...]


def _get(obj: Any, key: str, where: str, path: str) -> Any:
    """``obj[key]``, or a :class:`DataError` naming the missing key path (``lanes[0].markers``)."""
    if not isinstance(obj, dict):
        raise DataError(path, f"{where or 'top level'}: expected an object, got {type(obj).__name__}")
    if key not in obj:
        raise DataError(path, f"missing key '{where + '.' if where else ''}{key}'")
    return obj[key]


def _list(obj: Any, where: str, path: str) -> list:
    if not isinstance(obj, list):
        raise DataError(path, f"{where}: expected a list, got {type(obj).__name__}")
    return obj


def _number(value: Any, where: str, path: str, integer: bool = False) -> float | int:
    """A marker point's number, stored as a string (or a plain JSON number, which the official
    ``int()`` / ``float()`` take too); pixels are int() like read_json does."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise DataError(path, f"{where}: expected a number, got {type(value).__name__}")
    try:
        out = int(value) if integer else float(value)
    except (ValueError, OverflowError):
        kind = "an integer" if integer else "a number"
        raise DataError(path, f"{where}: not {kind}: {str(value)[:40]!r}") from None
    if not integer and not math.isfinite(out):
        raise DataError(path, f"{where}: not a finite number: {str(value)[:40]!r}")
    return out


def _point(obj: Any, keys: str, where: str, path: str, integer: bool = False) -> tuple:
    point = tuple(_number(_get(obj, k, where, path), f"{where}.{k}", path, integer) for k in keys)
    for k, v in obj.items():  # read_json casts every key of a point, not only x, y, z
        if k not in keys:
            _number(v, f"{where}.{k}", path, integer)
    return point


def _marker(obj: Any, where: str, path: str) -> Marker:
    world = [_point(_get(obj, k, where, path), "xyz", f"{where}.{k}", path) for k in ("world_start", "world_end")]
    for k, p in zip(("world_start", "world_end"), world):
        if not p[2] > 0:
            raise DataError(path, f"{where}.{k}.z: depth must be > 0, got {p[2]}")
    pixel = [_point(_get(obj, k, where, path), "xy", f"{where}.{k}", path, integer=True)
             for k in ("pixel_start", "pixel_end")]
    return Marker(world[0], world[1], pixel[0], pixel[1])


def _projection(obj: Any, path: str) -> np.ndarray:
    """The 3x3 matrix, JSON numbers only: the published labels store numbers here (only the marker
    points are strings), and the official ``project_point`` (``numpy.asarray(P).dot(p)``) fails on a
    string with "ValueError: data type must provide an itemsize"."""
    rows = _list(obj, "projection_matrix", path)
    if len(rows) != 3 or any(not isinstance(r, list) or len(r) != 3 for r in rows):
        raise DataError(path, "projection_matrix: expected 3 rows of 3 numbers")
    for i, r in enumerate(rows):
        for j, v in enumerate(r):
            if isinstance(v, str):
                raise DataError(path, f"projection_matrix[{i}][{j}]: a string ({v[:20]!r}), not a number: the official "
                                      "reader fails on it (project_point: data type must provide an itemsize)")
    return np.array([[_number(v, f"projection_matrix[{i}][{j}]", path) for j, v in enumerate(r)]
                     for i, r in enumerate(rows)], dtype=np.float64)


def _warn_for_spline_tools(lanes: Sequence[Lane], path: str) -> None:
    """Warn (:class:`~runtime.errors.DataWarning`, once per file) where the official lane-regression
    tools (``lane_regression/evaluate.py`` via ``spline_creator``) cannot read a cleaned label that the
    segmentation tools read: ``_sample_points`` indexes 717 rows by pixel y (a ``pixel_start`` row
    > 716 stops in ``pdb``, one < 0 counts from the bottom; any pixel row outside 0..716 warns), and
    ``_extend_lane`` fails (``min()`` of nothing) on a lane whose every marker starts and ends on one
    pixel row or column."""
    for lane in lanes:
        for m in lane.markers:
            for p in (m.pixel_start, m.pixel_end):
                if not 0 <= p[1] < IMAGE_HEIGHT:
                    warn_data(path, f"lane {lane.source_id}: pixel row {p[1]} outside the frame's rows 0..{IMAGE_HEIGHT - 1} "
                                    "(the official spline tools index rows 0..716 by it)")
                    return
        if all(m.pixel_start[0] == m.pixel_end[0] or m.pixel_start[1] == m.pixel_end[1] for m in lane.markers):
            warn_data(path, f"lane {lane.source_id}: every marker starts and ends on one pixel row or column "
                            "(the official spline tools fail on it)")
            return


def renumber_lanes(lane_ids: Sequence[str]) -> list[str]:
    """``_fix_lane_names``: per side, ids in sorted (string) order become l0, l1, ... / r0, r1, ...

    ``['l3', 'l2', 'l0', 'r0', 'r2'] -> ['l2', 'l1', 'l0', 'r0', 'r1']``. As in the official code, a
    repeated id takes the last number given to it (both ``l0`` of ``['l0', 'l0']`` become ``l1``).
    """
    mapping: dict[str, str] = {}
    counters = {"l": 0, "r": 0}
    for key in sorted(lane_ids):
        side = key[:1]
        mapping[key] = f"{side}{counters[side]}"
        counters[side] += 1
    return [mapping[key] for key in lane_ids]


def read_label(path: str | os.PathLike[str], min_lane_height: int = MIN_LANE_HEIGHT) -> Label:
    """Read one label JSON and clean it like ``read_json``.

    Drops a lane whose markers' ``pixel_start.y`` span (max - min) is < ``min_lane_height`` px, then
    lanes with < 2 markers, then renumbers each side. Never more lenient than the official tools,
    so that a writer's bug cannot hide behind this reader: what the official reader fails on is a
    :class:`DataError` (one line naming the file, never a partial result): a string in
    ``projection_matrix``, a lane without markers (``min()`` of nothing), a point value that
    ``int()`` / ``float()`` refuse (every key of a point, as ``read_json`` casts them all); what only
    the official lane-regression tools fail on warns (:func:`_warn_for_spline_tools`). Stricter than
    the official reader: every lane is parsed, also dropped ones; world depths must be > 0; numbers
    must be finite.
    """
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as handle:
            content = json.load(handle)
    except FileNotFoundError:
        raise DataError(name, "label file not found") from None
    except json.JSONDecodeError as err:
        raise DataError(name, f"not valid JSON ({err.msg} at line {err.lineno} column {err.colno})") from None
    except UnicodeDecodeError:
        raise DataError(name, "not valid JSON (not UTF-8 text)") from None
    projection = _projection(_get(content, "projection_matrix", "", name), name)
    parsed: list[tuple[str, tuple[Marker, ...]]] = []
    for i, lane in enumerate(_list(_get(content, "lanes", "", name), "lanes", name)):
        where = f"lanes[{i}]"
        lane_id = _get(lane, "lane_id", where, name)
        if not isinstance(lane_id, str) or lane_id[:1] not in ("l", "r"):
            raise DataError(name, f"{where}.lane_id: expected 'l<n>' or 'r<n>', got {str(lane_id)[:40]!r}")
        markers = _list(_get(lane, "markers", where, name), f"{where}.markers", name)
        if not markers:
            raise DataError(name, f"{where}.markers: empty (the official read_json fails on a lane without markers)")
        parsed.append((lane_id, tuple(_marker(m, f"{where}.markers[{j}]", name) for j, m in enumerate(markers))))
    kept = [(lane_id, markers) for lane_id, markers in parsed
            if max(m.pixel_start[1] for m in markers) - min(m.pixel_start[1] for m in markers)
            >= min_lane_height]
    kept = [(lane_id, markers) for lane_id, markers in kept if len(markers) >= MIN_MARKERS]
    new_ids = renumber_lanes([lane_id for lane_id, _ in kept])
    lanes = tuple(Lane(new, old, markers) for new, (old, markers) in zip(new_ids, kept))
    _warn_for_spline_tools(lanes, name)
    return Label(name, projection, lanes)


# ----------------------------------------------------------------------------- layout


def list_labels(labels_root: str | os.PathLike[str], split: str) -> list[Path]:
    """Every ``*.json`` file under ``<labels_root>/<split>`` (any depth, like ``get_labels``), sorted.

    ``labels_root`` is the ``labels`` folder; a dataset root holding ``labels/<split>`` works too.
    """
    root = Path(labels_root)
    folder = root / split
    if not folder.is_dir() and (root / "labels" / split).is_dir():
        folder = root / "labels" / split
    if not folder.is_dir():
        raise DataError(folder, f"no labels for split '{split}' (expected <labels-root>/{split}/<rec>/<ts>.json)")
    found = sorted(p for p in folder.rglob("*.json") if p.is_file())
    if not found:
        raise DataError(folder, "no label files (*.json) found")
    return found


def image_path(label_path: str | os.PathLike[str], images_root: str | os.PathLike[str] | None = None,
               kind: str = "color") -> Path:
    """The image of ``labels/<split>/<rec>/<ts>.json``: ``<images_root>/<split>/<rec>/<ts>_<kind>_rect.png``.

    ``kind`` is ``'color'`` or ``'gray'``. Without ``images_root``, ``color_images`` (or
    ``grayscale_images``) beside the ``labels`` folder four levels up the label path.
    """
    if kind not in ("color", "gray"):
        raise ValueError(f"kind must be 'color' or 'gray', got {kind!r}")
    label = Path(label_path)
    if len(label.parts) < 4:
        raise DataError(label, "expected a label path <labels>/<split>/<rec>/<ts>.json")
    if images_root is None:
        images_root = label.parents[3] / ("color_images" if kind == "color" else "grayscale_images")
    name = label.name[: -len(".json")] if label.name.endswith(".json") else label.stem
    return Path(images_root) / label.parts[-3] / label.parts[-2] / f"{name}_{kind}_rect.png"


def prediction_path(pred_root: str | os.PathLike[str], label_path: str | os.PathLike[str], cls: int) -> Path:
    """``<pred_root>/<rec>/<ts>.json_<cls>.png`` (``get_label_base``: the label's last two components)."""
    label = Path(label_path)
    return Path(pred_root) / label.parent.name / f"{label.name}_{cls}.png"


# ----------------------------------------------------------------------------- segmentation labels


def _marker_polygon(marker: Marker, projection: np.ndarray, width: float = MARKER_WIDTH_M) -> np.ndarray | None:
    """(4, 2) int32 corners of a marker drawn ``width`` m wide, or None when start row == end row.

    Like ``project_lane_marker``: both ends projected, half-width ``fx * width / z / 2`` px at each
    end, corners stored as float32, then numpy-rounded (half to even) to int32.
    """
    corners = np.zeros((4, 2), dtype=np.float32)
    ends = []
    for world in (marker.world_start, marker.world_end):
        point = np.asarray(world, dtype=np.float64)
        projected = projection.dot(point)
        projected = projected / projected[2]
        ends.append((projected, projection[0, 0] * width / point[2] / 2.0))
    (p1, hw1), (p2, hw2) = ends
    corners[0, 0], corners[0, 1] = p1[0] - hw1, p1[1]
    corners[1, 0], corners[1, 1] = p1[0] + hw1, p1[1]
    corners[2, 0], corners[2, 1] = p2[0] + hw2, p2[1]
    corners[3, 0], corners[3, 1] = p2[0] - hw2, p2[1]
    points = np.round(corners).astype(np.int32)
    return None if points[0, 1] == points[3, 1] else points


def _draw(image: np.ndarray, label: Label, colour_of) -> None:
    for lane in label.lanes:
        colour = colour_of(lane)
        for marker in lane.markers:
            points = _marker_polygon(marker, label.projection)
            if points is not None:  # the official code fills every polygon twice (anti-aliased)
                cv2.fillConvexPoly(image, points, colour, cv2.LINE_AA, 0)
                cv2.fillConvexPoly(image, points, colour, cv2.LINE_AA, 0)


def segmentation_label(label: Label, multi_class: bool = False) -> np.ndarray:
    """The official target, (717, 1276) uint8.

    Binary (``create_binary_segmentation_label``): every kept lane filled with value 1 into a uint8
    image (anti-aliased edges round to 0 or 1); 0 elsewhere.

    Multi-class (``create_multi_class_segmentation_label``): every kept lane is drawn in its
    ``LANE_COLOURS`` colour on a black BGR image, and a pixel is l1/l0/r0/r1 only where its colour
    equals that lane's colour exactly. Returned as an index map: 0 background, 1 l1, 2 l0, 3 r0,
    4 r1 (the official (717, 1276, 5) one-hot is ``label == c`` for c = 0..4). This reproduces the
    official values exactly, quirks included: anti-aliased edge pixels (blended colours) and other
    lanes (l2+, r2+) are background, so the classes are thinner than the binary mask, and where
    markers overlap the lane drawn last (file order) wins. A lane id with no official colour (more
    than 8 lanes on the left or 9 on the right) is a :class:`DataError` (the official code fails).
    """
    if not multi_class:
        image = np.zeros(IMAGE_SHAPE, dtype=np.uint8)
        _draw(image, label, lambda lane: 1)
        return image

    def colour_of(lane: Lane) -> tuple[int, int, int]:
        if lane.lane_id not in LANE_COLOURS:
            raise DataError(label.path, f"lane {lane.source_id} (renumbered {lane.lane_id}) has no official colour")
        return LANE_COLOURS[lane.lane_id]

    canvas = np.zeros((*IMAGE_SHAPE, 3), dtype=np.uint8)
    _draw(canvas, label, colour_of)
    out = np.zeros(IMAGE_SHAPE, dtype=np.uint8)
    for cls in LANE_CLASSES:
        out[(canvas == np.array(LANE_COLOURS[CLASS_NAMES[cls]], dtype=np.uint8)).all(axis=2)] = cls
    return out


# ----------------------------------------------------------------------------- predictions


def prob_u8(image: np.ndarray) -> np.ndarray:
    """The official reading of a prediction PNG: uint8 -> float64 ``value / 255`` (same shape).

    Only 255 reaches the first threshold (1.00): see :func:`binary_approx_auc` for why that matters.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image.dtype}")
    return image.astype(np.float64) / 255


def prob_to_u8(prob: np.ndarray) -> np.ndarray:
    """Probability in [0, 1] -> uint8 ``round(prob * 255)`` (clipped), so that 1.0 is stored as 255."""
    return np.clip(np.rint(np.asarray(prob, dtype=np.float64) * 255), 0, 255).astype(np.uint8)


def full_frame(cropped: np.ndarray, background_channel: int | None = 0) -> np.ndarray:
    """(C, 384, 1276) maps of the crop -> (C, 717, 1276), the 333 top rows padded as testLane.lua does:
    1 in ``background_channel`` (None: none), 0 in the others. dtype is kept (uint8: 1 is 255)."""
    cropped = np.asarray(cropped)
    if cropped.ndim != 3 or cropped.shape[1:] != (CROP_HEIGHT, IMAGE_WIDTH):
        raise ValueError(f"expected (C, {CROP_HEIGHT}, {IMAGE_WIDTH}), got {cropped.shape}")
    out = np.zeros((cropped.shape[0], *IMAGE_SHAPE), dtype=cropped.dtype)
    out[:, CROP_TOP:] = cropped
    if background_channel is not None:
        out[background_channel, :CROP_TOP] = 255 if cropped.dtype == np.uint8 else 1
    return out


def write_predictions(pred_root: str | os.PathLike[str], label_path: str | os.PathLike[str],
                      probs: ProbMaps, classes: Iterable[int] = range(len(CLASS_NAMES))) -> list[Path]:
    """Write ``probs[c]`` ((717, 1276); float in [0, 1] via :func:`prob_to_u8`, or uint8 as is) to
    :func:`prediction_path` for each class ``c``; returns the paths."""
    written = []
    for cls in classes:
        prob = np.asarray(probs[cls])
        if prob.shape != IMAGE_SHAPE:
            raise ValueError(f"class {cls}: expected {IMAGE_SHAPE}, got {prob.shape}")
        target = prediction_path(pred_root, label_path, cls)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(target), prob if prob.dtype == np.uint8 else prob_to_u8(prob)):
            raise DataError(target, "could not write the PNG")
        written.append(target)
    return written


def read_prediction(path: str | os.PathLike[str]) -> np.ndarray:
    """A prediction PNG read as the official script does (``IMREAD_GRAYSCALE``), as float64 / 255."""
    image = cv2.imread(os.fspath(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise DataError(path, "prediction image missing or not readable")
    if image.shape != IMAGE_SHAPE:
        raise DataError(path, f"prediction is {image.shape[1]}x{image.shape[0]}, expected {IMAGE_WIDTH}x{IMAGE_HEIGHT}")
    return prob_u8(image)


# ----------------------------------------------------------------------------- metric


@dataclass(frozen=True)
class ApproxAuc:
    """``binary_approx_auc``'s result for one image and class: ``auc`` (the AP) and the "corner" point
    (largest precision * recall, first one on ties) with its ``precision``, ``recall``, ``threshold``."""

    auc: float
    precision: float
    recall: float
    threshold: float

    def to_dict(self) -> dict[str, float]:
        return {"auc": self.auc, "precision": self.precision, "recall": self.recall, "threshold": self.threshold}


def pr_counts(prob: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Per threshold ``THRESHOLDS[i]`` (1.00 down to 0.00): ``tp[i]``, ``fp[i]`` (101 int64 each) of
    ``prob >= t`` against ``target != 0``, and the number of positives. One pass instead of 101."""
    prob = np.asarray(prob, dtype=np.float64)
    target = np.asarray(target)
    if prob.shape != target.shape:
        raise ValueError(f"probability map {prob.shape} and target {target.shape} differ in shape")
    if np.isnan(prob).any():
        raise ValueError("probability map holds NaN")
    positive = target.astype(bool).ravel()
    if target.dtype != bool and np.count_nonzero(target.ravel()[positive] != 1):
        raise ValueError("target values must be 0 or 1")
    # a pixel is predicted at step i iff prob >= THRESHOLDS[i], i.e. from step 101 - (#thresholds <= prob) on
    first = (len(THRESHOLDS) - np.searchsorted(_ASCENDING, prob.ravel(), side="right")).astype(np.intp)
    tp = np.cumsum(np.bincount(first[positive], minlength=len(THRESHOLDS) + 1)[: len(THRESHOLDS)])
    fp = np.cumsum(np.bincount(first[~positive], minlength=len(THRESHOLDS) + 1)[: len(THRESHOLDS)])
    return tp, fp, int(np.count_nonzero(positive))


def binary_approx_auc(prob: np.ndarray, target: np.ndarray) -> ApproxAuc:
    """The official per-image AP of one class: ``prob`` float (H, W) (float64; the official maps are
    PNG / 255, see :func:`prob_u8`), ``target`` (H, W) of 0/1 (or bool). Any shape works; the
    official evaluation is on the full 1276x717 image, without crop or ignore region.

    For the thresholds t = 1.00, 0.99, ..., 0.00 (``prob >= t``): precision = tp / (tp + fp), 0 when
    nothing is predicted; recall = tp / (tp + fn), 0 when the target is empty. Starting from P = 1,
    R = 0: AP = sum_i (R_i - R_{i-1}) * P_{i-1}. Consequences: an empty target scores 0; an
    all-zero map scores 0 (its only predicted step is t = 0, whose recall gain earns P = 0); a hard
    mask (values 0 and 1.0 = 255) scores R + (1 - R) * P; a hard mask one step below 1.0 (254)
    loses the R term.
    """
    tp, fp, positives = pr_counts(prob, target)
    auc = 0.0
    best = ApproxAuc(0.0, 0.0, 0.0, 0.0)
    best_score = 0.0
    prev_p, prev_r = 1.0, 0.0
    for i, threshold in enumerate(THRESHOLDS):
        t_p, f_p = int(tp[i]), int(fp[i])
        precision = 0.0 if t_p + f_p == 0 else t_p / (t_p + f_p)
        recall = 0.0 if positives == 0 else t_p / positives
        if precision * recall > best_score:
            best_score = precision * recall
            best = ApproxAuc(0.0, precision, recall, threshold)
        auc += (recall - prev_r) * prev_p
        prev_p, prev_r = precision, recall
    return ApproxAuc(auc, best.precision, best.recall, best.threshold)


def average_precision(prob: np.ndarray, target: np.ndarray) -> float:
    """The official AP (``binary_approx_auc(...)['auc']``) of one image and class; see :func:`binary_approx_auc`."""
    return binary_approx_auc(prob, target).auc


def eval_classes(multi_class: bool) -> tuple[int, ...]:
    """The classes scored: 0..4 multi-class, (1,) binary."""
    return tuple(range(len(CLASS_NAMES))) if multi_class else (BINARY_CLASS,)


def image_scores(probs: ProbMaps, label: np.ndarray, multi_class: bool = True) -> dict[int, ApproxAuc]:
    """Per class c of :func:`eval_classes`: the AP of ``probs[c]`` (float (H, W)) against ``label == c``,
    ``label`` being :func:`segmentation_label` (multi-class index map, or binary 0/1)."""
    label = np.asarray(label)
    return {c: binary_approx_auc(probs[c], label == c) for c in eval_classes(multi_class)}


def _mean(values: Iterable[float]) -> float:
    total, count = 0.0, 0
    for value in values:  # in order, like evaluate_set (not math.fsum)
        total += value
        count += 1
    return total / count


def summarize(per_image: Sequence[Mapping[int, ApproxAuc]], multi_class: bool = True) -> dict[str, Any]:
    """Average per-image results like ``evaluate_set`` (every image counts, also where a class is
    absent and so scores 0) and add the leaderboard mAP.

    Returns ``{"mode", "images", "classes": {name: {"class", "ap", "corner_precision",
    "corner_recall", "corner_threshold"}}, "mAP", "mAP_classes"}``. ``ap`` is the official ``auc``
    mean; the corner values are the means of the per-image corners. The official script prints only
    these per-class means; ``mAP`` (multi-class) = the mean AP of l1, l0, r0, r1 (background
    excluded), inferred from the leaderboard (benchmarks_website ``llamas/views.py``: e.g.
    ENet-SAD-Simple 0.266/0.896/0.880/0.498 -> 0.635). Binary: ``mAP`` = the AP of class 1 (the
    binary leaderboard's "AP").
    """
    if not per_image:
        raise ValueError("no images to average")
    classes = eval_classes(multi_class)
    table = {}
    for c in classes:
        name = CLASS_NAMES[c] if multi_class else "markers"
        table[name] = {"class": c, **{key: _mean(getattr(r[c], metric) for r in per_image) for key, metric in
                                      (("ap", "auc"), ("corner_precision", "precision"),
                                       ("corner_recall", "recall"), ("corner_threshold", "threshold"))}}
    lane_names = [CLASS_NAMES[c] for c in LANE_CLASSES] if multi_class else ["markers"]
    return {"mode": "multi_class" if multi_class else "binary", "images": len(per_image), "classes": table,
            "mAP": _mean(table[n]["ap"] for n in lane_names), "mAP_classes": lane_names}


def segmentation_map(prob_maps_per_image: Iterable[ProbMaps], labels_per_image: Iterable[np.ndarray],
                     multi_class: bool = True) -> dict[str, Any]:
    """The official evaluation over images: :func:`image_scores` per (probs, label) pair, then
    :func:`summarize`. ``probs[c]`` is the float (H, W) map of class c (a (5, H, W) array or a dict;
    binary needs only ``probs[1]``); labels from :func:`segmentation_label`."""
    per_image = [image_scores(p, lab, multi_class)
                 for p, lab in zip(prob_maps_per_image, labels_per_image, strict=True)]
    return summarize(per_image, multi_class)


# ----------------------------------------------------------------------------- command line


def score_file(job: tuple[str, str, bool]) -> dict[int, ApproxAuc]:
    """Scores of one label file ``(label_path, pred_root, multi_class)`` against its prediction PNGs."""
    label_path, pred_root, multi_class = job
    target = segmentation_label(read_label(label_path), multi_class)
    probs = {c: read_prediction(prediction_path(pred_root, label_path, c)) for c in eval_classes(multi_class)}
    return image_scores(probs, target, multi_class)


def missing_predictions(pred_root: str | os.PathLike[str], labels: Sequence[Path], multi_class: bool) -> list[Path]:
    """The expected prediction files that do not exist, in label order."""
    return [p for label in labels for c in eval_classes(multi_class)
            if not (p := prediction_path(pred_root, label, c)).is_file()]


def score_files(labels: Sequence[Path], pred_root: str | os.PathLike[str], multi_class: bool,
                workers: int = 1, progress: bool = False) -> Iterator[dict[int, ApproxAuc]]:
    """:func:`score_file` for each label, in order (``workers`` processes)."""
    jobs = [(os.fspath(p), os.fspath(pred_root), multi_class) for p in labels]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc="LLAMAS AP", unit="img", leave=False)
    try:
        if workers <= 1 or len(jobs) < 16:
            results: Iterable[dict[int, ApproxAuc]] = map(score_file, jobs)
            for r in results:
                if bar:
                    bar.update()
                yield r
        else:
            chunk = max(4, len(jobs) // (workers * 16))
            with ProcessPoolExecutor(max_workers=workers, mp_context=worker_context()) as pool:
                for r in pool.map(score_file, jobs, chunksize=chunk):
                    if bar:
                        bar.update()
                    yield r
    finally:
        if bar:
            bar.close()


def format_table(report: Mapping[str, Any]) -> str:
    lines = [f"{'class':<11} {'AP':>7} {'corner P':>9} {'corner R':>9} {'corner t':>9}"]
    for name, row in report["classes"].items():
        lines.append(f"{name:<11} {row['ap']:>7.4f} {row['corner_precision']:>9.4f} "
                     f"{row['corner_recall']:>9.4f} {row['corner_threshold']:>9.4f}")
    lines.append(f"mAP ({', '.join(report['mAP_classes'])}) over {report['images']} images: {report['mAP']:.4f}")
    return "\n".join(lines)
