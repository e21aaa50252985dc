"""``python -m lanedata.labels.make_labels --data-root ROOT --list LIST [--out-list NAME] [--labels-dir DIR] [--force]``

CULane training labels from lane points: for every image of LIST (``list/train.txt`` style, or
any CULane list), its ``.lines.txt`` is read, its lanes get CULane IDs as CULane's own generator
assigns them (:mod:`lanedata.labels.lane_ids`), and

- ``ROOT/<labels-dir>/<image path>.png`` (default ``laneseg_label_w16``): the label map, each
  lane 16 px wide with its ID 1..4 through the evaluator's spline (:mod:`lanedata.labels.lane_label`,
  the function the synthetic generator draws with), 0 elsewhere, at the image's size;
- ``ROOT/list/<name>_gt.txt`` (``train.txt`` -> ``train_gt.txt``): ``/image /label e1 e2 e3 e4``
  with the four existence flags.

Every ``.lines.txt`` and image header is read and checked before anything is written (a bad file
is one line naming it). Each label is written atomically; a label already there and newer than its
``.lines.txt`` is kept, so a killed run resumes (``--force`` redraws every label); the list is
written last, atomically.
"""
from __future__ import annotations

import sys

from lanedata.labels.label_maps import LABELS_DIR, add_drawing_arguments, make_labels
from runtime.cli import Parser, run_main


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m lanedata.labels.make_labels", description=__doc__.split("\n")[2])
    parser.add_argument("--data-root", required=True, help="CULane-format dataset root")
    parser.add_argument("--list", required=True, help="list of the images to label (a name under ROOT/list, or a path)")
    parser.add_argument("--out-list", help="list to write (a name under ROOT/list, or a path; default: <list>_gt.txt beside --list)")
    parser.add_argument("--labels-dir", default=LABELS_DIR, help=f"label folder under ROOT (default: {LABELS_DIR})")
    add_drawing_arguments(parser)
    args = parser.parse_args(argv)

    def body() -> int:
        counts = make_labels(args.data_root, args.list, args.out_list, args.labels_dir, args.force, args.workers,
                             progress=sys.stderr.isatty() and not args.no_progress)
        print(f"make_labels: {counts['frames']} frames ({counts['drawn']} labels drawn, {counts['kept']} kept: already there); "
              f"lanes: {counts['lanes_read']} read, {counts['lanes_labelled']} labelled, {counts['lanes_left_out']} left out "
              f"(double lines, beyond four, or < 2 points in the image); {counts['frames_without_lanes']} frames without lanes; "
              f"wrote {counts['list']}")
        return 0

    return run_main(body)


if __name__ == "__main__":
    sys.exit(main())
