"""Label maps as network input (LGAD's teacher reads the lanes instead of the image)."""
from __future__ import annotations

import torch

from runtime.culane import IGNORE_LABEL, NUM_CLASSES


def one_hot_label(label: torch.Tensor, num_classes: int = NUM_CLASSES) -> torch.Tensor:
    """(N, H, W) or (H, W) int labels -> (N, K, H, W) or (K, H, W) float one-hot, contiguous;
    ignored pixels (255) are all zero."""
    if num_classes > IGNORE_LABEL:
        raise ValueError(f"num_classes {num_classes} would include the ignore label {IGNORE_LABEL}")
    bad = (label < 0) | ((label >= num_classes) & (label != IGNORE_LABEL))
    if bad.any():
        raise ValueError(f"label values must be class indices 0..{num_classes - 1} or {IGNORE_LABEL} (ignored); "
                         f"found {sorted(set(label[bad].unique().tolist()))[:5]}")
    classes = torch.arange(num_classes, device=label.device).view(-1, 1, 1)
    return (label.unsqueeze(-3) == classes).float()
