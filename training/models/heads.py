"""The lane-existence branch shared by student and teacher (ERFNet-CULane design).

conv 3x3 (dilation 4, no bias) -> BN -> ReLU -> Dropout2d -> conv 1x1 to ``num_classes`` ->
softmax over classes -> max-pool 2x2 -> flatten -> linear -> ReLU -> linear to ``num_lanes``.
Outputs **logits** (no sigmoid: losses and deployment apply it exactly once). The first linear
layer's input size follows from the feature map's size, i.e. from the configured input size.
Parameter names follow the ERFNet-CULane code (``layers.0``, ``layers.1``, ``layers_final.1``,
``linear1``, ``linear2``) so its checkpoints load.
"""
from __future__ import annotations

import torch
from torch import nn


def channel_softmax(x: torch.Tensor) -> torch.Tensor:
    """Softmax over dim 1 (the classes) of (N, C, H, W), written out: exp(x - max) / sum.

    The same values as ``torch.softmax(x, 1)`` (within float rounding), but exported as
    ReduceMax / Sub / Exp / ReduceSum / Div, which ONNX Runtime runs on NCHW in place, where its
    Softmax on a non-last axis transposes to the last axis and back. ERFNet, ONNX Runtime CPU, one
    thread, AMD EPYC (interleaved medians): 10.38 -> 9.53 ms at 320x64, 105.0 -> 97.6 ms at 976x208.
    """
    y = x.float()  # bfloat16 / float16 under autocast: computed in float32, as PyTorch's softmax kernel accumulates
    e = torch.exp(y - y.amax(dim=1, keepdim=True))
    return (e / e.sum(dim=1, keepdim=True)).to(x.dtype)


class LaneExistence(nn.Module):
    """Existence logits (N, num_lanes) from a (N, in_channels, h, w) feature map of known size."""

    def __init__(self, in_channels: int, feature_size: tuple[int, int], num_classes: int = 5, num_lanes: int = 4,
                 hidden: int = 128, dropout: float = 0.1) -> None:
        super().__init__()
        h, w = feature_size
        if h < 2 or w < 2:
            raise ValueError(f"feature map {h}x{w} too small for the existence branch")
        self.layers = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=4, dilation=4, bias=False), nn.BatchNorm2d(32, eps=1e-3)
        )
        self.layers_final = nn.Sequential(nn.Dropout2d(dropout), nn.Conv2d(32, num_classes, 1))
        self.maxpool = nn.MaxPool2d(2, stride=2)
        self.flat_features = num_classes * (h // 2) * (w // 2)
        self.linear1 = nn.Linear(self.flat_features, hidden)
        self.linear2 = nn.Linear(hidden, num_lanes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.layers(x))
        x = channel_softmax(self.layers_final(x))
        x = self.maxpool(x).flatten(1)
        if x.shape[1] != self.flat_features:
            raise ValueError(
                f"existence branch built for {self.flat_features} pooled features, got {x.shape[1]}: "
                "the input size differs from the configured one"
            )
        return self.linear2(torch.relu(self.linear1(x)))
