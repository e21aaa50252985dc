"""The CULane F1 metric, counting exactly as the official C++ evaluator does.

The official evaluator is ``tools/lane_evaluation`` of the SCNN code (also shipped with SAD and
ERFNet-CULane). Per image it:

1. reads annotated and predicted lanes from ``.lines.txt`` files (a missing prediction file means
   no lanes);
2. turns every lane with >= 3 points into a natural cubic spline through its points, parametrised
   by chord length, sampled 50 times per segment (+ the last point); a 2-point lane stays its two
   points; a lane with < 2 points is never drawn and has IoU 0 with everything;
3. draws each lane as 8-connected OpenCV line segments ``width`` (30) pixels thick on a
   590x1640 canvas (points rounded to the nearest integer, ties to even, after float32 storage);
4. computes the IoU of every (annotation, prediction) pair of masks;
5. matches annotations to predictions by maximum total IoU (the Kuhn-Munkres algorithm, ported
   line by line, including its 1e-2 equality tolerance);
6. counts a matched pair as a true positive when IoU > 0.5 (strictly); FP = predictions - TP,
   FN = annotations - TP. An image without annotations adds all its predictions to FP.

Like the C++ code, a pair of lanes drawn entirely outside the canvas has IoU 0/0 = NaN (which
then steers the matching exactly as it does there), and coordinates beyond the int range become
INT_MIN, as x86 ``cvRound`` makes them. Differences, in inputs the C++ code leaves to
platform-specific NaN arithmetic or refuses to read: two consecutive identical points (a
zero-length spline segment, a division by zero there) are merged first; malformed files raise
:class:`runtime.errors.DataError` instead of being read up to the first bad token.

OpenCV 4.13 changed how a thick line that crosses the image border is drawn (a few pixels per
clipped segment). The official evaluator has been built against OpenCV 2.4 to 4.12, which all
draw alike, so we require ``opencv-python-headless<4.13``; :func:`opencv_draws_like_official`
checks the installed version's drawing against the official binary's pixel count.

Speed: each lane is drawn once per image, on a canvas just large enough for it (drawing is
translation invariant, and the canvas is clipped where the image is), so pairs cost only the
intersection of their boxes. Images are spread over worker processes.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from runtime.culane import CULANE_HEIGHT, CULANE_WIDTH, read_list
from runtime.errors import DataError
from runtime.lines import Lane, read_lines_file
from runtime.parallel import worker_context

SPLINE_TIMES = 50
"""Samples per spline segment in the official evaluator."""


# --------------------------------------------------------------------------------------------
# Spline interpolation (official ``Spline::splineInterpTimes`` / ``cal_fun``)
# --------------------------------------------------------------------------------------------
def spline_interp_times(points: np.ndarray, times: int = SPLINE_TIMES) -> np.ndarray:
    """Natural cubic spline through ``points`` ((N, 2), N >= 3) parametrised by chord length.

    Returns ``times`` samples per segment plus the last point, (times*(N-1)+1, 2) float32, computed
    in float64 from float32 inputs as the C++ code does (``Point2f`` storage, ``double`` maths).
    """
    p = np.asarray(points, dtype=np.float32).astype(np.float64)
    n = len(p)
    if n < 3:
        raise ValueError("spline_interp_times needs at least 3 points")
    d = np.diff(p, axis=0)
    h = np.sqrt(d[:, 0] ** 2 + d[:, 1] ** 2)
    slope = d / h[:, None]
    a = h[:-1].copy()
    b = 2.0 * (h[:-1] + h[1:])
    c = h[1:].copy()
    rhs = 6.0 * (slope[1:] - slope[:-1])  # (n-2, 2): Dx, Dy
    # Thomas algorithm, in the C++ order of operations.
    c[0] = c[0] / b[0]
    rhs[0] = rhs[0] / b[0]
    for i in range(1, n - 2):
        tmp = b[i] - a[i] * c[i - 1]
        c[i] = c[i] / tmp
        rhs[i] = (rhs[i] - a[i] * rhs[i - 1]) / tmp
    m = np.zeros((n, 2))
    m[n - 2] = rhs[n - 3]
    for i in range(n - 4, -1, -1):
        m[i + 1] = rhs[i] - c[i] * m[i + 2]
    m[0] = 0.0
    m[n - 1] = 0.0
    hh = h[:, None]
    coef_a = p[:-1]
    coef_b = slope - (2 * hh * m[:-1] + hh * m[1:]) / 6
    coef_c = m[:-1] / 2
    coef_d = (m[1:] - m[:-1]) / (6 * hh)
    t = (h / times)[:, None] * np.arange(times)[None, :]  # (n-1, times): delta * k
    t = t[:, :, None]
    samples = coef_a[:, None] + coef_b[:, None] * t + coef_c[:, None] * t**2 + coef_d[:, None] * t**3
    out = np.concatenate([samples.reshape(-1, 2), p[-1:]], axis=0)
    return out.astype(np.float32)


def _merge_repeated(points: np.ndarray) -> np.ndarray:
    keep = np.ones(len(points), dtype=bool)
    keep[1:] = np.any(points[1:] != points[:-1], axis=1)
    return points[keep]


def interpolate_lane(lane: Lane, times: int = SPLINE_TIMES) -> np.ndarray:
    """The polyline the official evaluator draws for a lane ((M, 2) float32; empty if < 2 points)."""
    pts = np.asarray(lane, dtype=np.float32).reshape(-1, 2)
    if len(pts) < 2:
        return np.zeros((0, 2), dtype=np.float32)
    pts = _merge_repeated(pts)
    if len(pts) < 2:
        return pts
    if len(pts) == 2:
        return pts
    return spline_interp_times(pts, times)


# --------------------------------------------------------------------------------------------
# Rasterisation and IoU
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LaneMask:
    """A lane drawn on the image canvas, stored as the box that holds it.

    ``mask`` is a (h, w) uint8 0/1 array whose top-left pixel is image pixel (``x0``, ``y0``);
    ``area`` is its pixel count; ``drawn`` is False for lanes with < 2 points (never drawn:
    IoU 0 with everything), True otherwise, even when nothing of it lands on the canvas.
    """

    x0: int
    y0: int
    mask: np.ndarray
    area: int
    drawn: bool = True


UNDRAWN = LaneMask(0, 0, np.zeros((0, 0), dtype=np.uint8), 0, drawn=False)
OFF_CANVAS = LaneMask(0, 0, np.zeros((0, 0), dtype=np.uint8), 0, drawn=True)
INT_MIN = -(2**31)


def rasterize_lane(lane: Lane, width: int = 30, im_width: int = CULANE_WIDTH, im_height: int = CULANE_HEIGHT) -> LaneMask:
    """Draw a lane as the official evaluator does (``cv::line`` per segment, ``width`` px thick)."""
    if len(np.asarray(lane).reshape(-1, 2)) < 2:
        return UNDRAWN
    poly = interpolate_lane(lane)
    # cv::Point2f -> cv::Point is cvRound: ties to even; out of int range (or NaN) -> INT_MIN on x86
    rounded = np.rint(poly.astype(np.float64))
    rounded[~(np.abs(rounded) < 2**31)] = INT_MIN
    pts = _merge_repeated(rounded.astype(np.int64))  # a zero-length segment adds nothing new
    reach = width // 2 + 2
    x0 = max(int(pts[:, 0].min()) - reach, 0)
    y0 = max(int(pts[:, 1].min()) - reach, 0)
    x1 = min(int(pts[:, 0].max()) + reach + 1, im_width)
    y1 = min(int(pts[:, 1].max()) + reach + 1, im_height)
    if x1 <= x0 or y1 <= y0:
        return OFF_CANVAS
    canvas = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
    shifted = (pts - np.array([x0, y0])).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(canvas, [shifted], False, 1, thickness=width, lineType=cv2.LINE_8)
    return LaneMask(x0, y0, canvas, int(np.count_nonzero(canvas)))


_BORDER_CASE = (np.array([[-39.771, 590.0], [777.543, 290.0]]), 26124)
"""A 2-point lane crossing the left and bottom borders, and its pixel count in the official
evaluator built with OpenCV 4.6 (OpenCV 4.13+ draws 25914)."""


def opencv_draws_like_official() -> bool:
    """True when this OpenCV draws clipped thick lines as the official evaluator's OpenCV does."""
    lane, expected = _BORDER_CASE
    return rasterize_lane(lane).area == expected


def mask_iou(a: LaneMask, b: LaneMask) -> float:
    """IoU of two lane masks: 0 when either lane was never drawn (< 2 points), NaN (0/0) when
    both were drawn but neither touches the canvas, as in the official evaluator."""
    if not (a.drawn and b.drawn):
        return 0.0
    if a.area == 0 and b.area == 0:
        return float("nan")
    if a.area == 0 or b.area == 0:
        return 0.0
    xa0, ya0 = max(a.x0, b.x0), max(a.y0, b.y0)
    xa1 = min(a.x0 + a.mask.shape[1], b.x0 + b.mask.shape[1])
    ya1 = min(a.y0 + a.mask.shape[0], b.y0 + b.mask.shape[0])
    if xa1 <= xa0 or ya1 <= ya0:
        return 0.0
    sa = a.mask[ya0 - a.y0 : ya1 - a.y0, xa0 - a.x0 : xa1 - a.x0]
    sb = b.mask[ya0 - b.y0 : ya1 - b.y0, xa0 - b.x0 : xa1 - b.x0]
    inter = int(np.count_nonzero(sa & sb))
    return inter / (a.area + b.area - inter)


def iou_matrix(
    annotations: Sequence[Lane], predictions: Sequence[Lane], width: int = 30, im_width: int = CULANE_WIDTH, im_height: int = CULANE_HEIGHT
) -> np.ndarray:
    """(len(annotations), len(predictions)) IoU matrix, each lane drawn once."""
    masks_a = [rasterize_lane(lane, width, im_width, im_height) for lane in annotations]
    masks_p = [rasterize_lane(lane, width, im_width, im_height) for lane in predictions]
    out = np.zeros((len(masks_a), len(masks_p)))
    for i, ma in enumerate(masks_a):
        for j, mp in enumerate(masks_p):
            out[i, j] = mask_iou(ma, mp)
    return out


# --------------------------------------------------------------------------------------------
# Matching (official ``pipartiteGraph`` in hungarianGraph.hpp, Kuhn-Munkres on doubles)
# --------------------------------------------------------------------------------------------
def _km_match(mat: np.ndarray) -> tuple[list[int], list[int]]:
    """Maximum-weight matching of a (left <= right) weight matrix; returns (left_match, right_match)."""
    left_num, right_num = mat.shape
    w = mat.tolist()
    left_match = [-1] * left_num
    right_match = [-1] * right_num
    right_weight = [0.0] * right_num
    left_weight = [max([-1e5, *row]) for row in w]
    left_used = [False] * left_num
    right_used = [False] * right_num

    def dfs(u: int) -> bool:
        left_used[u] = True
        for v in range(right_num):
            if not right_used[v] and abs(left_weight[u] + right_weight[v] - w[u][v]) < 1e-2:
                right_used[v] = True
                if right_match[v] == -1 or dfs(right_match[v]):
                    right_match[v] = u
                    left_match[u] = v
                    return True
        return False

    for u in range(left_num):
        while True:
            for i in range(left_num):
                left_used[i] = False
            for i in range(right_num):
                right_used[i] = False
            if dfs(u):
                break
            d = 1e10
            for i in range(left_num):
                if left_used[i]:
                    for j in range(right_num):
                        if not right_used[j]:
                            d = min(d, left_weight[i] + right_weight[j] - w[i][j])
            if d == 1e10:
                return left_match, right_match
            for i in range(left_num):
                if left_used[i]:
                    left_weight[i] -= d
            for j in range(right_num):
                if right_used[j]:
                    right_weight[j] += d
    return left_match, right_match


def match_lanes(similarity: np.ndarray) -> list[int]:
    """For each annotation (row), the index of its matched prediction (column) or -1.

    Official ``Counter::makeMatch``: the smaller side is the left side of the graph.
    """
    m, n = similarity.shape
    if m <= n:
        left, _ = _km_match(similarity)
        return left
    _, right = _km_match(similarity.T)
    return right


# --------------------------------------------------------------------------------------------
# Counting
# --------------------------------------------------------------------------------------------
@dataclass
class Counts:
    """True positives, false positives and false negatives, with the derived scores.

    Precision is ``None`` without detections and recall without annotations. F1 is
    ``2 TP / (2 TP + FP + FN)`` (= 2PR / (P + R), and 0 when nothing was detected) wherever lanes
    are annotated, and ``None`` where none are: CULane's ``cross`` category is judged by its FP
    count alone.
    """

    tp: int = 0
    fp: int = 0
    fn: int = 0
    images: int = 0

    def __iadd__(self, other: "Counts") -> "Counts":
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        self.images += other.images
        return self

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def f1(self) -> float | None:
        if self.tp + self.fn == 0:
            return None
        return 2 * self.tp / (2 * self.tp + self.fp + self.fn)

    def to_dict(self) -> dict[str, float | int | None]:
        return {
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "images": self.images,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
        }


LINE_WIDTH = 30
"""The official evaluator's lane width in pixels (``-w 30``) on CULane's 1640-pixel-wide frames."""


def frame_metric(frame_width: int, frame_height: int) -> "MetricParams":
    """The metric for frames of another size, scored at their own size: the canvas is the frame
    (the official evaluator's ``-W``/``-H``) and the lane width scales with the frame's width,
    ``max(1, round(30 * frame_width / 1640))`` px (9 px at 512 wide, 35 at 1920), so that a lane
    covers the same share of the road as on a CULane frame: a frame scored at its size counts as
    the same frame resized by hand to 1640 wide would. CULane's own size gives the official 30."""
    width = max(1, int(round(LINE_WIDTH * frame_width / CULANE_WIDTH)))
    return MetricParams(width=width, im_width=int(frame_width), im_height=int(frame_height))


def count_image(
    annotations: Sequence[Lane],
    predictions: Sequence[Lane],
    width: int = 30,
    iou_threshold: float = 0.5,
    im_width: int = CULANE_WIDTH,
    im_height: int = CULANE_HEIGHT,
) -> Counts:
    """Official ``Counter::count_im_pair`` for one image."""
    if not annotations:
        return Counts(fp=len(predictions), images=1)
    if not predictions:
        return Counts(fn=len(annotations), images=1)
    sim = iou_matrix(annotations, predictions, width, im_width, im_height)
    match = match_lanes(sim)
    tp = sum(1 for i, j in enumerate(match) if j >= 0 and sim[i, j] > iou_threshold)
    return Counts(tp=tp, fp=len(predictions) - tp, fn=len(annotations) - tp, images=1)


# --------------------------------------------------------------------------------------------
# Whole lists
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MetricParams:
    width: int = 30
    iou_threshold: float = 0.5
    im_width: int = CULANE_WIDTH
    im_height: int = CULANE_HEIGHT


def _count_files(job: tuple[Path, Path, MetricParams]) -> tuple[int, int, int]:
    anno_path, pred_path, params = job
    annotations = read_lines_file(anno_path)
    predictions = read_lines_file(pred_path) if pred_path.is_file() else []
    c = count_image(annotations, predictions, params.width, params.iou_threshold, params.im_width, params.im_height)
    return c.tp, c.fp, c.fn


def count_images(
    data_root: str | os.PathLike[str],
    pred_dir: str | os.PathLike[str],
    lines_names: Sequence[str],
    params: MetricParams = MetricParams(),
    workers: int = 1,
    progress: bool = False,
) -> np.ndarray:
    """Per-image (tp, fp, fn) as an (N, 3) int array, for ``.lines.txt`` names relative to both roots.

    Annotations must exist (:class:`DataError` otherwise); a missing prediction means no lanes.
    """
    root, preds = Path(data_root), Path(pred_dir)
    jobs = [(root / name, preds / name, params) for name in lines_names]
    for anno, _, _ in jobs:
        if not anno.is_file():
            raise DataError(anno, "annotation file not found")
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc="CULane F1", unit="img", leave=False)
    out = np.zeros((len(jobs), 3), dtype=np.int64)
    if workers <= 1 or len(jobs) < 64:
        results: Iterable[tuple[int, int, int]] = map(_count_files, jobs)
        for i, r in enumerate(results):
            out[i] = r
            if bar:
                bar.update()
    else:
        chunk = max(8, len(jobs) // (workers * 16))
        with ProcessPoolExecutor(max_workers=workers, mp_context=worker_context()) as pool:
            for i, r in enumerate(pool.map(_count_files, jobs, chunksize=chunk)):
                out[i] = r
                if bar:
                    bar.update()
    if bar:
        bar.close()
    return out


def totals(per_image: np.ndarray) -> Counts:
    """Pool per-image (tp, fp, fn) rows into one :class:`Counts`."""
    tp, fp, fn = (int(v) for v in per_image.sum(axis=0)) if len(per_image) else (0, 0, 0)
    return Counts(tp=tp, fp=fp, fn=fn, images=len(per_image))


def evaluate_lists(
    data_root: str | os.PathLike[str],
    pred_dir: str | os.PathLike[str],
    lists: dict[str, Path],
    params: MetricParams = MetricParams(),
    workers: int = 1,
    progress: bool = False,
) -> dict[str, Counts]:
    """Counts per list and ``"total"`` pooled over the distinct images of all lists."""
    per_list = {name: [s.lines_name for s in read_list(path).samples] for name, path in lists.items()}
    for name, path in lists.items():
        if not per_list[name]:
            raise DataError(path, "the list names no images (empty file)")
    unique = list(dict.fromkeys(n for names in per_list.values() for n in names))
    rows = count_images(data_root, pred_dir, unique, params, workers=workers, progress=progress)
    index = {name: i for i, name in enumerate(unique)}
    result = {name: totals(rows[[index[n] for n in names]]) for name, names in per_list.items()}
    result["total"] = totals(rows)
    return result


def format_table(results: dict[str, Counts]) -> str:
    def fmt(v: float | None) -> str:
        return "   -  " if v is None else f"{v:6.4f}"

    lines = [f"{'list':<12} {'images':>7} {'tp':>7} {'fp':>7} {'fn':>7} {'prec':>7} {'recall':>7} {'f1':>7}"]
    for name, c in results.items():
        lines.append(
            f"{name:<12} {c.images:>7} {c.tp:>7} {c.fp:>7} {c.fn:>7} "
            f"{fmt(c.precision):>7} {fmt(c.recall):>7} {fmt(c.f1):>7}"
        )
    return "\n".join(lines)
