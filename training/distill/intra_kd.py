"""IntRA-KD: inter-region affinity distillation (Hou et al., CVPR 2020, Sec. 3.2).

Pipeline, for one (student feature, teacher feature) pair and a batch of labels:

1. **AOI maps** (:func:`aoi_maps`). For each class k (background included) the binary label map
   L_k is smoothed with a ``kernel`` x ``kernel`` average filter phi and M_k = 1(phi(L_k) > 0),
   i.e. L_k dilated by ``kernel // 2`` pixels (a one-pixel line grows 2 px each side with 5x5).
   Ignored pixels (255) belong to no class. *Resolution (the paper is silent)*: the AOI is made
   at the label's resolution (the network input) and brought to each feature map's size by
   adaptive **max** pooling: a feature cell belongs to an AOI when any input pixel under it does.
   Nearest-neighbour subsampling would drop thin lane AOIs at 1/8 scale. (:class:`RegionMaps`
   fuses dilation and pooling into one max pool and makes each resolution once per batch.)
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
(eps in sigma), and near-zero variance a damped skewness (``skew_floor``, :func:`moment_pool`);
zero moment vectors give cosine 0 (eps in the norms).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from training.data.label_input import one_hot_label


MOMENTS = 3
DEFAULT_SKEW_FLOOR = 0.01  # the distiller's default (see moment_pool); the functions default to 0, the bare formula


class RegionMaps:
    """The AOI maps of one batch of labels, made on demand at each feature resolution (cached).

    ``label`` (N, H, W) int -> :meth:`at` ``(h, w)`` gives (N, K, h, w) float {0, 1}. The dilation
    (``kernel`` x ``kernel`` average filter, > 0) and the max-pooling to the feature grid are one
    (separable) max pool when H, W are multiples of h, w (a cell of s x s pixels belongs to an AOI when any
    labelled pixel lies within ``kernel // 2`` of it: a (s + 2r) x (s + 2r) window, stride s), and
    two steps otherwise; both equal dilation at full resolution followed by adaptive max pooling.
    """

    def __init__(self, label: torch.Tensor, num_classes: int, kernel: int = 5) -> None:
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"AOI kernel must be odd and positive, got {kernel}")
        self.onehot = one_hot_label(label, num_classes)  # ignored pixels (255) belong to no class
        self.radius = kernel // 2
        self._cache: dict[tuple[int, int], torch.Tensor] = {}

    def at(self, size: tuple[int, int] | None = None) -> torch.Tensor:
        full = tuple(self.onehot.shape[-2:])
        size = full if size is None else (int(size[0]), int(size[1]))
        if size not in self._cache:
            self._cache[size] = self._make(size)
        return self._cache[size]

    def _make(self, size: tuple[int, int]) -> torch.Tensor:
        (H, W), (h, w), r = self.onehot.shape[-2:], size, self.radius
        if H % h == 0 and W % w == 0:  # one separable max pool: rows, then columns
            sh, sw = H // h, W // w
            rows = F.max_pool2d(self.onehot, (1, sw + 2 * r), stride=(1, sw), padding=(0, r))
            return F.max_pool2d(rows, (sh + 2 * r, 1), stride=(sh, 1), padding=(r, 0))
        rows = F.max_pool2d(self.onehot, (1, 2 * r + 1), stride=1, padding=(0, r))
        return F.adaptive_max_pool2d(F.max_pool2d(rows, (2 * r + 1, 1), stride=1, padding=(r, 0)), size)


def aoi_maps(label: torch.Tensor, num_classes: int, kernel: int = 5, size: tuple[int, int] | None = None) -> torch.Tensor:
    """(N, H, W) int labels -> (N, K, h, w) float {0, 1} AOI maps at ``size`` (default: H, W)."""
    return RegionMaps(label, num_classes, kernel).at(size)


class _AoiRawMoments(torch.autograd.Function):
    """First three raw moments of centred features over the AOIs, with a hand-written backward.

    ``x`` (N, C, P) centred features, ``weights`` (N, K, P) AOI maps divided by their pixel counts
    -> e1, e2, e3 (N, K, C) with e_r[n, k, c] = sum_p weights[n, k, p] x[n, c, p]^r. Backward:
    dL/dx = G1 + x (2 G2 + 3 G3 x) with G_r = g_r^T weights, one batched product and two fused
    passes (autograd's version of the same takes ~3x the memory traffic). ``weights`` gets none.
    Inputs float32 or float64, outside autocast (:func:`moment_pool` sees to both).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # type: ignore[override]
        ctx.save_for_backward(x, weights)
        power = x * x
        e1 = torch.bmm(weights, x.transpose(1, 2))
        e2 = torch.bmm(weights, power.transpose(1, 2))
        e3 = torch.bmm(weights, power.mul_(x).transpose(1, 2))
        return e1, e2, e3

    @staticmethod
    def backward(ctx, g1: torch.Tensor, g2: torch.Tensor, g3: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        x, weights = ctx.saved_tensors
        channels = x.shape[1]
        g = torch.cat([g1, 2.0 * g2, 3.0 * g3], dim=2)  # (N, K, 3C)
        big = torch.bmm(g.transpose(1, 2), weights)  # (N, 3C, P)
        a1, a2, a3 = big.split(channels, dim=1)
        return torch.addcmul(a1, torch.addcmul(a2, a3, x), x), None


def moment_pool(feature: torch.Tensor, aoi: torch.Tensor, eps: float = 1e-6, skew_floor: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked mean, variance and skewness of a feature map over each AOI.

    ``feature`` (N, C, h, w), ``aoi`` (N, K, h, w) -> moments (N, 3, K, C) and present (N, K).
    Computed from the raw moments of the features centred by their per-image channel mean, which
    keeps float32 cancellation small. The centre is a constant to autograd: the moments do not
    depend on it (mean = E_M[f - c] + c), so its gradient path would add exactly zero.

    *Near-constant regions*: skewness divides by sigma^3, so a channel that is almost constant over
    an AOI (a ReLU channel that is ~0 on a thin lane at 1/8 scale) gives a meaningless skewness
    whose gradient is huge: measured on our synthetic runs, single batches where the gradient of
    0.1 * L_m equalled the task loss's (its median is ~1 %). ``skew_floor`` > 0 adds that fraction
    of the channel's variance over the whole image to the region's variance before dividing
    (sigma^2 -> var + skew_floor * var_image + eps; var_image a constant to autograd), which damps
    the skewness of such regions toward 0 and keeps the loss invariant to channel scaling.
    """
    f = feature if feature.dtype == torch.float64 else feature.float()  # float16 teachers in float32
    m = aoi.to(f.dtype).flatten(2)  # (N, K, P)
    count = m.sum(dim=2)  # (N, K)
    present = count > 0
    weights = m / count.clamp(min=1.0)[..., None]
    centre = f.detach().mean(dim=(2, 3))  # (N, C)
    x = (f - centre[..., None, None]).flatten(2)  # (N, C, P)
    with torch.autocast(f.device.type, enabled=False):  # moments in float32 even when called under AMP
        e1, e2, e3 = _AoiRawMoments.apply(x, weights)
    var = (e2 - e1 * e1).clamp(min=0.0)
    third = e3 - 3.0 * e1 * e2 + 2.0 * e1 * e1 * e1
    floor = eps if not skew_floor else eps + skew_floor * (torch.linalg.vector_norm(x.detach(), dim=2) ** 2 / x.shape[2])[:, None, :]  # (N, 1, C)
    skew = third / (var + floor).pow(1.5)
    mean = e1 + centre[:, None, :]
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
                  num_classes: int = 5, kernel: int = 5, regions: RegionMaps | None = None,
                  skew_floor: float = 0.0) -> torch.Tensor:
    """L_m for one (student, teacher) feature pair; each side uses AOIs at its own resolution.

    A class counts as present only where its AOI is non-empty at both resolutions. ``regions``:
    the :class:`RegionMaps` of ``label`` when the caller has them already (several pairs share
    them and their per-resolution maps). ``skew_floor``: see :func:`moment_pool` (the distiller's
    default is :data:`DEFAULT_SKEW_FLOOR`; 0 is the bare eps guard).
    """
    regions = RegionMaps(label, num_classes, kernel) if regions is None else regions
    with torch.autocast(student_feature.device.type, enabled=False):  # float32 throughout, also under AMP
        mom_s, present_s = moment_pool(student_feature, regions.at(tuple(student_feature.shape[-2:])), skew_floor=skew_floor)
        with torch.no_grad():
            mom_t, present_t = moment_pool(teacher_feature.detach(), regions.at(tuple(teacher_feature.shape[-2:])), skew_floor=skew_floor)
            c_t = affinity(mom_t)
        return affinity_loss(affinity(mom_s), c_t, present_s & present_t)
