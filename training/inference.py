"""Network outputs -> lanes, through the runtime's decoding (the same code deployment runs)."""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import cv2
import torch
from torch import nn
from torch.utils.data import DataLoader

from runtime.culane import Sample
from runtime.culane_metric import Counts, count_image
from runtime.decode import DecodedLane, DecodeParams, LaneDecoder
from runtime.lines import read_lines_file, write_lines_file
from runtime.parallel import worker_context
from runtime.preprocess import Preprocess
from training.data.culane_dataset import CulaneImages, CulaneLabelInputs


def _worker_init(_: int) -> None:
    cv2.setNumThreads(1)


class LanePredictor:
    """Runs a model on normalised batches and decodes each image's lanes."""

    def __init__(self, model: nn.Module, pre: Preprocess, decode: DecodeParams, device: torch.device, amp: bool = False) -> None:
        self.model, self.device, self.amp = model, device, amp and device.type == "cuda"
        self.decoder = LaneDecoder(pre, decode)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> list[list[DecodedLane]]:
        was_training = self.model.training
        self.model.eval()
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            seg, exist = self.model(images.to(self.device, non_blocking=True))[:2]
        self.model.train(was_training)
        probs = torch.softmax(seg.float(), dim=1).cpu().numpy()
        exist_p = torch.sigmoid(exist.float()).cpu().numpy()
        return [self.decoder(probs[i], exist_p[i]) for i in range(len(probs))]


def predict_samples(predictor: LanePredictor, root: str | os.PathLike[str], samples: list[Sample], pre: Preprocess,
                    batch_size: int = 8, workers: int = 2, progress: bool = False, input_kind: str = "image") -> Iterable[tuple[Sample, list[DecodedLane]]]:
    """Yield (sample, lanes) for every sample, in order. ``input_kind`` "label" feeds the one-hot
    label maps instead of the images (LGAD's teacher)."""
    dataset = CulaneLabelInputs(root, samples, pre) if input_kind == "label" else CulaneImages(root, samples, pre)
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, worker_init_fn=_worker_init,
                        multiprocessing_context=worker_context() if workers else None)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(samples), desc="predict", unit="img", leave=False)
    for images, indices in loader:
        for index, lanes in zip(indices.tolist(), predictor(images)):
            yield samples[index], lanes
        if bar:
            bar.update(len(indices))
    if bar:
        bar.close()


def score_samples(predictor: LanePredictor, root: str | os.PathLike[str], samples: list[Sample], pre: Preprocess,
                  batch_size: int = 8, workers: int = 2, pred_dir: str | os.PathLike[str] | None = None, input_kind: str = "image") -> Counts:
    """CULane counts of a model over samples (annotations from their ``.lines.txt``); optionally
    writes the predictions in the CULane layout under ``pred_dir``."""
    total = Counts()
    for sample, lanes in predict_samples(predictor, root, samples, pre, batch_size, workers, input_kind=input_kind):
        points = [lane.points for lane in lanes]
        if pred_dir is not None:
            write_lines_file(Path(pred_dir) / sample.lines_name, points, durable=False)
        total += count_image(read_lines_file(Path(root) / sample.lines_name), points)
    return total
