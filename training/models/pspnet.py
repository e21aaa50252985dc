"""The teacher: dilated ResNet (output stride 8) + pyramid pooling head (PSPNet) + existence branch.

Smoke-size option (not the paper's teacher): output stride 16 and a light decoder that fuses the
head with ``layer1`` (1/4) features before the classifier, as DeepLabv3+ does. From scratch on a
CPU at 320x96, ResNet-18 + PSP at stride 8 costs ~2.8x an ERFNet step and predicts on a 40x12
grid that loses the outer lanes; at stride 16 with the decoder it costs about one ERFNet step and
predicts at 1/4.

Pyramid pooling averages the layer4 features over 1x1, 2x2, 3x3 and 6x6 bins. Adaptive average
pooling with bin counts that do not divide the feature map exports to ONNX as hundreds of
Slice/Gather nodes; here it is computed exactly as two small matrix products, ``P_h @ X @ P_w^T``
with ``P[i, start_i:end_i] = 1 / (end_i - start_i)`` (PyTorch's bin bounds), which export as
two MatMul nodes with constant matrices at a fixed input size.

Feature taps (the paper's ResNet "block 3" and "block 5"): ``layer2`` (1/8) and ``layer4`` (1/8,
1/16 at output stride 16); also ``layer1``, ``layer3`` and ``psp`` (the head's fused features at the
output stride).
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


def conv_bn_relu(cin: int, cout: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SkipDecoder(nn.Module):
    """DeepLabv3+-style fusion: head features (N, c_head, h/s, w/s) upsampled to the ``layer1`` map
    (N, c_low, h/4, w/4), concatenated with its 1x1 projection to 48 channels, then a 3x3 conv to
    ``channels``: (N, channels, h/4, w/4)."""

    def __init__(self, c_head: int, c_low: int, channels: int) -> None:
        super().__init__()
        self.project = conv_bn_relu(c_low, 48, 1)
        self.fuse = conv_bn_relu(c_head + 48, channels, 3)

    def forward(self, head: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(head, size=low.shape[-2:], mode="bilinear", align_corners=True)
        return self.fuse(torch.cat([up, self.project(low)], 1))


class PSPNet(nn.Module):
    """``forward(x) -> (seg_logits (N, C, H, W), exist_logits (N, num_lanes))``; with ``taps``, also
    the requested features. Input sides must be multiples of 16. With ``num_lanes=0`` (a marking
    table: no existence head) ``exist_logits`` is None. ``output_stride`` 8 (PSPNet's) or 16;
    ``decoder_channels`` > 0 adds a :class:`SkipDecoder` (classifier at 1/4), 0 none (PSPNet's)."""

    def __init__(self, input_size: tuple[int, int], depth: int = 101, num_classes: int = 5, num_lanes: int = 4,
                 head_channels: int = 512, dropout: float = 0.1, output_stride: int = 8, decoder_channels: int = 0) -> None:
        super().__init__()
        h, w = input_size
        if h % 16 or w % 16:
            raise ValueError(f"PSPNet input {w}x{h}: width and height must be multiples of 16")
        self.input_size = (h, w)
        self.backbone = ResNet(depth, output_stride)
        c4 = self.backbone.out_channels["layer4"]
        grid = (h // output_stride, w // output_stride)
        self.ppm = PyramidPooling(c4, grid)
        self.bottleneck = conv_bn_relu(self.ppm.out_channels, head_channels, 3)
        self.decoder = SkipDecoder(head_channels, self.backbone.out_channels["layer1"], decoder_channels) if decoder_channels else None
        classifier_in = decoder_channels or head_channels
        self.classifier = nn.Sequential(nn.Dropout2d(dropout), nn.Conv2d(classifier_in, num_classes, 1))
        self.lane_exist = LaneExistence(head_channels, grid, num_classes, num_lanes) if num_lanes else None

    def forward(self, x: torch.Tensor, taps: tuple[str, ...] = ()):
        size = x.shape[-2:]
        features = self.backbone(x)
        fused = self.bottleneck(self.ppm(features["layer4"]))
        decoded = fused if self.decoder is None else self.decoder(fused, features["layer1"])
        seg = F.interpolate(self.classifier(decoded), size=size, mode="bilinear", align_corners=True)
        exist = self.lane_exist(fused) if self.lane_exist is not None else None
        if not taps:
            return seg, exist
        features["psp"] = fused
        unknown = set(taps) - set(TEACHER_TAPS)
        if unknown:
            raise KeyError(f"unknown teacher taps {sorted(unknown)}; available: {TEACHER_TAPS}")
        return seg, exist, {name: features[name] for name in taps}
