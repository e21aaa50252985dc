"""TuSimple lane accuracy, FP and FN, as the official ``evaluate/lane.py`` (``LaneEval``) computes them.

    (command: python -m lanedata.tusimple.evaluate --pred P.json --gt G.json [--out report.json])

Both files hold one JSON object per line (a blank line is refused: the official script's
``json.loads`` of every ``readlines()`` line fails on it; the converter, reading TuSimple's own
label files, skips them). A ground-truth line is
``{"raw_file": str, "lanes": [[x, ...], ...], "h_samples": [y, ...]}``; a prediction line is
``{"raw_file": str, "lanes": [[x, ...], ...], "run_time": ms}``. Every lane holds one x (px) per
``h_samples`` row of its image's ground truth; an x < 0 (TuSimple writes -2) means no lane there.

Parameters (the official values, module constants):

- ``PIXEL_THRESH = 20`` px, widened per ground-truth lane to ``20 / cos(arctan(k))``, where ``k``
  is the slope of the least-squares line ``x = k*y + b`` through that lane's points with x >= 0
  (``k = 0`` with fewer than 2 such points). The official script fits it with sklearn's
  ``LinearRegression``, which centres y (the regressor) and x (the target) by their means and
  solves the centred problem with ``scipy.linalg.lstsq`` (LAPACK ``gelsd``); :func:`lane_slope` does
  the same arithmetic with ``numpy.linalg.lstsq`` (the same LAPACK driver), not the closed form
  ``sum(dy*dx) / sum(dy*dy)``. The two differ in the last bit, and where ``20 / cos(arctan k)`` is
  an integer in exact arithmetic (k = 3/4, 21/20, 12/5, ...: 25, 29, 52 px), a point exactly that
  far off is scored by which side of the integer the rounding lands: e.g. the official 28.999999999999996
  (a miss at 29 px) against the closed form's 29.000000000000004 (a hit).
- ``ABSENT = -100``: every x < 0, in predictions and ground truth alike, becomes -100 before
  comparing, so a row absent on both sides counts as correct.
- Line accuracy of a prediction against a ground-truth lane: the share of **all** h_samples rows
  where ``|x_pred - x_gt| < thresh`` (strict).
- ``PT_THRESH = 0.85``: a ground-truth lane whose best prediction (any prediction: the matching is
  not one-to-one, one prediction may serve several lanes) reaches this line accuracy is matched,
  else it is a false negative. ``FP = predictions - matched`` (so it can be negative).
- More than ``MAX_SCORED_LANES = 4`` ground-truth lanes: the worst best-accuracy is dropped and one
  false negative is forgiven.
- Per image: ``accuracy = sum(best accuracies) / max(min(4, gt), 1)``,
  ``FP = fp / predictions`` (0 without predictions), ``FN = fn / max(min(gt, 4), 1)``.
  An image without ground-truth lanes scores accuracy 0.
- Penalty ``(0, 0, 1)`` for an image whose ``run_time > MAX_RUN_TIME_MS = 200`` ms or with more
  than ``gt + EXTRA_LANES_ALLOWED = gt + 2`` predicted lanes.
- The file scores are the per-image values summed (in prediction-file order) and divided by the
  number of ground-truth images: means of per-image ratios, not pooled counts.

Input errors the official script turns into an exception are one-line :class:`DataError` s naming
the file and line: malformed JSON (also the non-standard ``NaN``/``Infinity``), a missing key, a
value of the wrong type, a lane whose length differs from h_samples (ground truth or prediction),
a prediction for an image not in the ground truth, and a ground-truth image without a prediction.
Stricter than the official script: a ``raw_file`` repeated within one file is refused (the
official script keeps the last ground truth and scores a repeated prediction twice), and
``run_time`` must be one number (the readme says a list; the code compares it with 200).

The report (stdout's last line, and ``--out``) has the official shape:
``[{"name": "Accuracy", "value": a, "order": "desc"}, {"name": "FP", ..., "order": "asc"},
{"name": "FN", ..., "order": "asc"}]``.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from runtime.errors import DataError

PIXEL_THRESH = 20.0
PT_THRESH = 0.85
ABSENT = -100.0
MAX_SCORED_LANES = 4
EXTRA_LANES_ALLOWED = 2
MAX_RUN_TIME_MS = 200.0
PENALTY = (0.0, 0.0, 1.0)

GT_KEYS = ("raw_file", "lanes", "h_samples")
PRED_KEYS = ("raw_file", "lanes", "run_time")


# --------------------------------------------------------------------------------------------
# One image
# --------------------------------------------------------------------------------------------
def lane_slope(xs: np.ndarray, y_samples: np.ndarray) -> float:
    """Least-squares slope ``k`` of ``x = k*y + b`` over the points with x >= 0 (0 with < 2 of them),
    in the official arithmetic: sklearn ``LinearRegression().fit(ys[:, None], xs).coef_[0]``
    (sklearn/linear_model/_base.py: ``_preprocess_data`` subtracts the means of X and y, then
    ``scipy.linalg.lstsq`` on the centred data); here ``numpy.linalg.lstsq`` of the centred x on
    the centred (n, 1) y. A constant y gives 0 (rank 0: the minimum-norm solution), as there."""
    keep = np.asarray(xs) >= 0
    x = np.asarray(xs, dtype=np.float64)[keep]
    y = np.asarray(y_samples, dtype=np.float64)[keep][:, None]
    if len(x) < 2:
        return 0.0
    coef = np.linalg.lstsq(y - y.mean(axis=0), x - x.mean(), rcond=None)[0]
    return float(coef[0])


def lane_threshold(gt_xs: np.ndarray, y_samples: np.ndarray) -> float:
    """The pixel threshold of one ground-truth lane: ``PIXEL_THRESH / cos(arctan(slope))`` (px)."""
    return PIXEL_THRESH / np.cos(np.arctan(lane_slope(gt_xs, y_samples)))


def line_accuracies(preds: np.ndarray, gt_xs: np.ndarray, thresh: float) -> np.ndarray:
    """Line accuracy of each prediction ((P, N) x px) against one ground-truth lane ((N,) px): (P,)."""
    p = np.where(preds >= 0, preds, ABSENT)
    g = np.where(gt_xs >= 0, gt_xs, ABSENT)
    return np.count_nonzero(np.abs(p - g) < thresh, axis=1).astype(np.float64) / len(g)


def _as_lanes(lanes: Sequence[Sequence[float]], n: int, what: str) -> np.ndarray:
    """(L, n) float64 array of lanes; :class:`DataError` when a lane's length is not ``n``."""
    for i, lane in enumerate(lanes):
        if len(lane) != n:
            raise DataError(f"<{what}>", f"lane {i} has {len(lane)} x values; h_samples has {n}")
    return np.asarray(lanes, dtype=np.float64).reshape(len(lanes), n)


def penalised(pred_count: int, gt_count: int, run_time_ms: float) -> bool:
    """Whether an image is scored ``PENALTY``: too slow, or more than ``gt + 2`` predicted lanes."""
    return run_time_ms > MAX_RUN_TIME_MS or pred_count > gt_count + EXTRA_LANES_ALLOWED


def bench_image(pred_lanes: Sequence[Sequence[float]], gt_lanes: Sequence[Sequence[float]],
                y_samples: Sequence[float], run_time_ms: float) -> tuple[float, float, float]:
    """(accuracy, FP, FN) of one image: lanes are x (px) per row of ``y_samples`` (px), < 0 = absent."""
    ys = np.asarray(y_samples, dtype=np.float64).reshape(-1)
    preds = _as_lanes(pred_lanes, len(ys), "prediction")
    gts = _as_lanes(gt_lanes, len(ys), "ground truth")
    if penalised(len(preds), len(gts), run_time_ms):
        return PENALTY
    best: list[float] = []
    matched = fn = 0
    for gt_xs in gts:
        acc = float(line_accuracies(preds, gt_xs, lane_threshold(gt_xs, ys)).max()) if len(preds) else 0.0
        if acc < PT_THRESH:
            fn += 1
        else:
            matched += 1
        best.append(acc)
    fp = len(preds) - matched
    total = sum(best)
    if len(gts) > MAX_SCORED_LANES:
        fn = max(fn - 1, 0)
        total -= min(best)
    scored = max(min(MAX_SCORED_LANES, len(gts)), 1)
    return total / scored, (fp / len(preds) if len(preds) else 0.0), fn / scored


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------
def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def read_json_lines(path: str | os.PathLike[str], keys: Sequence[str],
                    skip_blank: bool = True) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) per non-blank line of a JSON-lines file; each must be an object with ``keys``.
    ``skip_blank=False``: a blank line is a :class:`DataError`, as the official script fails on it."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(path, f"cannot read ({err.__class__.__name__})") from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            if skip_blank:
                continue
            raise DataError(path, "blank line (the official script's json.loads fails on it)", line=number)
        try:
            obj = json.loads(line, parse_constant=_refuse_constant)
        except ValueError as err:
            raise DataError(path, f"not valid JSON ({err})", line=number) from None
        if not isinstance(obj, dict):
            raise DataError(path, f"expected a JSON object, got {type(obj).__name__}", line=number)
        missing = [k for k in keys if k not in obj]
        if missing:
            raise DataError(path, f"missing {', '.join(repr(k) for k in missing)}", line=number)
        if not isinstance(obj["raw_file"], str) or not obj["raw_file"]:
            raise DataError(path, "'raw_file' must be a non-empty string", line=number)
        rows.append((number, obj))
    if not rows:
        raise DataError(path, "no entries (empty file)")
    return rows


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _numbers(value: Any, what: str, path: str | os.PathLike[str], line: int) -> list[float]:
    if not isinstance(value, list) or not all(_is_number(v) for v in value):
        raise DataError(path, f"{what} must be a list of finite numbers", line=line)
    return value


def checked_h_samples(obj: dict[str, Any], path: str | os.PathLike[str], line: int) -> list[float]:
    """A ground-truth entry's ``h_samples`` (rows, px): a non-empty list of numbers, else :class:`DataError`."""
    ys = _numbers(obj["h_samples"], "'h_samples'", path, line)
    if not ys:
        raise DataError(path, "'h_samples' is empty", line=line)
    return ys


def checked_lanes(obj: dict[str, Any], n: int, path: str | os.PathLike[str], line: int) -> list[list[float]]:
    """An entry's ``lanes``, each a list of ``n`` numbers (one x per h_samples row), else :class:`DataError`."""
    lanes = obj["lanes"]
    if not isinstance(lanes, list):
        raise DataError(path, "'lanes' must be a list of lanes", line=line)
    for i, lane in enumerate(lanes):
        _numbers(lane, f"lane {i}", path, line)
        if len(lane) != n:
            raise DataError(path, f"lane {i} has {len(lane)} x values but h_samples has {n} rows", line=line)
    return lanes


def _by_raw_file(rows: list[tuple[int, dict[str, Any]]], path: str | os.PathLike[str]) -> dict[str, tuple[int, dict[str, Any]]]:
    seen: dict[str, tuple[int, dict[str, Any]]] = {}
    for number, obj in rows:
        if obj["raw_file"] in seen:
            raise DataError(path, f"raw_file {obj['raw_file']!r} repeats line {seen[obj['raw_file']][0]}", line=number)
        seen[obj["raw_file"]] = (number, obj)
    return seen


def bench_files(pred_path: str | os.PathLike[str], gt_path: str | os.PathLike[str]) -> dict[str, Any]:
    """Score a prediction file against a ground-truth file (JSON lines, see the module docstring).

    Returns ``{"Accuracy", "FP", "FN"}`` (means over the ground-truth images), ``"images"`` and
    ``"penalised"`` (images scored (0, 0, 1) for run time or too many lanes). Everything is checked
    before anything is scored."""
    gts = _by_raw_file(read_json_lines(gt_path, GT_KEYS, skip_blank=False), gt_path)
    preds = read_json_lines(pred_path, PRED_KEYS, skip_blank=False)
    _by_raw_file(preds, pred_path)
    for number, gt in gts.values():
        checked_lanes(gt, len(checked_h_samples(gt, gt_path, number)), gt_path, number)
    jobs = []
    for number, pred in preds:
        if pred["raw_file"] not in gts:
            raise DataError(pred_path, f"raw_file {pred['raw_file']!r} is not in the ground truth {gt_path}", line=number)
        gt = gts[pred["raw_file"]][1]
        run_time = pred["run_time"]
        if not _is_number(run_time):
            raise DataError(pred_path, f"'run_time' must be one finite number (ms), got {json.dumps(run_time)[:40]}", line=number)
        jobs.append((checked_lanes(pred, len(gt["h_samples"]), pred_path, number), gt["lanes"], gt["h_samples"], run_time))
    predicted = {pred["raw_file"] for _, pred in preds}
    for raw_file, (number, _) in gts.items():
        if raw_file not in predicted:
            raise DataError(pred_path, f"no prediction for {raw_file!r} (ground truth {gt_path}:{number})")
    accuracy = fp = fn = 0.0
    slow_or_crowded = 0
    for pred_lanes, gt_lanes, ys, run_time in jobs:
        a, p, n = bench_image(pred_lanes, gt_lanes, ys, run_time)
        accuracy += a
        fp += p
        fn += n
        slow_or_crowded += penalised(len(pred_lanes), len(gt_lanes), run_time)
    num = len(gts)
    return {"Accuracy": accuracy / num, "FP": fp / num, "FN": fn / num, "images": num, "penalised": slow_or_crowded}


def official_json(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The official script's output list from :func:`bench_files`' result."""
    return [
        {"name": "Accuracy", "value": result["Accuracy"], "order": "desc"},
        {"name": "FP", "value": result["FP"], "order": "asc"},
        {"name": "FN", "value": result["FN"], "order": "asc"},
    ]
