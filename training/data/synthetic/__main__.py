"""Command line of the synthetic CULane generator (see ``--help``)."""
from __future__ import annotations

import argparse
import logging
import os
import sys

from training.data.synthetic.dataset import generate_dataset
from training.data.synthetic.video import generate_video


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.data.synthetic",
        description="Generate a synthetic road-scene dataset in the CULane layout (and optionally a drive video).",
    )
    parser.add_argument("--out", required=True, help="dataset root to write (e.g. data/culane-synth)")
    parser.add_argument("--train", type=int, default=1000, help="training images")
    parser.add_argument("--val", type=int, default=200, help="validation images")
    parser.add_argument("--test-per-category", type=int, default=100, help="test images per CULane category (9 categories)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)), help="worker processes (default: usable CPUs)")
    parser.add_argument("--force", action="store_true", help="replace a dataset generated with other parameters")
    parser.add_argument("--video", help="also render a continuous drive to this .mp4 path")
    parser.add_argument("--frames", type=int, default=900, help="frames of the drive video (30 fps)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in ("train", "val", "test_per_category"):
        if getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')} must be >= 0")
    if args.workers < 1:
        parser.error("--workers must be >= 1")
    if args.video and (not args.video.lower().endswith(".mp4") or args.frames < 1):
        parser.error("--video must name an .mp4 file and --frames be >= 1")
    try:
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
    except (FileExistsError, ValueError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
