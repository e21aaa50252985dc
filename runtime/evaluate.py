"""F1 per category of a deployed lane model, or mIoU of a marking model (any backend, any precision), torch-free.

    python -m runtime.evaluate --model M --data-root ROOT [--list LIST ...] [--backend auto] [--device cpu]
                               [--threads N] [--max-images N] [--pred-dir DIR] [--group-by drive] [--skip-bad]
                               [--report R.json] [--json]

Reads images through the runtime's reader, preprocesses them as the model's sidecar says, runs
the backend, decodes lanes with the sidecar's parameters, optionally writes predictions in the
CULane layout, and counts them against the annotations exactly as the official evaluator does. Frames of any size are
scored: through the model's frame policy (as ``infer_video`` feeds a video), lanes mapped back into
the frame, the metric at the frame's own size with the lane width scaled to it
(:mod:`runtime.scoring`). The report also says how many frames got no lane at all (``no_lanes``).
Without ``--list`` every ``list/test_split`` category is scored, plus the pooled total.
``--group-by drive`` also scores the pooled images per drive (the first folder of each image
path, CULane's ``driver_xx_30frame``), in the report's ``groups.drive``.

Before any inference: the report and prediction locations are checked writable, every list must
name images, and every listed image and annotation must exist. A missing, truncated or
undecodable image stops the run with one line naming it, or with ``--skip-bad`` is left out of
every count, listed on stderr and in the report's ``skipped``. Predictions are written into a
temporary folder moved into ``--pred-dir`` only when the whole run succeeded.

A marking model (its sidecar's ``class_table`` has no lanes, e.g. ``apolloscape``) is scored by
mIoU at full label resolution instead, on one ``--list`` (default ``list/test_gt.txt``):
:mod:`runtime.marking_scoring`.
"""
from __future__ import annotations

import json
import sys
from contextlib import nullcontext
from pathlib import Path

from runtime.atomic import atomic_write_json, staged_directory
from runtime.backends import BACKENDS, DEVICES, Backend, load_backend
from runtime.cli import Parser, check_output_dir, check_output_file, positive_int, run_main, with_sidecars
from runtime.culane import Sample
from runtime.culane_metric import Counts, format_table
from runtime.resources import check_batch
from runtime.errors import DataError
from runtime.frame_policy import DEFAULT_MODE, MODES
from runtime.scoring import (GROUPS, check_files_exist, count_models, counts_by_image, distinct, frames_without_lanes, group_counts,
                             read_lists, resolve_lists, tally)


def _parser() -> Parser:
    parser = Parser(prog="python -m runtime.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="a deployed artifact with its .json sidecar")
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--list", action="append", default=[], help="list (repeatable); default: ROOT/list/test_split/* "
                        "(a marking model: one list, default ROOT/list/test_gt.txt)")
    parser.add_argument("--backend", default="auto", choices=BACKENDS)
    parser.add_argument("--device", default="cpu", choices=DEVICES)
    parser.add_argument("--threads", type=positive_int)
    parser.add_argument("--batch-size", type=positive_int, default=1)
    parser.add_argument("--max-images", type=positive_int, help="first N images of each list")
    parser.add_argument("--pred-dir", help="also write predictions (CULane layout) here; filled only when the whole run succeeds")
    parser.add_argument("--frame-policy", choices=MODES, default=DEFAULT_MODE,
                        help="how frames of another size meet the model's geometry (runtime/frame_policy.py; default letterbox)")
    parser.add_argument("--group-by", choices=sorted(GROUPS), help="also score the pooled images per group (drive: first folder of the image path)")
    parser.add_argument("--skip-bad", action="store_true",
                        help="leave out missing, truncated or undecodable images (counted, listed on stderr and in the report) "
                             "instead of stopping at the first")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--report", help="also write the results as JSON to this file (atomically)")
    return parser


SKIP_HINT = "--skip-bad leaves such images out"


def _refuse_or_skip(problems: list[tuple[Sample, DataError]], skip_bad: bool) -> None:
    if problems and not skip_bad:
        more = f" (and {len(problems) - 1} more; {SKIP_HINT})" if len(problems) > 1 else f" ({SKIP_HINT})"
        raise DataError(problems[0][1].path, problems[0][1].problem + more, line=problems[0][1].line)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)

    def body() -> int:
        inputs = with_sidecars(args.model) + [args.data_root] + args.list
        if args.report:
            check_output_file(args.report, "report", inputs)
        if args.pred_dir:
            check_output_dir(args.pred_dir, "prediction folder", inputs)  # never into the data root: it holds the annotations
        backend = load_backend(args.model, args.backend, args.device, args.threads)
        pre = backend.sidecar.pre
        check_batch("--batch-size", args.batch_size, 3, backend.sidecar.table.num_classes, pre.net_height, pre.net_width, args.model)
        if not backend.sidecar.table.existence:  # a marking model: mIoU at full label resolution
            from runtime.marking_scoring import run

            return run(args, backend)
        per_list = read_lists(resolve_lists(args.data_root, args.list), args.max_images)
        samples = distinct(per_list)
        missing = check_files_exist(args.data_root, samples)
        _refuse_or_skip(missing, args.skip_bad)
        absent = {s.image for s, _ in missing}
        skipped: list[tuple[Sample, DataError]] = list(missing)
        readable = [s for s in samples if s.image not in absent]

        def on_bad(sample: Sample, err: DataError) -> None:
            _refuse_or_skip([(sample, err)], args.skip_bad)
            skipped.append((sample, err))

        with staged_directory(args.pred_dir) if args.pred_dir else nullcontext(None) as pred_dir:
            [counts] = count_models([backend], args.data_root, readable, args.batch_size, pred_dir, sys.stderr.isatty(),
                                    on_bad=on_bad, frame_policy=args.frame_policy)
            if not counts:
                raise DataError(args.data_root, f"none of the {len(samples)} listed images could be read")
        report(args, backend, per_list, samples, counts, skipped)
        return 0

    return run_main(body)


def report(args, backend: Backend, per_list: dict[str, list[Sample]], samples: list[Sample], counts: dict[str, Counts],
           skipped: list[tuple[Sample, DataError]]) -> None:
    """Print the table (and groups), write ``--report``, print ``--json``; list skipped images on stderr."""
    results = tally(per_list, counts)
    groups = group_counts(samples, counts, GROUPS[args.group_by]) if args.group_by else None
    print(format_table(results))
    empty = frames_without_lanes(counts)
    print(f"frames with no lane found: {empty['frames']} of {empty['images']} ({empty['annotated']} of them with annotated lanes)")
    if groups is not None:
        print(f"\nper {args.group_by}:\n" + format_table(groups))
    for sample, err in skipped:
        print(f"skipped: {err}", file=sys.stderr)
    if skipped:
        print(f"warning: {len(skipped)} of {len(samples)} images skipped (--skip-bad): not scored", file=sys.stderr)
    record = {"model": args.model, "backend": backend.name, "device": backend.device, "device_name": backend.device_name,
              "precision": backend.sidecar.precision, "data_root": str(args.data_root), "max_images": args.max_images,
              "frame_policy": args.frame_policy,
              "lists": {k: v.to_dict() for k, v in results.items()},
              "per_image": counts_by_image(counts),
              "no_lanes": frames_without_lanes(counts),
              "skipped": [{"image": s.image, "problem": str(err)} for s, err in skipped]}
    if groups is not None:
        record["groups"] = {args.group_by: {k: v.to_dict() for k, v in groups.items()}}
    if args.report:
        atomic_write_json(Path(args.report), record)
    if args.json:
        print(json.dumps(record))


if __name__ == "__main__":
    sys.exit(main())
