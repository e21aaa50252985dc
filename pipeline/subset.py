"""``python -m pipeline.subset --source ROOT --out VIEW --train N --val N --test-per-category N --seed S``

A reduced profile (``tiny``, ``smoke``) on a real CULane-format root trains and scores on a
seeded subset of its lists: ``VIEW`` is a dataset root whose ``list/`` holds the drawn lists
(``train_gt.txt``, ``val_gt.txt``, ``test.txt``, ``test_split/*``, and the image-only
``train.txt``, ``val.txt``) and whose other entries are symbolic links to the source root's
folders, so every tool reads it as an ordinary root and no image is copied. ``subset.json`` says
what was drawn from where.

The draw and the view: :mod:`pipeline.subset_view` (this module only parses the arguments).
"""
from __future__ import annotations

import sys
from pathlib import Path

from pipeline.subset_view import describe, plan, write_view
from runtime.cli import Parser, check_output_dir, non_negative_int, positive_int, run_main


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m pipeline.subset", description=__doc__.split("\n")[2])
    parser.add_argument("--source", required=True, help="a CULane-format root with train_gt.txt, val_gt.txt and test_split/")
    parser.add_argument("--out", required=True, help="the view folder to write (replaced)")
    parser.add_argument("--train", type=positive_int, required=True)
    parser.add_argument("--val", type=positive_int, required=True)
    parser.add_argument("--test-per-category", type=positive_int, required=True)
    parser.add_argument("--seed", type=non_negative_int, default=0)
    args = parser.parse_args(argv)

    def body() -> int:
        check_output_dir(args.out, "subset folder", inputs=[args.source])
        drawn = plan(args.source, args.train, args.val, args.test_per_category, args.seed)
        write_view(args.source, args.out, drawn, args.seed)
        print(f"subset: {describe(drawn)} (seed {args.seed}) from {Path(args.source).resolve()} at {args.out}")
        return 0

    return run_main(body)


if __name__ == "__main__":
    sys.exit(main())
