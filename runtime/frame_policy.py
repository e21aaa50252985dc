"""How a frame of any size or aspect becomes the model's source image, and lanes come back.

The model was trained on CULane geometry: ``src_width`` x ``src_height`` images (1640x590) whose
top ``crop_top`` rows (sky) :class:`runtime.preprocess.Preprocess` cuts. A frame of another size is
mapped onto that geometry by one of two policies (``mode``):

``letterbox`` (the default): **the whole frame, scaled to fit, centred**. The frame is scaled by
``s = min(src_width / frame_w, src_height / frame_h)`` (aspect kept), and black bars fill the
rest: at the sides for frames narrower than 1640:590 (every 16:9 or 4:3 dashcam: a 1280x720
frame becomes 1049x590 with 295 black columns each side), above and below for wider ones. The
frame's centre lands on the source's centre: where a level camera's horizon (its optical centre)
is, the synthetic generator puts it too (``lanedata.synthetic``), so no statistic of any camera's
frames enters. Nothing of the frame is lost (its nearest road rows included, which a crop would
drop while the annotations keep them).

``bottom`` (the policy before the "any camera" work): keep the full width, anchor at the bottom,
match the source aspect at the top (``kept_h = frame_w * src_height / src_width`` rows, rounded
half up; taller frames lose their top rows, wider ones get black rows on top), then scale. It
assumes the frame's horizon sits where CULane's does in its bottom ``kept_h`` rows, which holds for
one camera only: a 16:9 camera's horizon lands near the top of the network's crop.

Examples (frame -> source region):

=============  ============================================  ================================
frame          letterbox                                      bottom
=============  ============================================  ================================
960x540 16:9   1049x590, 295 / 296 black columns left/right  bottom 345 rows (top 195 dropped)
1920x1280 3:2  885x590, 377 / 378 black columns               bottom 691 rows
1640x590       as is                                          as is
3280x590       1640x295, 147 / 148 black rows top/bottom      590 black rows on top
=============  ============================================  ================================

Points map with OpenCV's pixel-centre convention, like the preprocessing, and the two directions
are exact inverses (up to float rounding)::

    x_src = (x + 0.5) * sx - 0.5 + ox        y_src = (y + 0.5) * sy - 0.5 + oy

``letterbox``: ``sx = round(frame_w * s) / frame_w``, ``sy = round(frame_h * s) / frame_h`` (equal
up to the rounding of the scaled size), ``ox``, ``oy`` the whole black columns/rows on the left/top.
``bottom``: ``sx = src_width / frame_w``, ``sy = src_height / kept_h``, ``ox = 0``,
``oy = -top * sy`` with ``top = frame_h - kept_h`` (frame rows dropped when > 0, black rows added
when < 0).
"""
from __future__ import annotations

import functools

import cv2
import numpy as np

from runtime.preprocess import Preprocess


MODES = ("letterbox", "bottom")
"""Frame policies: :data:`DEFAULT_MODE` first."""
DEFAULT_MODE = "letterbox"


class FramePolicy:
    """Maps (frame_h, frame_w, 3) frames onto the (src_height, src_width, 3) source geometry of ``pre``."""

    def __init__(self, pre: Preprocess, frame_w: int, frame_h: int, mode: str = DEFAULT_MODE) -> None:
        if frame_w <= 0 or frame_h <= 0:
            raise ValueError(f"frame size must be positive, got {frame_w}x{frame_h}")
        if mode not in MODES:
            raise ValueError(f"frame policy must be one of {', '.join(MODES)}, got {mode!r}")
        self.pre, self.mode = pre, mode
        self.frame_w, self.frame_h = int(frame_w), int(frame_h)
        if mode == "bottom":
            self.kept_h = max(1, int(np.floor(self.frame_w * pre.src_height / pre.src_width + 0.5)))
            self.top = self.frame_h - self.kept_h
            self.sx = pre.src_width / self.frame_w
            self.sy = pre.src_height / self.kept_h
            self.scaled_w, self.scaled_h = pre.src_width, pre.src_height  # the kept region, resized
            self.ox, self.oy = 0.0, -self.top * self.sy
        else:
            s = min(pre.src_width / self.frame_w, pre.src_height / self.frame_h)
            self.scaled_w = min(pre.src_width, max(1, int(np.floor(self.frame_w * s + 0.5))))
            self.scaled_h = min(pre.src_height, max(1, int(np.floor(self.frame_h * s + 0.5))))
            self.sx, self.sy = self.scaled_w / self.frame_w, self.scaled_h / self.frame_h
            self.left, self.upper = (pre.src_width - self.scaled_w) // 2, (pre.src_height - self.scaled_h) // 2
            self.ox, self.oy = float(self.left), float(self.upper)
        self.interpolation = cv2.INTER_AREA if min(self.sx, self.sy) < 0.5 else cv2.INTER_LINEAR

    @property
    def identity(self) -> bool:
        """True when frames already have the source geometry (passed through as they are)."""
        return self.frame_w == self.pre.src_width and self.frame_h == self.pre.src_height

    @property
    def drop_rows(self) -> int:
        """Frame rows dropped at the top (``bottom`` only: 0 unless the frame is taller than the source aspect)."""
        return max(0, self.top) if self.mode == "bottom" else 0

    @property
    def pad_rows(self) -> int:
        """``bottom``: black frame-scale rows added on top; ``letterbox``: black source rows above the frame."""
        return max(0, -self.top) if self.mode == "bottom" else self.upper

    def describe(self) -> str:
        """One line for reports: what happens to a frame of this size."""
        src = f"{self.pre.src_width}x{self.pre.src_height}"
        if self.identity:
            return f"frame {self.frame_w}x{self.frame_h} is the model's source geometry: used as is"
        if self.mode == "letterbox":
            bars = (f"{self.left}/{self.pre.src_width - self.scaled_w - self.left} black columns left/right" if self.scaled_w < self.pre.src_width
                    else f"{self.upper}/{self.pre.src_height - self.scaled_h - self.upper} black rows top/bottom" if self.scaled_h < self.pre.src_height
                    else "no bars")
            return (f"frame {self.frame_w}x{self.frame_h}: letterboxed, scaled to {self.scaled_w}x{self.scaled_h} "
                    f"(x{self.sx:.4f}, x{self.sy:.4f}) and centred in {src} with {bars}; lanes mapped back by the exact inverse")
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
        if self.mode == "letterbox":
            scaled = frame if (self.scaled_w, self.scaled_h) == (self.frame_w, self.frame_h) else cv2.resize(
                frame, (self.scaled_w, self.scaled_h), interpolation=self.interpolation)
            return cv2.copyMakeBorder(scaled, self.upper, self.pre.src_height - self.scaled_h - self.upper, self.left,
                                      self.pre.src_width - self.scaled_w - self.left, cv2.BORDER_CONSTANT, value=(0, 0, 0))
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
        ``x = (x_net + 0.5) / (sx * pre.scale_x) - ox / sx - 0.5`` and
        ``y = (y_net + 0.5) / (sy * pre.scale_y) + (crop_top - oy) / sy - 0.5``."""
        pre = self.pre
        kx, ky = self.sx * pre.scale_x, self.sy * pre.scale_y
        return np.array([[1.0 / kx, 0.0, 0.5 / kx - self.ox / self.sx - 0.5],
                         [0.0, 1.0 / ky, 0.5 / ky + (pre.crop_top - self.oy) / self.sy - 0.5]], dtype=np.float64)

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
        x = (pts[:, 0] + 0.5) * self.sx - 0.5 + self.ox
        y = (pts[:, 1] + 0.5) * self.sy - 0.5 + self.oy
        return np.stack([x, y], axis=1)

    def points_to_frame(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) x, y source-image pixels -> (N, 2) float64 frame pixels (the exact inverse)."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        x = (pts[:, 0] + 0.5 - self.ox) / self.sx - 0.5
        y = (pts[:, 1] + 0.5 - self.oy) / self.sy - 0.5
        return np.stack([x, y], axis=1)
