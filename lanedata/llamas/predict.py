"""A deployed lane model's predictions in LLAMAS' official segmentation layout, for its mAP.

    python -m lanedata.llamas.predict --model M.onnx --llamas-root L --split valid --pred-root P
        [--images color|gray] [--max-images N] [--backend ...] [--device ...]
    python -m lanedata.llamas.evaluate --labels-root L/labels --pred-root P --split valid     # the mAP

For every label of the split, the image is run through the model (its sidecar's preprocessing
must be LLAMAS': 1276x717 frames cropped at row 333, :mod:`lanedata.llamas.metric`), the class
probabilities (background, l1, l0, r0, r1 = the model's channels 0..4: CULane's lane IDs left to
right, as ``lanedata.llamas.convert`` labels them) are resized linearly to the 1276x384 crop, the 333
top rows filled as the official pipeline fills them (background 1, lanes 0), and written as 8-bit
PNGs ``P/<rec>/<ts>.json_<c>.png`` (:func:`lanedata.llamas.metric.write_predictions`). Torch-free.
"""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from lanedata.llamas import metric as llamas
from runtime.backends import add_model_arguments, load_backend, probabilities
from runtime.cli import Parser, check_output_dir, positive_int, run_main
from runtime.culane import read_image
from runtime.errors import DataError
from runtime.preprocess import Preprocess


def check_preprocess(model: str, pre: Preprocess) -> None:
    """The model must read LLAMAS frames as the official crop does."""
    expected = (llamas.IMAGE_WIDTH, llamas.IMAGE_HEIGHT, llamas.CROP_TOP)
    if (pre.src_width, pre.src_height, pre.crop_top) != expected:
        raise DataError(model, f"its preprocessing reads {pre.src_width}x{pre.src_height} frames cropped at row {pre.crop_top}, "
                               f"not LLAMAS' {expected[0]}x{expected[1]} at {expected[2]}: train it on a LLAMAS root "
                               "(training/configs/llamas)")


def full_size_probabilities(seg: np.ndarray) -> np.ndarray:
    """(5, h, w) network-size probabilities -> (5, 717, 1276) float32 in the official layout."""
    size = (llamas.IMAGE_WIDTH, llamas.CROP_HEIGHT)
    cropped = np.stack([cv2.resize(channel.astype(np.float32), size, interpolation=cv2.INTER_LINEAR) for channel in seg])
    return llamas.full_frame(np.clip(cropped, 0.0, 1.0), background_channel=0)


def predict_split(model: str, llamas_root: Path, split: str, pred_root: Path, kind: str = "color", max_images: int | None = None,
                  backend: str = "auto", device: str = "auto", progress: bool = False) -> int:
    """Write the predictions of every (or the first ``max_images``) label of a split; returns the count."""
    labels = llamas.list_labels(llamas_root / "labels", split)[:max_images]
    images = [llamas.image_path(label, kind=kind) for label in labels]
    for label, image in zip(labels, images):
        if not image.is_file():
            raise DataError(label, f"its image {image} not found")
    runner = load_backend(model, backend, device)
    check_preprocess(model, runner.sidecar.pre)
    from tqdm import tqdm

    for label, image in tqdm(list(zip(labels, images)), unit="image", disable=not progress, file=sys.stderr, leave=False):
        seg, _ = probabilities(runner.infer(runner.sidecar.pre(read_image(image))))
        if seg.shape[1] != len(llamas.CLASS_NAMES):
            raise DataError(model, f"{seg.shape[1]} output classes, LLAMAS has {len(llamas.CLASS_NAMES)} (background + 4 lanes)")
        llamas.write_predictions(pred_root, label, full_size_probabilities(seg[0]))
    return len(labels)


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m lanedata.llamas.predict", description=__doc__.split("\n")[0])
    add_model_arguments(parser)
    parser.add_argument("--llamas-root", required=True, help="LLAMAS root (labels/, color_images/ or grayscale_images/)")
    parser.add_argument("--split", default="valid", choices=llamas.SPLITS, help="split whose labels are predicted (val / test: a root converted with --split-valid)")
    parser.add_argument("--pred-root", required=True, help="where the prediction PNGs go")
    parser.add_argument("--images", choices=("color", "gray"), default="color")
    parser.add_argument("--max-images", type=positive_int)
    args = parser.parse_args(argv)

    def body() -> int:
        check_output_dir(args.pred_root, "prediction folder", [args.llamas_root, args.model])
        count = predict_split(args.model, Path(args.llamas_root), args.split, Path(args.pred_root), args.images, args.max_images,
                              args.backend, args.device, progress=sys.stderr.isatty())
        print(f"{count} images -> {args.pred_root}; mAP: python -m lanedata.llamas.evaluate --labels-root {Path(args.llamas_root) / 'labels'} "
              f"--pred-root {args.pred_root} --split {args.split}")
        return 0

    return run_main(body)


if __name__ == "__main__":
    sys.exit(main())
