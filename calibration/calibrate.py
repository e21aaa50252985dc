"""INT8 post-training quantization by explicit Q/DQ, calibrated on real images, with a report.

    python -m calibration.calibrate --onnx M.onnx --data-root ROOT --list list/train_gt.txt --num-images 512
        --method entropy|minmax|percentile --target trt|cpu --out M.int8.onnx [--report-images N]

Writes the INT8 model and its sidecar, caches the activation histograms beside the FP32 model
(``M.onnx.calib-<hash>.npz``: other methods and targets then run no images), and writes the
accuracy report (``M.int8.onnx.report.md`` + ``.json``: FP32 vs INT8 on a held-back set). The
targets and the cache: :mod:`calibration.int8`; the report: :mod:`calibration.int8_report`.
"""
from __future__ import annotations

import logging
import sys

from calibration.int8 import METHODS, TARGETS, add_arguments, calibrate, check_outputs
from runtime.cli import Parser, fail
from runtime.errors import DataError


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m calibration.calibrate", description=__doc__.split("\n")[0])
    add_arguments(parser, default_images=512)
    parser.add_argument("--method", choices=METHODS, default="entropy")
    parser.add_argument("--target", choices=TARGETS, default="trt")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        check_outputs(args.out, args.onnx)
        result = calibrate(args.onnx, args.data_root, args.list, args.num_images, args.method, args.target, args.out, args.seed,
                           args.report_list, args.report_images, progress=sys.stderr.isatty())
    except (DataError, OSError) as err:
        return fail(err)
    r = result["report"]["f1"]
    c = result["calibration"]
    print(f"{result['out']}: {c['method']}/{c['target']} from {c['images']} images ({'cached ranges' if c['cache_hit'] else 'collected'}), "
          f"{c['seconds']} s; total F1 FP32 {100 * (r['fp32']['total']['f1'] or 0):.2f} -> INT8 {100 * (r['int8']['total']['f1'] or 0):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
