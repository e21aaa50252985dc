"""Camera-shift report: F1 of deployed lane models on a root's frames as other mounts would see them.

    python -m runtime.evaluate_shifts --model M [--label L] [--model M2 --label L2 ...] --data-root ROOT
                                      [--list LIST] [--threads N] [--report R.json] [--markdown R.md]

Scores every model on the frames as they are and under each shift of
:data:`runtime.camera_shift.SHIFTS` (pitch +-4 deg, height x0.7 / x1.4, a wider and a narrower
field of view, the bottom 20 % cut as by a camera that does not see the hood): F1 per shift and its
ratio to the unshifted F1. The shifted roots are written to a temporary folder and removed. No
data is needed beyond the root: a model of one camera collapses here, a camera-agnostic one
degrades gently. Bad input: one ``error:`` line naming the file.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from runtime.atomic import atomic_write_json, atomic_write_text
from runtime.backends import BACKENDS, load_backend
from runtime.camera_shift import SHIFTS, shift_table, write_shifted_roots
from runtime.cli import Parser, check_output_file, positive_int, run_main, with_sidecars
from runtime.culane import read_list
from runtime.errors import DataError
from runtime.scoring import check_files_exist, count_models, read_lists, resolve_lists, tally


def _parser() -> Parser:
    parser = Parser(prog="python -m runtime.evaluate_shifts", description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", required=True, help="a deployed lane model with its .json sidecar (repeatable)")
    parser.add_argument("--label", action="append", default=[], help="a name per --model (default: the file name)")
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--list", default="test.txt", help="list under ROOT/list (default test.txt)")
    parser.add_argument("--backend", default="auto", choices=BACKENDS)
    parser.add_argument("--threads", type=positive_int)
    parser.add_argument("--report", help="write the results as JSON here (atomically)")
    parser.add_argument("--markdown", help="write the table as Markdown here (atomically)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)

    def body() -> int:
        if args.label and len(args.label) != len(args.model):
            raise DataError("--label", f"{len(args.label)} labels for {len(args.model)} models")
        labels = args.label or [Path(m).name for m in args.model]
        inputs = [p for m in args.model for p in with_sidecars(m)] + [args.data_root]
        for path in filter(None, (args.report, args.markdown)):
            check_output_file(path, "report", inputs)
        backends = [load_backend(m, args.backend, "cpu", args.threads) for m in args.model]
        [(name, listing)] = resolve_lists(args.data_root, [args.list]).items()
        samples = read_lists({name: listing})[name]
        missing = check_files_exist(args.data_root, samples)
        if missing:
            raise DataError(missing[0][1].path, missing[0][1].problem, line=missing[0][1].line)
        record: dict[str, Any] = {"data_root": str(args.data_root), "list": str(listing), "images": len(samples),
                                  "shifts": {s.name: {"pitch_deg": s.pitch, "height": s.height, "focal": s.focal, "cut_bottom": s.cut_bottom}
                                             for s in SHIFTS},
                                  "models": {label: {} for label in labels}}
        base = [tally({name: samples}, c)["total"] for c in count_models(backends, args.data_root, samples)]
        for label, counts in zip(labels, base):
            record["models"][label]["unshifted"] = counts.to_dict()
        with tempfile.TemporaryDirectory(prefix="camera-shift-") as tmp:
            listings = write_shifted_roots(args.data_root, samples, SHIFTS, tmp)
            for shift in SHIFTS:
                root = Path(tmp) / shift.slug
                shifted = read_list(listings[shift]).samples
                counts = [tally({name: shifted}, c)["total"] for c in count_models(backends, root, shifted)]
                for label, c, b in zip(labels, counts, base):
                    ratio = None if c.f1 is None or not b.f1 else c.f1 / b.f1
                    record["models"][label][shift.name] = {**c.to_dict(), "ratio": ratio}
                print(f"{shift.name}: " + ", ".join(f"{label} F1 {100 * (c.f1 or 0):.1f} %" for label, c in zip(labels, counts)),
                      flush=True)
        table = shift_table(record)
        print(table, end="")
        if args.report:
            atomic_write_json(Path(args.report), record)
        if args.markdown:
            atomic_write_text(Path(args.markdown), table)
        return 0

    return run_main(body)


if __name__ == "__main__":
    sys.exit(main())
