"""The teacher: dilated ResNet (output stride 8) + pyramid pooling head (PSPNet) + existence branch.

Pyramid pooling averages the layer4 features over 1x1, 2x2, 3x3 and 6x6 bins. Adaptive average
pooling with bin counts that do not divide the feature map exports to ONNX as hundreds of
Slice/Gather nodes; here it is computed exactly as two small matrix products, ``P_h @ X @ P_w^T``
with ``P[i, start_i:end_i] = 1 / (end_i - start_i)`` (PyTorch's bin bounds), which export as
two MatMul nodes with constant matrices at a fixed input size.

Feature taps (the paper's ResNet "block 3" and "block 5"): ``layer2`` (1/8) and ``layer4`` (1/8);
also ``layer1``, ``layer3`` and ``psp`` (the head's fused 1/8 features).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from training.models.heads import LaneExistence
from training.models.resnet import ResNet

TEACHER_TAPS = ("layer1", "layer2", "layer3", "layer4", "psp")


def adaptive_pool_matrix(size: int, bins: int) -> torch.Tensor:
    """(bins, size) float32 averaging matrix with PyTorch's adaptive pooling bounds."""
    rows = []
    for i in range(bins):
        start, end = (i * size) // bins, math.ceil((i + 1) * size / bins)
        rows.append([1.0 / (end - start) if start <= j < end else 0.0 for j in range(size)])
    return torch.tensor(rows, dtype=torch.float32)


def adaptive_avg_pool(x: torch.Tensor, bins: int, ph: torch.Tensor | None = None, pw: torch.Tensor | None = None) -> torch.Tensor:
    """Exactly ``F.adaptive_avg_pool2d(x, bins)``, as two matrix products (``ph``/``pw``: the
    precomputed matrices for x's height and width, else built here)."""
    h, w = x.shape[-2:]
    ph = adaptive_pool_matrix(int(h), bins) if ph is None else ph
    pw = adaptive_pool_matrix(int(w), bins) if pw is None else pw
    return torch.matmul(torch.matmul(ph.to(x), x), pw.to(x).t())


class PyramidPooling(nn.Module):
    """PSP module over a feature map of known size ``feature_size`` (h, w): its pooling matrices
    are buffers, i.e. constants in an exported graph."""

    def __init__(self, in_channels: int, feature_size: tuple[int, int], bins: tuple[int, ...] = (1, 2, 3, 6),
                 reduction: int | None = None) -> None:
        super().__init__()
        reduction = reduction or in_channels // len(bins)
        self.bins = bins
        self.feature_size = tuple(feature_size)
        self.stages = nn.ModuleList(
            nn.Sequential(nn.Conv2d(in_channels, reduction, 1, bias=False), nn.BatchNorm2d(reduction), nn.ReLU(inplace=True))
            for _ in bins
        )
        for b in bins:
            self.register_buffer(f"pool_h{b}", adaptive_pool_matrix(feature_size[0], b), persistent=False)
            self.register_buffer(f"pool_w{b}", adaptive_pool_matrix(feature_size[1], b), persistent=False)
        self.out_channels = in_channels + reduction * len(bins)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        known = (int(h), int(w)) == self.feature_size
        pooled = []
        for b, stage in zip(self.bins, self.stages):
            ph, pw = (getattr(self, f"pool_h{b}"), getattr(self, f"pool_w{b}")) if known else (None, None)
            pooled.append(F.interpolate(stage(adaptive_avg_pool(x, b, ph, pw)), size=(h, w), mode="bilinear", align_corners=True))
        return torch.cat([x, *pooled], 1)


class PSPNet(nn.Module):
    """``forward(x) -> (seg_logits (N, C, H, W), exist_logits (N, num_lanes))``; with ``taps``, also
    the requested features. Input sides must be multiples of 16. With ``num_lanes=0`` (a marking
    table: no existence head) ``exist_logits`` is None."""

    def __init__(self, input_size: tuple[int, int], depth: int = 101, num_classes: int = 5, num_lanes: int = 4,
                 head_channels: int = 512, dropout: float = 0.1) -> None:
        super().__init__()
        h, w = input_size
        if h % 16 or w % 16:
            raise ValueError(f"PSPNet input {w}x{h}: width and height must be multiples of 16")
        self.input_size = (h, w)
        self.backbone = ResNet(depth)
        c4 = self.backbone.out_channels["layer4"]
        self.ppm = PyramidPooling(c4, (h // 8, w // 8))
        self.bottleneck = nn.Sequential(
            nn.Conv2d(self.ppm.out_channels, head_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(head_channels),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Sequential(nn.Dropout2d(dropout), nn.Conv2d(head_channels, num_classes, 1))
        self.lane_exist = LaneExistence(head_channels, (h // 8, w // 8), num_classes, num_lanes) if num_lanes else None

    def forward(self, x: torch.Tensor, taps: tuple[str, ...] = ()):
        size = x.shape[-2:]
        features = self.backbone(x)
        fused = self.bottleneck(self.ppm(features["layer4"]))
        seg = F.interpolate(self.classifier(fused), size=size, mode="bilinear", align_corners=True)
        exist = self.lane_exist(fused) if self.lane_exist is not None else None
        if not taps:
            return seg, exist
        features["psp"] = fused
        unknown = set(taps) - set(TEACHER_TAPS)
        if unknown:
            raise KeyError(f"unknown teacher taps {sorted(unknown)}; available: {TEACHER_TAPS}")
        return seg, exist, {name: features[name] for name in taps}
