"""CULane lane IDs from unordered lane points, as CULane's own label generator assigns them.

A ``.lines.txt`` file lists lanes in no particular order; CULane's ``laneseg_label_w16`` maps and
``train_gt.txt`` flags give each lane an ID: 1, 2 for the second and first lane left of the ego
vehicle, 3, 4 for the first and second right of it. The facts below follow the official
generator (XingangPan/seg_label_generate: ``seg_label_generator.cpp``, ``lane/util.cpp``); the
code is ours.

1. Points: sorted bottom first; a point less than 2 px from the last kept one, or less than 1 px
   below it, is dropped (the official tool drops them before sorting; we sort first, so the
   result does not depend on the file's point order). A lane needs 2 points **inside the image**
   (chosen, as our synthetic generator annotates; lanes wholly outside cannot be drawn).
2. Order: by ``bottom_x``, where a straight line fitted to the lane (x as a function of y)
   crosses the bottom row ``y = height``.
3. Double lines: two neighbours (in that order) whose mean horizontal distance over the rows they
   share is below 120 px are one painted double line; the outer one is dropped (the left one when
   the left lane leans right going up, i.e. lies left of the ego vehicle, else the right one).
   Neighbours are compared as first ordered (the official loop does too).
4. Names by slope ``k = dx/dy`` between the two bottom points (``k <= 0``: the lane leans right
   going up, a lane left of the ego vehicle): one lane gets ID 2 if ``k <= 0`` else 3; two lanes
   get 2 and 3; with more, the ego split is the first neighbour pair going from ``k <= 0`` to
   ``k > 0``, else the first lane whose ``bottom_x`` is right of the image centre (else after
   the last lane); the two lanes left of the split get IDs 1, 2, the two right of it 3, 4, and
   lanes further out get none (CULane annotates four).
"""
from __future__ import annotations

import numpy as np

from runtime.culane_metric import interpolate_lane

MAX_LANES = 4
DOUBLE_LINE_PX = 120.0  # official remove_double_line threshold, in 1640x590 pixels
MIN_STEP_PX = 2.0  # points closer than this to the previous one are dropped
MIN_DY_PX = 1.0  # points less than this below the previous one are dropped
ROW_STEP_PX = 10  # rows where neighbours are compared (CULane annotates every 10 rows)


def clean_points(lane: np.ndarray) -> np.ndarray:
    """(N, 2) x, y points sorted bottom first, without near-repeats (rule 1); may return < 2 points."""
    pts = np.asarray(lane, dtype=np.float64).reshape(-1, 2)
    pts = pts[np.argsort(-pts[:, 1], kind="stable")]
    kept: list[np.ndarray] = []
    for p in pts:
        if kept and (np.hypot(*(p - kept[-1])) < MIN_STEP_PX or abs(p[1] - kept[-1][1]) < MIN_DY_PX):
            continue
        kept.append(p)
    return np.array(kept, dtype=np.float64).reshape(-1, 2)


def bottom_x(lane: np.ndarray, height: int) -> float:
    """Where a straight fit x(y) of the lane crosses the row ``y = height`` (px)."""
    slope, intercept = np.polyfit(lane[:, 1], lane[:, 0], 1)
    return float(slope * height + intercept)


def slope(lane: np.ndarray) -> float:
    """dx/dy between the two bottom points (negative: the lane leans right going up)."""
    (x0, y0), (x1, y1) = lane[0], lane[1]
    return float((x1 - x0) / (y1 - y0))


def _x_at_rows(lane: np.ndarray) -> dict[int, float]:
    """x of the lane's spline on every ``ROW_STEP_PX`` row it spans."""
    curve = interpolate_lane(lane).astype(np.float64)
    curve = curve[np.argsort(curve[:, 1], kind="stable")]
    top, bottom = curve[0, 1], curve[-1, 1]
    rows = np.arange(np.ceil(top / ROW_STEP_PX) * ROW_STEP_PX, bottom + 1e-9, ROW_STEP_PX)
    return {int(r): float(x) for r, x in zip(rows, np.interp(rows, curve[:, 1], curve[:, 0]))}


def mean_distance(left: np.ndarray, right: np.ndarray) -> float | None:
    """Mean of ``x_right - x_left`` over the rows both span (px); None when they share no row."""
    a, b = _x_at_rows(left), _x_at_rows(right)
    shared = sorted(a.keys() & b.keys())
    return float(np.mean([b[r] - a[r] for r in shared])) if shared else None


def drop_double_lines(lanes: list[np.ndarray]) -> list[np.ndarray]:
    """Rule 3 on lanes ordered left to right: the outer line of each double line dropped."""
    drop: set[int] = set()
    for n in range(1, len(lanes)):
        distance = mean_distance(lanes[n - 1], lanes[n])
        if distance is not None and distance < DOUBLE_LINE_PX:
            left = lanes[n - 1]
            leans_right = (left[-1, 0] - left[0, 0]) > 0  # top right of bottom: left of the ego vehicle
            drop.add(n - 1 if leans_right else n)
    return [lane for i, lane in enumerate(lanes) if i not in drop]


def name_lanes(lanes: list[np.ndarray], width: int, height: int) -> list[int | None]:
    """Rule 4: the CULane ID (1..4) of each lane ordered left to right, None for lanes beyond four."""
    if not lanes:
        return []
    if len(lanes) == 1:
        return [2 if slope(lanes[0]) <= 0 else 3]
    if len(lanes) == 2:
        return [2, 3]
    k = [slope(lane) for lane in lanes]
    split = next((n for n in range(1, len(lanes)) if k[n - 1] <= 0 < k[n]), None)
    if split is None:
        split = next((n for n, lane in enumerate(lanes) if bottom_x(lane, height) > width / 2), len(lanes))
    ids = [n - split + 3 for n in range(len(lanes))]
    return [i if 1 <= i <= MAX_LANES else None for i in ids]


def inside(lane: np.ndarray, width: int, height: int) -> int:
    """How many of the lane's points lie inside the image."""
    x, y = lane[:, 0], lane[:, 1]
    return int(np.count_nonzero((x >= 0) & (x < width) & (y >= 0) & (y < height)))


def assign_ids(lanes: list[np.ndarray], width: int, height: int) -> dict[int, np.ndarray]:
    """CULane ID -> (N, 2) points (bottom first) for lanes read from a ``.lines.txt`` in any order."""
    usable = [p for p in (clean_points(lane) for lane in lanes) if len(p) >= 2 and inside(p, width, height) >= 2]
    ordered = sorted(usable, key=lambda p: bottom_x(p, height))
    single = drop_double_lines(ordered)
    return {lane_id: lane for lane, lane_id in zip(single, name_lanes(single, width, height)) if lane_id is not None}
