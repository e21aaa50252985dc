"""A deployed lane model's predictions in TuSimple's submission format, for its accuracy / FP / FN.

    python -m lanedata.tusimple.predict --model M.onnx --tusimple-root T --gt test_label.json --out pred.json
        [--max-images N] [--backend ...] [--device ...]
    python -m lanedata.tusimple.evaluate --pred pred.json --gt T/test_label.json                  # the scores

For every ground-truth line (``raw_file``, ``h_samples``) the image ``T/raw_file`` runs through the
model and the runtime's lane decoding (the sidecar's preprocessing and decoding parameters: the
TuSimple configs sample the rows 160..710 every 10 px, TuSimple's own), and each decoded lane's x
is read at every h_sample (linear between decoded points, -2 outside the lane's rows). A line per
image: ``{"raw_file", "lanes", "run_time"}`` with ``run_time`` in ms (preprocessing + model +
decoding, this machine; the official script penalises > 200 ms). Written atomically. Torch-free.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from runtime.atomic import atomic_write_text
from runtime.backends import add_model_arguments, load_backend, probabilities, require_lanes
from runtime.cli import Parser, check_output_file, positive_int, run_main
from runtime.culane import read_image
from runtime.decode import DecodedLane, LaneDecoder
from runtime.errors import DataError
from lanedata.tusimple.metric import GT_KEYS, checked_h_samples, read_json_lines

ABSENT = -2


def lane_at_rows(lane: DecodedLane, rows: list[float]) -> list[float]:
    """x (px) of a decoded lane at each row: linear between its points, ``ABSENT`` outside their rows."""
    points = lane.points[np.argsort(lane.points[:, 1])]  # by row, top first
    ys, xs = points[:, 1], points[:, 0]
    return [round(float(np.interp(y, ys, xs)), 2) if ys[0] <= y <= ys[-1] else ABSENT for y in rows]


def predict_file(model: str, root: Path, gt_path: Path, max_images: int | None = None, backend: str = "auto",
                 device: str = "auto", progress: bool = False) -> list[dict]:
    """One prediction per ground-truth line (the first ``max_images`` when given), in file order."""
    entries = read_json_lines(gt_path, GT_KEYS)[:max_images]
    for line, entry in entries:
        if not (root / entry["raw_file"]).is_file():
            raise DataError(gt_path, f"image {root / entry['raw_file']} not found", line=line)
    runner = load_backend(model, backend, device)
    require_lanes(runner, "lanedata.tusimple.predict")
    decoder = LaneDecoder(runner.sidecar.pre, runner.sidecar.decode_params)
    from tqdm import tqdm

    out = []
    for line, entry in tqdm(entries, unit="image", disable=not progress, file=sys.stderr, leave=False):
        rows = checked_h_samples(entry, gt_path, line)
        image = read_image(root / entry["raw_file"])
        start = time.perf_counter()
        seg, exist = probabilities(runner.infer(runner.sidecar.pre(image)))
        lanes = decoder(seg[0], exist[0])
        run_time = (time.perf_counter() - start) * 1000.0
        out.append({"raw_file": entry["raw_file"], "lanes": [lane_at_rows(lane, rows) for lane in lanes], "run_time": round(run_time, 2)})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m lanedata.tusimple.predict", description=__doc__.split("\n")[0])
    add_model_arguments(parser)
    parser.add_argument("--tusimple-root", required=True, help="TuSimple root (the raw_file paths are relative to it)")
    parser.add_argument("--gt", required=True, help="ground truth (JSON lines, e.g. test_label.json): the images and rows")
    parser.add_argument("--out", required=True, help="prediction file to write (JSON lines)")
    parser.add_argument("--max-images", type=positive_int)
    args = parser.parse_args(argv)

    def body() -> int:
        check_output_file(args.out, "prediction file", [args.gt, args.model])
        predictions = predict_file(args.model, Path(args.tusimple_root), Path(args.gt), args.max_images, args.backend,
                                   args.device, progress=sys.stderr.isatty())
        atomic_write_text(args.out, "".join(json.dumps(p) + "\n" for p in predictions))
        print(f"{len(predictions)} images -> {args.out}; scores: python -m lanedata.tusimple.evaluate --pred {args.out} --gt {args.gt}")
        return 0

    return run_main(body)


if __name__ == "__main__":
    sys.exit(main())
