"""ApolloScape lane-marking mIoU of predictions in the official submission format.

    python -m lanedata.apolloscape.evaluate --data-root ROOT --list LIST --pred-dir DIR
                                           [--report REPORT.json] [--workers N]

``LIST`` names the images (``image``, ``image label`` or IntRA-KD's ``image label 1 1 1 1``; paths
relative to ROOT); the ground truth is the line's label, else the released one beside the image
(:func:`lanedata.apolloscape.labels.label_path`), colour-coded or grey IDs. A prediction is
``DIR/<image path>.png`` with the image's extension replaced: one channel of the table's regular
IDs (0, 200..250), the size of its label, as ApolloScape's server takes them. Every file is checked
before any is scored; a missing one is one line naming it. Scores as the official evaluation
(cityscapesScripts with the lane table): :mod:`lanedata.apolloscape.labels`. Prints mIoU and the IoU per
evaluated class; ``--report`` writes them as JSON (atomically).
"""
from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from lanedata.apolloscape import labels as apollo
from runtime import marking_classes
from runtime.atomic import atomic_write_json
from runtime.cli import Parser, check_output_file, run_main
from runtime.resources import worker_count
from runtime.culane import Sample, read_list
from runtime.errors import DataError
from runtime.miou import format_iou_table


def ground_truth_path(root: Path, sample: Sample) -> Path:
    return root / apollo.sample_label(sample.image, sample.label)


def prediction_path(pred_dir: Path, sample: Sample) -> Path:
    return pred_dir / (sample.stem + ".png")


def check_files(root: Path, pred_dir: Path, samples: list[Sample]) -> None:
    """Every ground truth and prediction exists (the first missing one named, with its list line)."""
    for sample in samples:
        for path, what in ((ground_truth_path(root, sample), "label map"), (prediction_path(pred_dir, sample), "prediction")):
            if not path.is_file():
                raise DataError(sample.source, f"{what} {path} not found", line=sample.line)


def score_one(root: Path, pred_dir: Path, sample: Sample) -> np.ndarray:
    """One image's (36, 36) confusion matrix."""
    gt = apollo.read_label(ground_truth_path(root, sample))
    pred_file = prediction_path(pred_dir, sample)
    pred = apollo.read_label(pred_file, expected_shape=gt.shape, colour=False)
    if (pred == marking_classes.IGNORE).any():
        raise DataError(pred_file, "predicts noise / ignored (IDs 249, 255): a prediction must be one of the 36 classes")
    return apollo.confusion(pred, gt)


def evaluate(root: Path, pred_dir: Path, list_path: Path, workers: int = 4, progress: bool = False) -> dict:
    """The report: official mIoU, IoU per evaluated class, images, parameters."""
    samples = read_list(list_path).samples
    if not samples:
        raise DataError(list_path, "the list names no images (empty file)")
    check_files(root, pred_dir, samples)
    from tqdm import tqdm

    with ThreadPoolExecutor(max_workers=workers) as pool:
        matrices = pool.map(lambda s: score_one(root, pred_dir, s), samples)
        matrix = sum(tqdm(matrices, total=len(samples), unit="image", disable=not progress, file=sys.stderr, leave=False))
    return {**apollo.report(matrix), "images": len(samples), "list": str(list_path), "pred_dir": str(pred_dir),
            "metric": "ApolloScape lane-marking mIoU (cityscapesScripts arithmetic with the lane table: one confusion "
                      "matrix over all images; classes with ignoreInEval and classes absent from both left out)",
            "confusion": np.asarray(matrix).tolist()}


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m lanedata.apolloscape.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--list", required=True, help="images to score (relative to the root)")
    parser.add_argument("--pred-dir", required=True, help="predictions: <image path>.png, regular IDs, one channel")
    parser.add_argument("--report", help="JSON report")
    parser.add_argument("--workers", type=worker_count, default=4, help="threads reading PNGs")
    args = parser.parse_args(argv)

    def body() -> int:
        root, pred_dir = Path(args.data_root), Path(args.pred_dir)
        for folder, what in ((root, "dataset root"), (pred_dir, "prediction folder")):
            if not folder.is_dir():
                raise DataError(folder, f"{what} is not a directory")
        if args.report:
            check_output_file(args.report, "report", [args.list])
        report = evaluate(root, pred_dir, Path(args.list), args.workers, progress=sys.stderr.isatty())
        if args.report:
            atomic_write_json(args.report, report)
        print(format_iou_table(report))
        return 0

    return run_main(body)


if __name__ == "__main__":
    sys.exit(main())
