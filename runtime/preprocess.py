"""The single definition of preprocessing, shared by training, export and deployment.

An original image (``src_height`` x ``src_width``, BGR uint8, as OpenCV reads it) becomes a
network input (3 x ``net_height`` x ``net_width``, float32) in three steps:

1. crop the top ``crop_top`` rows (sky; CULane: 240 of 590 rows, leaving 1640x350);
2. resize the rest to the network size (CULane recipe: 976x208) with bilinear interpolation
   (label maps: nearest neighbour with centre alignment, so classes never mix);
3. reorder channels (BGR -> RGB when ``rgb``) and normalise: ``(pixel - mean) / std`` per channel.

Coordinates map between the original image and the network grid with OpenCV's pixel-centre
convention (``x_net = (x + 0.5) * net_width / src_width - 0.5``, likewise for rows after the
crop); :meth:`Preprocess.image_to_net` and :meth:`Preprocess.net_to_image` are exact inverses.

The parameters are data: :meth:`Preprocess.to_dict` goes into every artifact's sidecar and
:meth:`Preprocess.from_dict` rebuilds the identical transform at deployment.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import cv2
import numpy as np

from runtime.culane import CULANE_HEIGHT, CULANE_WIDTH

IMAGENET_MEAN_RGB = (123.675, 116.28, 103.53)
IMAGENET_STD_RGB = (58.395, 57.12, 57.375)

_INTERPOLATION = {"linear": cv2.INTER_LINEAR, "area": cv2.INTER_AREA, "cubic": cv2.INTER_CUBIC}


@dataclass(frozen=True)
class Preprocess:
    """Crop, resize and normalisation parameters (pixels; mean/std in 0..255 units, network order)."""

    src_width: int = CULANE_WIDTH
    src_height: int = CULANE_HEIGHT
    crop_top: int = 240
    net_width: int = 976
    net_height: int = 208
    mean: tuple[float, float, float] = IMAGENET_MEAN_RGB
    std: tuple[float, float, float] = IMAGENET_STD_RGB
    rgb: bool = True
    interpolation: str = "linear"

    def __post_init__(self) -> None:
        if not 0 <= self.crop_top < self.src_height:
            raise ValueError(f"crop_top={self.crop_top} must lie in [0, src_height={self.src_height})")
        if min(self.src_width, self.net_width, self.net_height) <= 0:
            raise ValueError("image and network sizes must be positive")
        if self.interpolation not in _INTERPOLATION:
            raise ValueError(f"interpolation must be one of {sorted(_INTERPOLATION)}, got {self.interpolation!r}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError("mean and std need 3 values each, std > 0")
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))

    # -- parameters as data -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["mean"], data["std"] = list(self.mean), list(self.std)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Preprocess":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown preprocessing keys: {sorted(unknown)}")
        values = dict(data)
        for key in ("mean", "std"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)

    # -- geometry -----------------------------------------------------------------------------
    @property
    def crop_height(self) -> int:
        """Rows left after the crop (CULane: 350)."""
        return self.src_height - self.crop_top

    @property
    def scale_x(self) -> float:
        """Network pixels per original pixel, horizontally."""
        return self.net_width / self.src_width

    @property
    def scale_y(self) -> float:
        """Network pixels per original pixel, vertically (after the crop)."""
        return self.net_height / self.crop_height

    def image_to_net(self, x: np.ndarray | float, y: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Original-image pixel coordinates -> network-grid coordinates (float)."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        return (x + 0.5) * self.scale_x - 0.5, (y - self.crop_top + 0.5) * self.scale_y - 0.5

    def net_to_image(self, x: np.ndarray | float, y: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Network-grid coordinates -> original-image pixel coordinates (float)."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        return (x + 0.5) / self.scale_x - 0.5, (y + 0.5) / self.scale_y - 0.5 + self.crop_top

    # -- images -------------------------------------------------------------------------------
    def check_size(self, image: np.ndarray, what: str = "image") -> None:
        """ValueError unless ``image`` (H, W, ...) is the source size this preprocessing reads."""
        expected = (self.src_height, self.src_width)
        if image.shape[:2] != expected:
            raise ValueError(
                f"{what} is {image.shape[1]}x{image.shape[0]}, preprocessing expects "
                f"{self.src_width}x{self.src_height} (width x height)"
            )

    def resize_image(self, image: np.ndarray) -> np.ndarray:
        """Crop + resize one (H, W, 3) uint8 image -> (net_height, net_width, 3) uint8, still BGR."""
        self.check_size(image)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image must be (H, W, 3), got shape {image.shape}")
        return cv2.resize(
            image[self.crop_top :],
            (self.net_width, self.net_height),
            interpolation=_INTERPOLATION[self.interpolation],
        )

    def normalize(self, resized: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """(h, w, 3) uint8 BGR -> (3, h, w) float32, channels reordered and normalised."""
        order = (2, 1, 0) if self.rgb else (0, 1, 2)
        if out is None:
            out = np.empty((3, resized.shape[0], resized.shape[1]), dtype=np.float32)
        for dst, src in enumerate(order):
            np.subtract(resized[:, :, src], self.mean[dst], out=out[dst], dtype=np.float32)
            out[dst] *= np.float32(1.0 / self.std[dst])
        return out

    def __call__(self, images: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Preprocess one (H, W, 3) image or a batch -> (N, 3, net_height, net_width) float32."""
        if isinstance(images, np.ndarray) and images.ndim == 3:
            images = [images]
        batch = np.empty((len(images), 3, self.net_height, self.net_width), dtype=np.float32)
        for i, image in enumerate(images):
            self.normalize(self.resize_image(image), out=batch[i])
        return batch

    def label(self, label: np.ndarray) -> np.ndarray:
        """Crop + resize an (H, W) label map -> (net_height, net_width) uint8, nearest neighbour."""
        self.check_size(label, "label map")
        return cv2.resize(
            label[self.crop_top :], (self.net_width, self.net_height), interpolation=cv2.INTER_NEAREST_EXACT
        )
