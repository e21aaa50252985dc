"""Attention maps for distillation: AT (Zagoruyko & Komodakis, ICLR 2017) and SAD-style (for LGAD).

**AT**, the IntRA-KD paper's L_a (eq. 6). Attention map of a feature F (N, C, h, w):
A = sum_c |F_c|^2, brought to a common size, flattened and L2-normalised per image.
L_a = sum over positions of (A_S - A_T)^2 (eq. 6), mean over images.
*Common size (the paper does not say)*: the coarser of the two maps; the finer one is resized to
it by bilinear interpolation (area-weighted when shrinking by an integer factor would be
equivalent up to smoothing). Teacher maps are detached.

**SAD-style** (Hou et al., ICCV 2019, "self attention distillation"): spatial softmax of
sum_c F_c^2, L2 between maps; used by LGAD (see :data:`training.distill.distiller.LGAD_NOTE`).
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
    """(N, Cs, hs, ws), (N, Ct, ht, wt) -> scalar: L2 between SAD-style attention maps (LGAD's term).

    From SAD (Hou et al., ICCV 2019): the map Psi(F) = spatial_softmax(resize(sum_c F_c^2)) (p = 2,
    bilinear resizing) and an L2 distance between two such maps. SAD matches successive layers of
    one network; here (LGAD's abstract: "the attention maps of the teacher network are adopted as
    supervisors of the student") the student's tap is matched to the label teacher's.
    Our choices: maps of different sizes meet at the coarser one (SAD upsamples the smaller; with
    LGAD's default same-architecture pairs the sizes agree and nothing is resized); the L2 is
    torch's mean squared error, over positions and images; the teacher's map is detached; no
    temperature. With sums of squares in the hundreds the map is close to one-hot and the gradient
    small; a softmax map sums to 1 over its h*w positions, so the loss also shrinks as the maps grow
    finer. Its weight is set at one input size (see DEFAULT_WEIGHTS and LGAD_NOTE).
    """
    size = common_size(student_feature, teacher_feature)
    return F.mse_loss(sad_attention_map(student_feature, size), sad_attention_map(teacher_feature.detach(), size))
