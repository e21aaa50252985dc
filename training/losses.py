"""Segmentation and lane-existence losses (the paper's L_seg).

``L_seg = CE(seg_logits, label; weight = [bg, 1, 1, 1, 1], ignore 255)
        + exist_weight * BCE_with_logits(exist_logits, exist)``   (no second term without an existence head)

Cross-entropy is the weighted mean of PyTorch's ``cross_entropy(weight=...)`` (sum of weighted
pixel losses over the sum of their weights); background pixels weigh ``background_weight`` (0.4
for CULane). The existence branch
outputs logits, so the sigmoid is applied once, inside the loss.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from runtime.culane import IGNORE_LABEL


class LaneSegLoss(nn.Module):
    def __init__(self, num_classes: int = 5, background_weight: float = 0.4, exist_weight: float = 0.1) -> None:
        super().__init__()
        weight = torch.ones(num_classes)
        weight[0] = background_weight
        self.register_buffer("class_weight", weight)
        self.exist_weight = exist_weight

    def forward(self, seg_logits: torch.Tensor, exist_logits: torch.Tensor | None, label: torch.Tensor, exist: torch.Tensor,
                weight_sum: Callable[[torch.Tensor], torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Returns ``{"seg", "exist", "total"}`` scalar losses.

        ``weight_sum`` turns this process's sum of pixel weights into the normaliser to use. Under
        DDP it is (sum over processes) / (number of processes): the gradients DDP averages are then
        exactly those of one process seeing the whole global batch.
        """
        pixel = F.cross_entropy(seg_logits.float(), label, weight=self.class_weight, ignore_index=IGNORE_LABEL, reduction="none")
        valid = label != IGNORE_LABEL
        weights = torch.where(valid, self.class_weight[label.clamp(max=len(self.class_weight) - 1)], torch.zeros((), device=label.device))
        local = weights.sum()
        norm = weight_sum(local.detach()) if weight_sum is not None else local
        seg = pixel.sum() / norm.clamp(min=1e-12)
        if exist_logits is None:  # a marking table: no existence head
            return {"seg": seg, "total": seg}
        ex = F.binary_cross_entropy_with_logits(exist_logits.float(), exist)
        return {"seg": seg, "exist": ex, "total": seg + self.exist_weight * ex}
