"""LLAMAS segmentation mAP of prediction maps, as the official ``evaluate_segmentation.py`` reports it.

    python -m lanedata.llamas.evaluate --labels-root L --pred-root P [--split valid] [--binary]
                                       [--workers N] [--out report.json] [--json]

Prediction files (the official layout): for each label ``<labels>/<split>/<rec>/<ts>.json`` an 8-bit
grayscale PNG per class at ``<pred-root>/<rec>/<ts>.json_<c>.png``, 1276x717, pixel value =
probability * 255; multi-class reads c = 0..4, ``--binary`` only c = 1 (:mod:`lanedata.llamas.metric`).
Every listed label must have its files: the first missing one is named and nothing is scored. The
report (``--out``, written atomically) is the dict of :func:`lanedata.llamas.metric.segmentation_map`
plus the inputs; ``--json`` prints it last.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from lanedata.llamas.metric import SPLITS, eval_classes, format_table, list_labels, missing_predictions, score_files, summarize
from runtime.atomic import atomic_write_json
from runtime.cli import Parser, check_output_file, run_main
from runtime.resources import worker_count
from runtime.errors import DataError


def _parser() -> Parser:
    parser = Parser(prog="python -m lanedata.llamas.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--labels-root", required=True, help="the LLAMAS 'labels' folder (or the dataset root holding it)")
    parser.add_argument("--pred-root", required=True, help="folder of <rec>/<ts>.json_<c>.png prediction maps")
    parser.add_argument("--split", default="valid", choices=SPLITS, help="split whose labels are scored (default valid)")
    parser.add_argument("--binary", action="store_true", help="binary evaluation (only *_1.png); default multi-class 0..4")
    parser.add_argument("--workers", type=worker_count, default=1, help="worker processes (default 1)")
    parser.add_argument("--out", help="write the report as JSON to this file (atomically)")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON line last")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    multi_class = not args.binary

    def body() -> int:
        if args.out:
            check_output_file(args.out, "report", [args.labels_root, args.pred_root])
        labels = list_labels(args.labels_root, args.split)
        if not Path(args.pred_root).is_dir():
            raise DataError(args.pred_root, "prediction folder not found (or not a folder)")
        missing = missing_predictions(args.pred_root, labels, multi_class)
        if missing:
            raise DataError(missing[0], f"prediction file missing ({len(missing)} of "
                                        f"{len(labels) * len(eval_classes(multi_class))} expected files missing)")
        per_image = list(score_files(labels, args.pred_root, multi_class, args.workers, sys.stderr.isatty()))
        report = {"labels_root": os.fspath(args.labels_root), "pred_root": os.fspath(args.pred_root),
                  "split": args.split, **summarize(per_image, multi_class)}
        print(format_table(report))
        if args.out:
            atomic_write_json(args.out, report)
        if args.json:
            print(json.dumps(report))
        return 0

    return run_main(body)


if __name__ == "__main__":
    sys.exit(main())
