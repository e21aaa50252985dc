"""IntRA-KD: inter-region affinity distillation (Hou et al., CVPR 2020, Sec. 3.2).

Pipeline, for one (student feature, teacher feature) pair and a batch of labels:

1. **AOI maps** (:func:`aoi_maps`). For each class k (background included) the binary label map
   L_k is smoothed with a ``kernel`` x ``kernel`` average filter phi and M_k = 1(phi(L_k) > 0),
   i.e. L_k dilated by ``kernel // 2`` pixels (a one-pixel line grows 2 px each side with 5x5).
   Ignored pixels (255) belong to no class. *Resolution (the paper is silent)*: the AOI is made
   at the label's resolution (the network input) and brought to each feature map's size by
   adaptive **max** pooling: a feature cell belongs to an AOI when any input pixel under it does.
   Nearest-neighbour subsampling would drop thin lane AOIs at 1/8 scale.
2. **Moment pooling** (:func:`moment_pool`), eq. 2, per class and channel over the AOI:
   mu1 = masked mean; mu2 = masked variance E_M[(F - mu1)^2]; mu3 = masked skewness
   E_M[((F - mu1) / sigma)^3] with sigma = sqrt(mu2 + eps). *Eq. 2 as printed* subtracts mu1 from
   M*F at every position (so pixels outside the AOI contribute (0 - mu1)^2) and divides by mu2
   instead of sigma; we implement the intended masked central moments and the standard
   (scale-free) skewness, which the text describes ("mean", "variance", "skewness").
3. **Affinity** (:func:`affinity`), eq. 3: cosine similarity of the moment vectors of every pair
   of classes, per moment: C[r, k1, k2].
4. **Loss** (:func:`affinity_loss`), eq. 4: L_m = 1/(3 n^2) sum_r sum_k1 sum_k2 (C_S - C_T)^2.
   *Absent classes*: n is the number of classes whose AOI is non-empty **in that image** (at that
   feature resolution); pairs involving an absent class are excluded (their moments are
   undefined). Images are averaged.

Guards: an empty AOI gives zero moments and is marked absent; zero variance gives skewness 0
(eps in sigma); zero moment vectors give cosine 0 (eps in the norms).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from training.data.label_input import one_hot_label


MOMENTS = 3


def aoi_maps(label: torch.Tensor, num_classes: int, kernel: int = 5, size: tuple[int, int] | None = None) -> torch.Tensor:
    """(N, H, W) int labels -> (N, K, h, w) float {0, 1} AOI maps at ``size`` (default: H, W)."""
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"AOI kernel must be odd and positive, got {kernel}")
    onehot = one_hot_label(label, num_classes)  # ignored pixels (255) belong to no class
    smoothed = F.avg_pool2d(onehot, kernel, stride=1, padding=kernel // 2, count_include_pad=False)
    return resize_aoi((smoothed > 0).float(), size)


def resize_aoi(aoi: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
    """Full-resolution AOI maps (N, K, H, W) at a feature map's ``size`` (max pooling: a region
    reaches every cell it touches)."""
    if size is not None and tuple(size) != tuple(aoi.shape[-2:]):
        aoi = F.adaptive_max_pool2d(aoi, size)
    return aoi


def moment_pool(feature: torch.Tensor, aoi: torch.Tensor, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked mean, variance and skewness of a feature map over each AOI.

    ``feature`` (N, C, h, w), ``aoi`` (N, K, h, w) -> moments (N, 3, K, C) and present (N, K).
    Computed from raw moments of the features centred by their per-image channel mean (which
    keeps float32 cancellation small and leaves central moments unchanged).
    """
    f = feature.float()
    m = aoi.float()
    f = f - f.mean(dim=(2, 3), keepdim=True)
    count = m.sum(dim=(2, 3))  # (N, K)
    present = count > 0
    denom = count.clamp(min=1.0)[..., None]
    e1 = torch.einsum("nkhw,nchw->nkc", m, f) / denom
    e2 = torch.einsum("nkhw,nchw->nkc", m, f * f) / denom
    e3 = torch.einsum("nkhw,nchw->nkc", m, f * f * f) / denom
    var = (e2 - e1 * e1).clamp(min=0.0)
    third = e3 - 3.0 * e1 * e2 + 2.0 * e1 * e1 * e1
    skew = third / (var + eps).pow(1.5)
    mean = e1 + feature.float().mean(dim=(2, 3))[:, None, :]
    moments = torch.stack([mean, var, skew], dim=1) * present[:, None, :, None]
    return moments, present


def affinity(moments: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(N, 3, K, C) moment vectors -> (N, 3, K, K) cosine similarities between classes."""
    unit = moments / moments.norm(dim=-1, keepdim=True).clamp(min=eps)
    return unit @ unit.transpose(-1, -2)


def affinity_loss(c_student: torch.Tensor, c_teacher: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Eq. 4 over the classes present in each image; mean over the batch."""
    pair = (present[:, :, None] & present[:, None, :])[:, None].float()  # (N, 1, K, K)
    n = present.sum(dim=1).float()
    per_image = ((c_student - c_teacher.detach()) ** 2 * pair).sum(dim=(1, 2, 3)) / (MOMENTS * n * n).clamp(min=1.0)
    return per_image.mean()


def intra_kd_loss(student_feature: torch.Tensor, teacher_feature: torch.Tensor, label: torch.Tensor,
                  num_classes: int = 5, kernel: int = 5, aoi: torch.Tensor | None = None) -> torch.Tensor:
    """L_m for one (student, teacher) feature pair; each side uses AOIs at its own resolution.

    A class counts as present only where its AOI is non-empty at both resolutions. ``aoi``: the
    full-resolution :func:`aoi_maps` of ``label``, when the caller has them already (several pairs).
    """
    aoi = aoi_maps(label, num_classes, kernel) if aoi is None else aoi
    aoi_s = resize_aoi(aoi, tuple(student_feature.shape[-2:]))
    aoi_t = resize_aoi(aoi, tuple(teacher_feature.shape[-2:]))
    mom_s, present_s = moment_pool(student_feature, aoi_s)
    with torch.no_grad():
        mom_t, present_t = moment_pool(teacher_feature.detach(), aoi_t)
        c_t = affinity(mom_t)
    return affinity_loss(affinity(mom_s), c_t, present_s & present_t)
