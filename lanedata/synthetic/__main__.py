"""Command line of the synthetic CULane generator (see ``--help``)."""
from __future__ import annotations

import logging
import sys

from runtime.cli import Parser, check_output_dir, check_output_file, fail, non_negative_int, positive_int
from runtime.errors import DataError
from lanedata.synthetic.dataset import add_generator_arguments, generate_dataset
from lanedata.synthetic.video import generate_video


def main(argv: list[str] | None = None) -> int:
    parser = Parser(
        prog="python -m lanedata.synthetic",
        description="Generate a synthetic road-scene dataset in the CULane layout (and optionally a drive video).",
    )
    add_generator_arguments(parser, "data/culane-synth")
    parser.add_argument("--train", type=non_negative_int, default=1000, help="training images")
    parser.add_argument("--val", type=non_negative_int, default=200, help="validation images")
    parser.add_argument("--test-per-category", type=non_negative_int, default=100, help="test images per CULane category (9 categories)")
    parser.add_argument("--video", help="also render a continuous drive to this .mp4 path")
    parser.add_argument("--frames", type=positive_int, default=900, help="frames of the drive video (30 fps)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.video and not args.video.lower().endswith(".mp4"):
        parser.error("--video must name an .mp4 file")
    try:
        check_output_dir(args.out, "dataset folder")
        if args.video:
            check_output_file(args.video, "drive video")
        manifest = generate_dataset(
            args.out, args.train, args.val, args.test_per_category, args.seed,
            workers=args.workers, force=args.force, progress=not args.no_progress,
        )
        print(
            f"synthetic CULane at {args.out}: {manifest['counts']} images, "
            f"{manifest['seconds']} s ({manifest['ms_per_image_per_worker']} ms/image/worker, {manifest['workers']} workers)"
        )
        if args.video:
            sidecar = generate_video(args.video, args.frames, args.seed, progress=not args.no_progress)
            print(f"synthetic drive at {args.video}: {sidecar['frames']} frames, ground truth in {sidecar['ground_truth']}/")
    except (DataError, OSError, ValueError, RuntimeError) as err:
        return fail(err)
    return 0


if __name__ == "__main__":
    sys.exit(main())
