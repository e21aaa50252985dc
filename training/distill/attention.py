"""Attention transfer (Zagoruyko & Komodakis, ICLR 2017), the IntRA-KD paper's L_a (eq. 6).

Attention map of a feature F (N, C, h, w): A = sum_c |F_c|^2, brought to a common size, flattened
and L2-normalised per image. L_a = sum over positions of (A_S - A_T)^2 (eq. 6), mean over images.
*Common size (the paper does not say)*: the coarser of the two maps; the finer one is resized to
it by bilinear interpolation (area-weighted when shrinking by an integer factor would be
equivalent up to smoothing). Teacher maps are detached.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def attention_map(feature: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, C, h, w) -> (N, size[0] * size[1]) unit-norm attention vectors."""
    a = feature.float().pow(2).sum(dim=1, keepdim=True)
    if tuple(a.shape[-2:]) != tuple(size):
        a = F.interpolate(a, size=size, mode="bilinear", align_corners=False)
    return F.normalize(a.flatten(1), dim=1)


def common_size(a: torch.Tensor, b: torch.Tensor) -> tuple[int, int]:
    (ha, wa), (hb, wb) = a.shape[-2:], b.shape[-2:]
    return (int(ha), int(wa)) if ha * wa <= hb * wb else (int(hb), int(wb))


def attention_loss(student_feature: torch.Tensor, teacher_feature: torch.Tensor) -> torch.Tensor:
    size = common_size(student_feature, teacher_feature)
    a_s = attention_map(student_feature, size)
    a_t = attention_map(teacher_feature.detach(), size)
    return ((a_s - a_t) ** 2).sum(dim=1).mean()


def sad_attention_map(feature: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """SAD-style attention (Hou et al., ICCV 2019): sum_c F_c^2, resized, spatial softmax."""
    a = feature.float().pow(2).sum(dim=1, keepdim=True)
    if tuple(a.shape[-2:]) != tuple(size):
        a = F.interpolate(a, size=size, mode="bilinear", align_corners=False)
    return torch.softmax(a.flatten(1), dim=1)


def sad_attention_loss(student_feature: torch.Tensor, teacher_feature: torch.Tensor) -> torch.Tensor:
    """MSE between SAD-style attention maps at the coarser of the two sizes (used by LGAD)."""
    size = common_size(student_feature, teacher_feature)
    return F.mse_loss(sad_attention_map(student_feature, size), sad_attention_map(teacher_feature.detach(), size))
