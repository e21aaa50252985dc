"""mIoU of a deployed marking model (ApolloScape classes) at full label resolution, torch-free.

    python -m runtime.evaluate --model M.onnx --data-root ROOT [--list LIST] [--report R.json]
                               [--max-images N] [--backend auto] [--device cpu] [--threads N] [--batch-size N] [--json]

:mod:`runtime.evaluate` comes here when the model's sidecar names a marking class table. ``LIST``
(default ``list/test_gt.txt``) has ``/image /label`` lines; labels are one-channel PNGs of train
IDs (0..C-1, 255 ignored) at the images' full size, which is the sidecar's source size.

As ApolloScape's evaluation scores a submission: each image's prediction (argmax of ``seg_prob``
at the network size) goes back to full resolution (:func:`runtime.class_map.to_source`: nearest
neighbour onto the crop, rows above ``crop_top`` predicted ``void``), one confusion matrix
accumulates over all images (label 255 not counted), and mIoU averages the IoU of the table's
evaluated classes that occur (:func:`runtime.miou.evaluated_iou`: classes absent from both ground
truth and prediction are left out). Every image and label is checked to exist before any
inference; a missing, truncated or wrongly sized one, or a label value outside the table, stops
the run with one line naming the file. The report (``--report``, written atomically) holds
``miou``, ``iou`` per evaluated class, ``images``, ``classes`` (the table), ``confusion``, the
model and the list.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from runtime.atomic import atomic_write_json
from runtime.backends import Backend, probabilities
from runtime.class_map import class_map, to_source
from runtime.classes import ClassTable
from runtime.culane import CulaneDataset, Sample
from runtime.errors import DataError
from runtime.miou import confusion_matrix, format_iou_table, iou_report
from runtime.parallel import read_ahead
from runtime.preprocess import Preprocess

DEFAULT_LIST = "test_gt.txt"
LANE_ONLY = (("pred_dir", "--pred-dir"), ("group_by", "--group-by"), ("skip_bad", "--skip-bad"))
RULE = ("argmax at the network size, nearest neighbour (pixel centres) onto the crop, rows above crop_top void; one "
        "confusion matrix over all images, label 255 not counted; mIoU over the evaluated classes present in ground "
        "truth or prediction (cityscapesScripts' rule, as ApolloScape's evaluation)")


def check_samples(data: CulaneDataset, samples: Sequence[Sample]) -> None:
    """Every sample names a label, and its image and label exist (a stat each): the first problem
    is a :class:`DataError` naming the list line."""
    for sample in samples:
        if sample.label is None:
            raise DataError(sample.source, f"no label for {sample.image}: a marking list has '/image /label' lines",
                            line=sample.line)
        for relative, what in ((sample.image, "image"), (sample.label, "label map")):
            if not data.path(relative).is_file():
                raise DataError(sample.source, f"{what} {data.path(relative)} not found", line=sample.line)


def read_pair(data: CulaneDataset, sample: Sample, pre: Preprocess) -> tuple[np.ndarray, np.ndarray]:
    """The (src_height, src_width, 3) image and its label of the same size (values checked against the
    table); :class:`DataError` naming the file otherwise."""
    image = data.read_image(sample)
    if image.shape[:2] != (pre.src_height, pre.src_width):
        raise DataError(data.path(sample.image), f"image is {image.shape[1]}x{image.shape[0]}, the model's preprocessing "
                                                 f"expects {pre.src_width}x{pre.src_height}")
    return image, data.read_label(sample, expected_shape=image.shape[:2])


def image_confusion(seg: np.ndarray, label: np.ndarray, pre: Preprocess, num_classes: int) -> np.ndarray:
    """(C, C) int64 confusion of one image: ``seg`` (C, h, w) network output, ``label``
    (src_height, src_width) train IDs; rows ground truth, columns prediction."""
    return confusion_matrix(to_source(class_map(seg), pre), label, num_classes)


def score(backend: Backend, data_root: str | Path, samples: Sequence[Sample], batch_size: int = 1,
          progress: bool = False) -> np.ndarray:
    """(C, C) int64 confusion matrix of the model over ``samples`` at full label resolution
    (images and labels read one batch ahead in a background thread)."""
    pre, table = backend.sidecar.pre, backend.sidecar.table
    data = CulaneDataset(data_root, table.num_classes)
    check_samples(data, samples)
    chunks = [list(samples[i : i + batch_size]) for i in range(0, len(samples), batch_size)]

    def load(chunk: list[Sample]) -> tuple[np.ndarray, list[np.ndarray]]:
        pairs = [read_pair(data, s, pre) for s in chunk]
        return pre([image for image, _ in pairs]), [label for _, label in pairs]

    from tqdm import tqdm

    matrix = np.zeros((table.num_classes, table.num_classes), np.int64)
    with tqdm(total=len(samples), unit="img", desc=f"mIoU ({backend.name})", disable=not progress, file=sys.stderr,
              leave=False) as bar:
        for batch, labels in read_ahead(chunks, load):
            seg, _ = probabilities(backend.infer(batch))
            for j, label in enumerate(labels):
                matrix += image_confusion(seg[j], label, pre, table.num_classes)
            bar.update(len(labels))
    return matrix


def build_report(args: argparse.Namespace, backend: Backend, table: ClassTable, list_path: Path, images: int,
                 matrix: np.ndarray) -> dict[str, Any]:
    pre = backend.sidecar.pre
    return {"model": str(args.model), "backend": backend.name, "device": backend.device, "device_name": backend.device_name,
            "precision": backend.sidecar.precision, "data_root": str(args.data_root), "list": str(list_path),
            "max_images": args.max_images, "classes": table.name, "images": images,
            "resolution": f"{pre.src_width}x{pre.src_height} (full label resolution)", "rule": RULE,
            **iou_report(matrix, table.names, table.evaluated), "confusion": matrix.tolist()}


def run(args: argparse.Namespace, backend: Backend) -> int:
    """``runtime.evaluate``'s command for a marking model (its arguments, the backend already loaded)."""
    for attr, flag in LANE_ONLY:
        if getattr(args, attr, None):
            raise DataError(args.model, f"{flag} is for lane models; a marking model is scored by mIoU only")
    if len(args.list) > 1:
        raise DataError(args.list[1], "a marking model is scored on one --list (default list/test_gt.txt)")
    table = backend.sidecar.table
    data = CulaneDataset(args.data_root, table.num_classes)
    list_path = data.list_path(args.list[0] if args.list else DEFAULT_LIST)
    samples = data.read_list(str(list_path)).samples[: args.max_images]
    if not samples:
        raise DataError(list_path, "the list names no images (empty file)")
    matrix = score(backend, args.data_root, samples, args.batch_size, sys.stderr.isatty())
    report = build_report(args, backend, table, list_path, len(samples), matrix)
    if args.report:
        atomic_write_json(Path(args.report), report)
    print(format_iou_table(report))
    if args.json:
        print(json.dumps(report))
    return 0
