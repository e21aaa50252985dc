"""Label maps as network input (LGAD's teacher reads the lanes instead of the image)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from runtime.culane import IGNORE_LABEL, NUM_CLASSES


def one_hot_label(label: torch.Tensor, num_classes: int = NUM_CLASSES) -> torch.Tensor:
    """(N, H, W) or (H, W) int labels -> (N, K, H, W) or (K, H, W) float one-hot; ignored pixels
    (255) are all zero."""
    valid = label != IGNORE_LABEL
    onehot = F.one_hot(torch.where(valid, label, torch.zeros_like(label)), num_classes).float()
    onehot = onehot * valid[..., None]
    return onehot.movedim(-1, -3)
