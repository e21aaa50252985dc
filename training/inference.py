"""Network outputs -> lanes, through the runtime's decoding (the same code deployment runs)."""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from runtime.culane import Sample
from runtime.culane_metric import Counts, count_image
from runtime.decode import DecodedLane, DecodeParams, LaneDecoder
from runtime.lines import read_lines_file, write_lines_file
from runtime.parallel import worker_context
from runtime.preprocess import Preprocess
from runtime.miou import confusion_matrix
from training.data.culane_dataset import CulaneImageLabels, CulaneImages, CulaneLabelInputs
from training.data.label_input import one_hot_label


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


class ClassMapPredictor:
    """Runs a model on normalised batches: (N, h, w) uint8 class maps (argmax) at the network size."""

    def __init__(self, model: nn.Module, device: torch.device, amp: bool = False) -> None:
        self.model, self.device, self.amp = model, device, amp and device.type == "cuda"

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> np.ndarray:
        was_training = self.model.training
        self.model.eval()
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            seg = self.model(images.to(self.device, non_blocking=True))[0]
        self.model.train(was_training)
        return seg.argmax(1).to(torch.uint8).cpu().numpy()


def confusion_samples(predictor: ClassMapPredictor, root: str | os.PathLike[str], samples: list[Sample], pre: Preprocess,
                      num_classes: int, batch_size: int = 8, workers: int = 2, input_kind: str = "image") -> np.ndarray:
    """(C, C) int64 confusion matrix (rows ground truth, columns prediction; label 255 not counted)
    of a model's class maps over samples, at the network size (labels resized by nearest neighbour).
    ``input_kind`` "label" feeds the one-hot label maps (LGAD's teacher)."""
    dataset = CulaneImageLabels(root, samples, pre, num_classes)
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, worker_init_fn=_worker_init,
                        multiprocessing_context=worker_context() if workers else None)
    total = np.zeros((num_classes, num_classes), np.int64)
    for images, labels, _ in loader:
        inputs = one_hot_label(labels, num_classes) if input_kind == "label" else images
        for pred, label in zip(predictor(inputs), labels.numpy()):
            total += confusion_matrix(pred, label, num_classes)
    return total


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
