"""How a video frame of any size or aspect becomes the model's source image, and lanes come back.

The model was trained on CULane geometry: ``src_width`` x ``src_height`` images (1640x590) whose
top ``crop_top`` rows (sky) :class:`runtime.preprocess.Preprocess` cuts. A dashcam frame of
another size is mapped onto that geometry so that the road sits where the model expects it:
**keep the full width, anchor at the bottom, and match the source aspect at the top**, then scale.

1. ``kept_h = frame_w * src_height / src_width`` (rounded half up) frame rows have the source
   aspect. If the frame is taller, only its bottom ``kept_h`` rows are used (the rows above, sky
   or scenery, are dropped); if it is shorter, black rows are added on top to make ``kept_h``.
2. That region is resized to ``src_width`` x ``src_height`` (bilinear; area averaging when
   shrinking below half size). A 1640x590 frame passes through untouched (no copy).

This is "scale to the source width keeping the aspect, then keep the bottom ``src_height`` rows
(or pad at the top)", with the crop done before the resize so that no discarded row is ever
interpolated. Examples (frame -> rows used):

=============  ===========================================================================
960x540 16:9   bottom 345 rows (top 195 dropped) -> 1640x590; 1280x720: bottom 460 of 720
1920x1080      bottom 691 rows (top 389 dropped)
720x1280       bottom 259 rows (portrait: only the road just ahead of the car is seen)
1640x590       as is
3280x590       590 black rows added on top (1180 rows -> 295 black source rows, more than the
               240 the preprocessing crops: the network sees some of the padding)
=============  ===========================================================================

Points map with OpenCV's pixel-centre convention, like the preprocessing, and the two directions
are exact inverses (up to float rounding)::

    x_src = (x + 0.5) * sx - 0.5             sx = src_width / frame_w
    y_src = (y - top + 0.5) * sy - 0.5       sy = src_height / kept_h,  top = frame_h - kept_h

``top`` > 0 is the number of frame rows dropped, < 0 the number of black rows added. ``sy``
differs from ``sx`` only by the rounding of ``kept_h`` (at most half a frame row over the
height). Dashcams whose hood fills the bottom of the frame are not special-cased: the hood then
sits where CULane's images show road (crop such videos first).
"""
from __future__ import annotations

import functools

import cv2
import numpy as np

from runtime.preprocess import Preprocess


class FramePolicy:
    """Maps (frame_h, frame_w, 3) frames onto the (src_height, src_width, 3) source geometry of ``pre``."""

    def __init__(self, pre: Preprocess, frame_w: int, frame_h: int) -> None:
        if frame_w <= 0 or frame_h <= 0:
            raise ValueError(f"frame size must be positive, got {frame_w}x{frame_h}")
        self.pre = pre
        self.frame_w, self.frame_h = int(frame_w), int(frame_h)
        self.kept_h = max(1, int(np.floor(self.frame_w * pre.src_height / pre.src_width + 0.5)))
        self.top = self.frame_h - self.kept_h
        self.sx = pre.src_width / self.frame_w
        self.sy = pre.src_height / self.kept_h
        self.interpolation = cv2.INTER_AREA if self.sx < 0.5 else cv2.INTER_LINEAR

    @property
    def identity(self) -> bool:
        """True when frames already have the source geometry (passed through as they are)."""
        return self.frame_w == self.pre.src_width and self.frame_h == self.pre.src_height

    @property
    def drop_rows(self) -> int:
        """Frame rows dropped at the top (0 unless the frame is taller than the source aspect)."""
        return max(0, self.top)

    @property
    def pad_rows(self) -> int:
        """Black frame-scale rows added at the top (0 unless the frame is wider than the source aspect)."""
        return max(0, -self.top)

    def describe(self) -> str:
        """One line for reports: what happens to a frame of this size."""
        src = f"{self.pre.src_width}x{self.pre.src_height}"
        if self.identity:
            return f"frame {self.frame_w}x{self.frame_h} is the model's source geometry: used as is"
        region = (f"bottom {self.kept_h} rows (top {self.drop_rows} dropped)" if self.top > 0 else
                  f"{self.pad_rows} black rows added on top" if self.top < 0 else "all rows")
        return (f"frame {self.frame_w}x{self.frame_h}: full width, {region}, resized to {src} "
                f"(x{self.sx:.4f}, x{self.sy:.4f}); lanes mapped back by the exact inverse")

    # -- images -------------------------------------------------------------------------------
    def to_source(self, frame: np.ndarray) -> np.ndarray:
        """(frame_h, frame_w, 3) uint8 -> (src_height, src_width, 3) uint8 (the frame itself when identity)."""
        if frame.shape[:2] != (self.frame_h, self.frame_w):
            raise ValueError(f"frame is {frame.shape[1]}x{frame.shape[0]}, the policy was made for {self.frame_w}x{self.frame_h}")
        if self.identity:
            return frame
        if self.top >= 0:
            region = frame[self.top :]
        else:
            region = cv2.copyMakeBorder(frame, self.pad_rows, 0, 0, 0, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        size = (self.pre.src_width, self.pre.src_height)
        if (region.shape[1], region.shape[0]) == size:
            return region
        return cv2.resize(region, size, interpolation=self.interpolation)

    @functools.cached_property
    def net_matrix(self) -> np.ndarray:
        """(2, 3) affine map from network-input pixel indices to frame pixel indices: the frame
        policy and the preprocessing's crop + resize composed (pixel-centre convention), i.e.
        ``x = (x_net + 0.5) / (sx * pre.scale_x) - 0.5`` and
        ``y = (y_net + 0.5) / (sy * pre.scale_y) - 0.5 + top + crop_top / sy``."""
        pre = self.pre
        kx, ky = self.sx * pre.scale_x, self.sy * pre.scale_y
        row0 = self.top + pre.crop_top / self.sy  # frame row (continuous) where the network input starts
        return np.array([[1.0 / kx, 0.0, 0.5 / kx - 0.5], [0.0, 1.0 / ky, 0.5 / ky - 0.5 + row0]], dtype=np.float64)

    def to_net(self, frame: np.ndarray) -> np.ndarray:
        """(frame_h, frame_w, 3) uint8 -> (net_height, net_width, 3) uint8 BGR in **one** resampling:
        the frame warped straight to the network input by :attr:`net_matrix` (bilinear; black
        where the policy pads). Frames of the source geometry take the training path itself
        (:meth:`Preprocess.resize_image`). Equals ``pre.resize_image(to_source(frame))`` up to
        the one resampling it saves; lanes map back with :meth:`points_to_frame` (its exact inverse
        through the source geometry)."""
        if frame.shape[:2] != (self.frame_h, self.frame_w):
            raise ValueError(f"frame is {frame.shape[1]}x{frame.shape[0]}, the policy was made for {self.frame_w}x{self.frame_h}")
        if self.identity:
            return self.pre.resize_image(frame)
        size = (self.pre.net_width, self.pre.net_height)
        return cv2.warpAffine(frame, self.net_matrix, size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))

    # -- points -------------------------------------------------------------------------------
    def points_to_source(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) x, y frame pixels -> (N, 2) float64 source-image pixels."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        x = (pts[:, 0] + 0.5) * self.sx - 0.5
        y = (pts[:, 1] - self.top + 0.5) * self.sy - 0.5
        return np.stack([x, y], axis=1)

    def points_to_frame(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) x, y source-image pixels -> (N, 2) float64 frame pixels (the exact inverse)."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        x = (pts[:, 0] + 0.5) / self.sx - 0.5
        y = (pts[:, 1] + 0.5) / self.sy - 0.5 + self.top
        return np.stack([x, y], axis=1)
