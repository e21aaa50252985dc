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
   undefined). Images are averaged; one with a single region (no lane) counts as 0
   (:func:`affinity_loss`).

Numerics: the central moments are summed from each region's own deviations (two passes), exact in
float32. Guards: an empty AOI gives zero moments and is marked absent; zero variance gives skewness
0 (eps in sigma), and near-zero variance optionally a damped skewness (``skew_floor``,
:func:`moment_pool`); zero moment vectors give cosine 0 (eps in the norms).
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


class _AoiCentralMoments(torch.autograd.Function):
    """Exact masked mean and central moments over the AOIs, with a hand-written backward.

    ``x`` (N, C, P) features, ``weights`` (N, K, P) AOI maps divided by their pixel counts
    -> mean, m2, m3 (N, K, C): mean[n, k, c] = sum_p w x, m_r = sum_p w (x - mean)^r.

    *Two passes, no cancellation*: the mean is the weighted sum, refined once by the weighted mean
    of its residuals; m2 and m3 are then summed from the deviations d = x - mean of each region
    (one class at a time, so memory stays O(N C P)). Forming them from raw sums (e2 - e1^2, ...)
    loses every digit when a channel is nearly constant over a region far from 0 (a dead ReLU on a
    thin lane): measured skewness of +-100 where the exact value is 0. Backward, exact as well:
    dx = sum_k w_k (g1 + 2 g2 d + 3 g3 (d^2 - m2)) (the mean's own dependence on x cancels in
    the d terms since sum_p w d = 0), again from the deviations, never expanded in powers of x.
    Inputs float32 or float64, outside autocast (:func:`moment_pool` sees to both).
    """

    @staticmethod
    def _columns(weights: torch.Tensor, k: int) -> torch.Tensor | None:
        """Class k's columns inside some image's AOI (P_k,), or None when that is over half the map.

        Lane AOIs cover a small part of the map: only their columns are read (a gather), so the
        per-class passes cost about one pass over the map in all.
        """
        active = (weights[:, k] > 0).any(dim=0)  # (P,)
        return None if int(active.sum()) > 0.5 * active.numel() else active.nonzero()[:, 0]

    @staticmethod
    def _take(x: torch.Tensor, weights: torch.Tensor, k: int, index: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, C, P_k) and class k's weights (N, P_k) on ``index``'s columns (all when None)."""
        if index is None:
            return x, weights[:, k]
        return x.index_select(2, index), weights[:, k].index_select(1, index)

    @staticmethod
    def _deviations(x: torch.Tensor, w: torch.Tensor, first: torch.Tensor,
                    shift: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """d = x - the region's mean (N, C, P_k), and the second pass's shift (N, C)."""
        d = x - first[..., None]
        if shift is None:
            shift = torch.bmm(d, w[..., None])[..., 0]  # the residual mean: ~0
        return d.sub_(shift[..., None]), shift

    @staticmethod
    def forward(ctx, x: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # type: ignore[override]
        first = torch.bmm(weights, x.transpose(1, 2))  # (N, K, C) first-pass means
        shift, m2, m3 = torch.empty_like(first), torch.empty_like(first), torch.empty_like(first)
        indices = []
        for k in range(weights.shape[1]):
            index = _AoiCentralMoments._columns(weights, k)
            indices.append(index)
            xk, wk = _AoiCentralMoments._take(x, weights, k, index)
            d, shift[:, k] = _AoiCentralMoments._deviations(xk, wk, first[:, k])
            power = d * d
            m2[:, k] = torch.bmm(power, wk[..., None])[..., 0]
            m3[:, k] = torch.bmm(power.mul_(d), wk[..., None])[..., 0]
        ctx.save_for_backward(x, weights, first, shift, m2)
        ctx.indices = indices  # each class's columns, found once per step
        return first + shift, m2, m3

    @staticmethod
    def backward(ctx, g1: torch.Tensor, g2: torch.Tensor, g3: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        x, weights, first, shift, m2 = ctx.saved_tensors
        grad = torch.zeros_like(x)
        for k, index in enumerate(ctx.indices):
            xk, wk = _AoiCentralMoments._take(x, weights, k, index)
            d, _ = _AoiCentralMoments._deviations(xk, wk, first[:, k], shift[:, k])  # as in forward
            slope, offset = 3.0 * g3[:, k, :, None], (g1[:, k] - 3.0 * g3[:, k] * m2[:, k])[..., None]
            inner = torch.addcmul(2.0 * g2[:, k, :, None], d, slope)  # 2 g2 + 3 g3 d
            part = torch.addcmul(offset, d, inner).mul_(wk[:, None, :])
            if index is None:
                grad += part
            else:
                grad.index_add_(2, index, part)
        return grad, None


def moment_pool(feature: torch.Tensor, aoi: torch.Tensor, eps: float = 1e-6, skew_floor: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked mean, variance and skewness of a feature map over each AOI.

    ``feature`` (N, C, h, w), ``aoi`` (N, K, h, w) -> moments (N, 3, K, C) and present (N, K).
    The central moments are exact in float32 (:class:`_AoiCentralMoments`: two passes, within
    1e-4 relative of float64 also on flat, ReLU-sparse and large-offset features; tested).

    *Near-constant regions*: skewness divides by sigma^3, so a channel that is almost constant over
    an AOI (a ReLU channel that is ~0 on a thin lane at 1/8 scale) has a skewness that is exact but
    decided by tiny deviations, and whose gradient is huge. ``skew_floor`` > 0 adds that fraction
    of the channel's variance over the whole image to the region's variance before dividing
    (sigma^2 -> var + skew_floor * var_image + eps; var_image a constant to autograd), which damps
    the skewness of such regions toward 0 and keeps the loss invariant to channel scaling.
    0 is the paper's formula with only the eps guard.
    """
    f = feature if feature.dtype == torch.float64 else feature.float()  # float16 teachers in float32
    m = aoi.to(f.dtype).flatten(2)  # (N, K, P)
    count = m.sum(dim=2)  # (N, K)
    present = count > 0
    weights = m / count.clamp(min=1.0)[..., None]
    x = f.flatten(2)  # (N, C, P)
    with torch.autocast(f.device.type, enabled=False):  # moments in float32 even when called under AMP
        mean, var, third = _AoiCentralMoments.apply(x, weights)
    floor = eps
    if skew_floor:
        xd = x.detach()
        floor = eps + skew_floor * xd.var(dim=2, unbiased=False)[:, None, :]  # (N, 1, C)
    skew = third / (var + floor).pow(1.5)
    moments = torch.stack([mean, var, skew], dim=1) * present[:, None, :, None]
    return moments, present


def affinity(moments: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(N, 3, K, C) moment vectors -> (N, 3, K, K) cosine similarities between classes."""
    unit = moments / moments.norm(dim=-1, keepdim=True).clamp(min=eps)
    return unit @ unit.transpose(-1, -2)


def affinity_loss(c_student: torch.Tensor, c_teacher: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Eq. 4 over the classes present in each image; mean over the batch.

    *Images with one region only* (background, no lane: CULane's ``cross`` frames, and 9 of the 180
    day frames of the real dev set) have no inter-region affinity to transfer: their eq. 4 is 0 by construction
    (C_S = 1 = C_T) and they count as 0 in the batch mean. We keep them in the denominator: the
    mean then is a plain per-image average, so DDP's averaging of per-process gradients equals
    the full batch's exactly (a mean over lane images only would need a global count), and the
    expected loss is the lane-image share times the lane-image loss, a constant factor of alpha_1.
    """
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
