"""CULane F1 of predictions in the CULane layout, per list (category) and pooled.

    python -m runtime.evaluate_culane --data-root ROOT --pred-dir DIR [--list LIST ...]
                                      [--width 30] [--iou 0.5] [--workers N] [--json]

Predictions live at ``DIR/<image path without .jpg>.lines.txt``; a missing file means no lanes.
Without ``--list``, every ``ROOT/list/test_split/test*_<category>.txt`` is evaluated and a total
pooled over them is added (CULane's ``cross`` has no annotations: read its FP count). Prints a
table; with ``--json`` the last line of stdout is one JSON object:
``{"lists": {name: {tp, fp, fn, images, precision, recall, f1}}, "total": {...}, "params": {...}}``.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from runtime.cli import Parser
from runtime.resources import worker_count
from runtime.culane import CULANE_HEIGHT, CULANE_WIDTH, default_lists, split_category, without_empty
from runtime.culane_metric import MetricParams, evaluate_lists, format_table, opencv_draws_like_official
from runtime.errors import DataError


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m runtime.evaluate_culane", description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", required=True, help="dataset root holding the annotation .lines.txt files")
    parser.add_argument("--pred-dir", required=True, help="root of the predicted .lines.txt files (same layout)")
    parser.add_argument("--list", action="append", default=[], help="list file (repeatable); default: ROOT/list/test_split/*")
    parser.add_argument("--width", type=int, default=30, help="lane width in pixels when drawing lanes (default 30)")
    parser.add_argument("--iou", type=float, default=0.5, help="IoU above which a match is a TP (default 0.5)")
    parser.add_argument("--im-width", type=int, default=CULANE_WIDTH)
    parser.add_argument("--im-height", type=int, default=CULANE_HEIGHT)
    parser.add_argument("--workers", type=worker_count, default=len(os.sched_getaffinity(0)), help="worker processes (default: usable CPUs)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args(argv)
    if args.width < 1 or not 0 <= args.iou <= 1 or args.im_width < 1 or args.im_height < 1 or args.workers < 1:
        parser.error("--width, --im-width, --im-height and --workers must be >= 1 and --iou within [0, 1]")
    if not opencv_draws_like_official():
        import cv2

        print(
            f"warning: OpenCV {cv2.__version__} draws lanes that cross the image border differently from the "
            "official evaluator's OpenCV; counts may differ slightly. Install opencv-python-headless<4.13.",
            file=sys.stderr,
        )
    try:
        if not Path(args.pred_dir).is_dir():
            raise DataError(args.pred_dir, "prediction folder not found (or not a folder)")
        if args.list:
            lists = {}
            for item in args.list:
                path = Path(item) if Path(item).is_file() else Path(args.data_root) / "list" / item
                if not path.is_file():
                    raise DataError(item, "list file not found")
                name = split_category(path)
                if name in lists:
                    raise DataError(item, f"two lists would both be reported as '{name}' ({lists[name]} and {path})")
                lists[name] = path
        else:
            lists = without_empty(default_lists(args.data_root))
        params = MetricParams(args.width, args.iou, args.im_width, args.im_height)
        results = evaluate_lists(
            args.data_root, args.pred_dir, lists, params, workers=args.workers, progress=sys.stderr.isatty()
        )
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if len(lists) == 1:
        results.pop("total")
    print(format_table(results))
    if args.json:
        payload = {
            "lists": {k: v.to_dict() for k, v in results.items() if k != "total"},
            "total": (results.get("total") or next(iter(results.values()))).to_dict(),
            "params": vars(params),
        }
        print(json.dumps(payload))
    return 0


if __name__ == "__main__":
    sys.exit(main())
