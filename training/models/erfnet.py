"""ERFNet (Romera et al. 2017), CULane variant (ERFNet-CULane of the SAD / IntRA-KD code).

Input (N, 3, H, W) with H, W divisible by 8 (16 for the existence branch). Encoder:
downsampler 3->16 (1/2), downsampler 16->64 (1/4) + 5 factorised non-bottleneck-1D blocks,
downsampler 64->128 (1/8) + 2 x (non-bt-1D with dilations 2, 4, 8, 16). Decoder: transposed
convolutions back to full resolution, ``num_classes`` (5) logits. Existence branch on the 1/8
encoder output (:class:`~training.models.heads.LaneExistence`). About 2.5 M parameters at
976x208 (the paper's Table 3: 2.49 M). Parameter names follow the ERFNet-CULane code
(``encoder.initial_block``, ``encoder.layers.N``, ``decoder.layers.N``, ``lane_exist.*``), so
its checkpoints load.

``in_channels`` = 5 makes LGAD's teacher, which reads the one-hot label map instead of the image.

Feature taps for distillation (returned only when asked, so the exported graph stays lean):

- ``block1``: after the first downsampler, 16 ch at 1/2;
- ``block2``: after the 64-channel stage, 64 ch at 1/4 (the paper's "block 2");
- ``block3``: the encoder output, 128 ch at 1/8 (the paper's "block 3").
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from training.models.heads import LaneExistence

STUDENT_TAPS = ("block1", "block2", "block3")


class DownsamplerBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels - in_channels, 3, stride=2, padding=1)
        self.pool = nn.MaxPool2d(2, stride=2)
        self.bn = nn.BatchNorm2d(out_channels, eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(torch.cat([self.conv(x), self.pool(x)], 1)))


class NonBottleneck1D(nn.Module):
    """Factorised residual block: (3x1, 1x3) twice, the second pair dilated."""

    def __init__(self, channels: int, dropout: float, dilation: int) -> None:
        super().__init__()
        self.conv3x1_1 = nn.Conv2d(channels, channels, (3, 1), padding=(1, 0))
        self.conv1x3_1 = nn.Conv2d(channels, channels, (1, 3), padding=(0, 1))
        self.bn1 = nn.BatchNorm2d(channels, eps=1e-3)
        self.conv3x1_2 = nn.Conv2d(channels, channels, (3, 1), padding=(dilation, 0), dilation=(dilation, 1))
        self.conv1x3_2 = nn.Conv2d(channels, channels, (1, 3), padding=(0, dilation), dilation=(1, dilation))
        self.bn2 = nn.BatchNorm2d(channels, eps=1e-3)
        self.dropout = nn.Dropout2d(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.conv3x1_1(x))
        out = F.relu(self.bn1(self.conv1x3_1(out)))
        out = F.relu(self.conv3x1_2(out))
        out = self.bn2(self.conv1x3_2(out))
        if self.dropout.p:
            out = self.dropout(out)
        return F.relu(out + x)


class UpsamplerBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1)
        self.bn = nn.BatchNorm2d(out_channels, eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class Encoder(nn.Module):
    """``layers[0:6]``: the 64-channel stage (block 2); ``layers[6:]``: the 128-channel stage."""

    def __init__(self, dropout: float = 0.1, in_channels: int = 3) -> None:
        super().__init__()
        self.initial_block = DownsamplerBlock(in_channels, 16)
        dilated = [NonBottleneck1D(128, dropout, d) for _ in range(2) for d in (2, 4, 8, 16)]
        self.layers = nn.Sequential(
            DownsamplerBlock(16, 64), *[NonBottleneck1D(64, dropout, 1) for _ in range(5)],
            DownsamplerBlock(64, 128), *dilated,
        )

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        b1 = self.initial_block(x)
        b2 = self.layers[:6](b1)
        return {"block1": b1, "block2": b2, "block3": self.layers[6:](b2)}


class Decoder(nn.Module):
    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            UpsamplerBlock(128, 64), NonBottleneck1D(64, 0.0, 1), NonBottleneck1D(64, 0.0, 1),
            UpsamplerBlock(64, 16), NonBottleneck1D(16, 0.0, 1), NonBottleneck1D(16, 0.0, 1),
        )
        self.output_conv = nn.ConvTranspose2d(16, num_classes, 2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_conv(self.layers(x))


class ERFNet(nn.Module):
    """ERFNet-CULane: ``forward(x) -> (seg_logits (N, C, H, W), exist_logits (N, num_lanes))``;
    ``forward(x, taps=("block2",))`` also returns ``{name: feature}``. With ``num_lanes=0`` (a
    marking table: no existence head) ``exist_logits`` is None."""

    def __init__(self, input_size: tuple[int, int], num_classes: int = 5, num_lanes: int = 4, dropout: float = 0.1,
                 in_channels: int = 3) -> None:
        super().__init__()
        h, w = input_size
        if h % 16 or w % 16:
            raise ValueError(f"ERFNet input {w}x{h}: width and height must be multiples of 16")
        self.input_size = (h, w)
        self.encoder = Encoder(dropout, in_channels)
        self.decoder = Decoder(num_classes)
        self.lane_exist = LaneExistence(128, (h // 8, w // 8), num_classes, num_lanes) if num_lanes else None

    def forward(self, x: torch.Tensor, taps: tuple[str, ...] = ()):
        features = self.encoder(x)
        seg = self.decoder(features["block3"])
        exist = self.lane_exist(features["block3"]) if self.lane_exist is not None else None
        if not taps:
            return seg, exist
        unknown = set(taps) - set(STUDENT_TAPS)
        if unknown:
            raise KeyError(f"unknown ERFNet taps {sorted(unknown)}; available: {STUDENT_TAPS}")
        return seg, exist, {name: features[name] for name in taps}
