"""``reports/<dataset>/SUMMARY.md`` (for people) and ``summary.json`` (for machines) from the stages' reports.

    python -m pipeline.summary --dataset NAME --data-root ROOT --profile PROFILE [--synthetic]
                               [--task lanes|markings] [--benchmark culane|apolloscape|llamas] [--base DIR]

Every number is read from a stage's own report file, so the summary can be checked against them.
Lanes: :mod:`pipeline.summary_lanes` (F1; LLAMAS also its mAP, :mod:`pipeline.summary_llamas`),
markings: :mod:`pipeline.summary_markings` (mIoU); each module's docstring lists its ``summary.json``
fields. What both read and print: :mod:`pipeline.report`. This module only parses the arguments.
"""
from __future__ import annotations

import sys
from pathlib import Path

from pipeline import summary_lanes, summary_markings
from pipeline.report import METRICS
from pipeline.stages import BENCHMARKS, ROOT
from runtime.atomic import atomic_write_json, atomic_write_text
from runtime.cli import Parser


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m pipeline.summary", description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--profile", required=True)
    parser.add_argument("--synthetic", action="store_true")
    parser.add_argument("--task", choices=tuple(METRICS), default="lanes", help="lanes (F1) or markings (mIoU)")
    parser.add_argument("--benchmark", choices=BENCHMARKS, default="culane", help="whose paper figures (llamas: also its mAP reports)")
    parser.add_argument("--base", default=str(ROOT))
    args = parser.parse_args(argv)
    base = Path(args.base)
    if not Path(args.data_root).is_dir():
        parser.exit(2, f"error: {args.data_root}: dataset root is not a directory\n")
    reports, runs = base / "reports" / args.dataset, base / "runs" / args.dataset
    if args.task == "markings":
        summary = summary_markings.build(args.dataset, args.data_root, args.profile, args.synthetic, base)
        text = summary_markings.markdown(summary, reports, runs)
    else:
        summary = summary_lanes.build(args.dataset, args.data_root, args.profile, args.synthetic, base, args.benchmark)
        text = summary_lanes.markdown(summary, reports, runs)
    atomic_write_json(reports / "summary.json", summary)
    atomic_write_text(reports / "SUMMARY.md", text)
    print(f"{reports / 'SUMMARY.md'} and summary.json written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
