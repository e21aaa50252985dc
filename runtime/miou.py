"""Mean intersection-over-union over label maps (ApolloScape-style evaluation).

Accumulate a confusion matrix over images with :func:`confusion_matrix`, then read per-class IoU
and mIoU from it. Pixels labelled ``ignore`` (255) in the ground truth are not counted.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def confusion_matrix(pred: np.ndarray, label: np.ndarray, num_classes: int, ignore: int = 255) -> np.ndarray:
    """(num_classes, num_classes) int64 counts; rows = ground truth, columns = prediction.

    ``pred`` and ``label`` are integer maps of one shape; predictions outside 0..num_classes-1
    raise ``ValueError``.
    """
    pred = np.asarray(pred)
    label = np.asarray(label)
    if pred.shape != label.shape:
        raise ValueError(f"prediction {pred.shape} and label {label.shape} differ in shape")
    keep = label != ignore
    gt = label[keep].astype(np.int64)
    pr = pred[keep].astype(np.int64)
    if gt.size and (gt.max() >= num_classes or gt.min() < 0):
        raise ValueError(f"label values outside 0..{num_classes - 1} (and {ignore})")
    if pr.size and (pr.max() >= num_classes or pr.min() < 0):
        raise ValueError(f"prediction values outside 0..{num_classes - 1}")
    return np.bincount(gt * num_classes + pr, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def class_iou(conf: np.ndarray) -> np.ndarray:
    """Per-class IoU (float64); NaN for classes absent from both ground truth and prediction
    (:func:`evaluated_iou` with every class evaluated)."""
    return evaluated_iou(conf, np.ones(len(conf), bool))


def mean_iou(conf: np.ndarray) -> float:
    """Mean of the per-class IoUs over the classes that occur (NaN classes skipped)."""
    return nan_mean(class_iou(conf))


def evaluated_iou(conf: np.ndarray, evaluated: np.ndarray) -> np.ndarray:
    """Per-class IoU as cityscapesScripts (and so ApolloScape's official evaluation) counts it:
    TP = conf[c, c], FN = row c minus TP, FP = column c over the ground-truth rows of *evaluated*
    classes other than c (pixels of a class left out of the evaluation never make false
    positives); NaN for classes not ``evaluated`` ((C,) bool) and for classes with TP + FP + FN = 0."""
    conf = np.asarray(conf, np.float64)
    evaluated = np.asarray(evaluated, bool)
    tp = np.diag(conf)
    fn = conf.sum(1) - tp
    fp = conf[evaluated].sum(0) - np.where(evaluated, tp, 0.0)
    denominator = tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(denominator > 0, tp / np.maximum(denominator, 1.0), np.nan)
    iou[~evaluated] = np.nan
    return iou


def nan_mean(values: np.ndarray) -> float:
    """Mean over the finite values (NaN when there are none)."""
    values = np.asarray(values, np.float64)
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def iou_report(conf: np.ndarray, names: Sequence[str], evaluated: Sequence[bool]) -> dict:
    """For a JSON report: mIoU (:func:`evaluated_iou`, NaN if no class scores), the IoU per evaluated
    class by name (None where absent from both), the classes scored and the pixels counted."""
    iou = evaluated_iou(conf, np.asarray(evaluated, bool))
    per_class = {names[c]: (None if np.isnan(iou[c]) else float(iou[c])) for c in range(len(names)) if evaluated[c]}
    return {"miou": nan_mean(iou), "iou": per_class, "classes_scored": int(np.isfinite(iou).sum()), "pixels": int(np.asarray(conf).sum())}


def format_iou_table(report: dict) -> str:
    """An :func:`iou_report` with ``images`` as a text table: IoU % per evaluated class, then the mIoU line."""
    rows = [f"{name:10s} {'-' if iou is None else f'{100 * iou:6.2f}'}" for name, iou in report["iou"].items()]
    return "\n".join(["class      IoU %", *rows, f"mIoU {100 * report['miou']:.2f} % over {report['classes_scored']} classes, "
                      f"{report['images']} images"])
