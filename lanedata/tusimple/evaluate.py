"""TuSimple lane accuracy, FP and FN of a prediction file, as the official ``evaluate/lane.py`` reports them.

    python -m lanedata.tusimple.evaluate --pred P.json --gt G.json [--out report.json]

Both files hold one JSON object per line; the rules and constants: :mod:`lanedata.tusimple.metric`.
Prints the totals and the official JSON list; ``--out`` writes that list (atomically).
"""
from __future__ import annotations

import json
import sys

from lanedata.tusimple.metric import bench_files, official_json
from runtime.atomic import atomic_write_json
from runtime.cli import Parser, check_output_file, run_main


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m lanedata.tusimple.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--pred", required=True, help="predictions, one JSON object per line (raw_file, lanes, run_time)")
    parser.add_argument("--gt", required=True, help="ground truth, one JSON object per line (raw_file, lanes, h_samples)")
    parser.add_argument("--out", help="write the report (official JSON list) here too")
    args = parser.parse_args(argv)

    def body() -> int:
        if args.out:
            check_output_file(args.out, "report", inputs=[args.pred, args.gt])
        result = bench_files(args.pred, args.gt)
        report = official_json(result)
        if args.out:
            atomic_write_json(args.out, report)
        print(f"TuSimple: {result['images']} images ({result['penalised']} penalised for run time or lane count): "
              f"Accuracy {result['Accuracy']:.6f}, FP {result['FP']:.6f}, FN {result['FN']:.6f}")
        print(json.dumps(report))
        return 0

    return run_main(body)


if __name__ == "__main__":
    sys.exit(main())
