"""Hinton et al.'s knowledge distillation on per-pixel class probabilities.

L_kd = T^2 * mean over pixels of KL(softmax(z_T / T) || softmax(z_S / T)). Teacher logits at
another resolution are resized (bilinear) to the student's. SKD's pixel-wise distillation is the
same loss at T = 1.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    t = teacher_logits.detach().float()
    if t.shape[-2:] != student_logits.shape[-2:]:
        t = F.interpolate(t, size=student_logits.shape[-2:], mode="bilinear", align_corners=False)
    log_p_s = F.log_softmax(student_logits.float() / temperature, dim=1)
    log_p_t = F.log_softmax(t / temperature, dim=1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=1)
    return kl.mean() * temperature**2
