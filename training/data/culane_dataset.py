"""torch datasets over the runtime's CULane reader and preprocessing (the code deployment uses).

Items are ``(image, label, exist)``: (3, h, w) float32 normalised image, (h, w) int64 label
(255 = ignore), (4,) float32 lane-existence flags (reversed when augmentation mirrored the
image, as the label's lane IDs are; (0,) for a marking table, which has no existence head). Indices may be ``(index, epoch)`` pairs: the
augmentation generator is seeded from (seed, epoch, index), which makes every sample
reproducible whatever the loader's worker count and across resumed runs.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from runtime.classes import ClassTable, class_table
from runtime.culane import NUM_CLASSES, CulaneDataset, Sample
from runtime.errors import DataError
from runtime.preprocess import Preprocess
from training.data.augment import augment, lanes_present, mirror_exist
from training.data.label_input import one_hot_label


class CulaneSegmentation(Dataset):
    """Training/validation samples of a ``*_gt.txt`` list (image, label, existence flags)."""

    def __init__(self, root: str | os.PathLike[str], list_name: str, pre: Preprocess,
                 augment_params: dict[str, Any] | None = None, seed: int = 0, skip_bad: bool = False,
                 table: ClassTable | None = None) -> None:
        self.table = table or class_table("culane")
        self.data = CulaneDataset(root, self.table.num_classes)
        listing = self.data.read_list(list_name, skip_bad=skip_bad)
        self.samples: list[Sample] = listing.samples
        if not self.samples:
            raise DataError(listing.path, "list has no samples")
        for s in self.samples:
            if s.label is None or (s.exist is None and self.table.existence):
                form = "'image label e1 e2 e3 e4'" if self.table.existence else "'image label'"
                raise DataError(listing.path, f"training lists need {form} lines", line=s.line)
        self.mirror = self.table.mirror_lut()
        self.pre = pre
        self.augment_params = augment_params if augment_params and augment_params.get("enabled", True) else None
        self.seed = seed

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        index, epoch = item if isinstance(item, tuple) else (item, 0)
        sample = self.samples[index]
        image = self.data.read_image(sample)
        label = self.data.read_label(sample)
        if image.shape[:2] != label.shape:
            raise DataError(self.data.path(sample.label), f"label is {label.shape[1]}x{label.shape[0]}, image {image.shape[1]}x{image.shape[0]}")
        exist = sample.exist if self.table.existence else ()
        if self.augment_params is not None:
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, epoch, index]))
            small, small_label, flipped = augment(self.pre, image, label, self.augment_params, rng, self.mirror)
            exist = mirror_exist(exist) if flipped else exist
            if self.augment_params.get("camera_p") and exist:
                exist = lanes_present(exist, small_label)
        else:
            small, small_label = self.pre.resize_image(image), self.pre.label(label)
        x = torch.from_numpy(self.pre.normalize(small))
        y = torch.from_numpy(small_label.astype(np.int64))
        return x, y, torch.tensor(exist, dtype=torch.float32)


class CulaneImages(Dataset):
    """Images of any CULane list for inference: ``(image, index)``."""

    def __init__(self, root: str | os.PathLike[str], samples: list[Sample], pre: Preprocess) -> None:
        self.data = CulaneDataset(root)
        self.samples = samples
        self.pre = pre

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.data.read_image(self.samples[index])
        return torch.from_numpy(self.pre(image)[0]), index


class CulaneImageLabels(CulaneImages):
    """Images and their label maps at the network size (nearest neighbour; 255 kept): ``(image,
    (h, w) int64 label, index)``, for scoring class maps."""

    def __init__(self, root: str | os.PathLike[str], samples: list[Sample], pre: Preprocess, num_classes: int) -> None:
        super().__init__(root, samples, pre)
        self.data = CulaneDataset(root, num_classes)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        image, _ = super().__getitem__(index)
        label = self.pre.label(self.data.read_label(self.samples[index]))
        return image, torch.from_numpy(label.astype(np.int64)), index


class CulaneLabelInputs(CulaneImages):
    """One-hot label maps of a ``*_gt.txt`` list as network input (LGAD's teacher): ``(input, index)``.

    Inference only (no augmentation). In training the label input is ``one_hot_label`` of the
    batch's already augmented label (``training.train``, the LGAD distiller), so it is mirrored
    whenever the image is."""

    def __init__(self, root: str | os.PathLike[str], samples: list[Sample], pre: Preprocess, num_classes: int = NUM_CLASSES) -> None:
        super().__init__(root, samples, pre)
        self.data = CulaneDataset(root, num_classes)
        self.num_classes = num_classes

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        label = self.pre.label(self.data.read_label(self.samples[index]))
        return one_hot_label(torch.from_numpy(label.astype(np.int64)), self.num_classes), index
