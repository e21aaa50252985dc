"""Camera and road geometry of the synthetic scenes.

World frame on the road plane: X lateral (metres, right positive), Z forward (metres); the camera
sits ``height`` metres above the plane looking along Z, with its horizon on image row
``horizon``. A ground point projects to ``u = cx + f X / Z``, ``v = horizon + f height / Z``.

The road's centre line has lateral offset ``c(Z) = heading Z + curvature Z^2/2 + dcurv Z^3/6``
(a clothoid, enough for the stretch a camera sees). Lane boundary ``k`` lies at
``c(Z) + offset_k - ego_offset`` where offsets are multiples of the lane width.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from runtime.culane import CULANE_HEIGHT, CULANE_WIDTH


@dataclass(frozen=True)
class Camera:
    """Pinhole camera over a flat road (pixels and metres)."""

    width: int = CULANE_WIDTH
    height_px: int = CULANE_HEIGHT
    focal: float = 1050.0
    cx: float = 820.0
    horizon: float = 268.0
    height: float = 1.5

    def project(self, x: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Ground points (X, Z) -> image (u, v) in pixels."""
        z = np.asarray(z, dtype=np.float64)
        return self.cx + self.focal * np.asarray(x) / z, self.horizon + self.focal * self.height / z

    def row_to_distance(self, v: np.ndarray | float) -> np.ndarray:
        """Image row (below the horizon) -> ground distance Z in metres."""
        return self.focal * self.height / (np.asarray(v, dtype=np.float64) - self.horizon)

    def scaled(self, s: float) -> "Camera":
        """The same camera on an image resized by ``s`` (pixel-centre convention)."""
        return Camera(
            width=int(round(self.width * s)),
            height_px=int(round(self.height_px * s)),
            focal=self.focal * s,
            cx=(self.cx + 0.5) * s - 0.5,
            horizon=(self.horizon + 0.5) * s - 0.5,
            height=self.height,
        )

    @property
    def nearest_visible(self) -> float:
        """Distance of the ground seen on the bottom image row."""
        return float(self.row_to_distance(self.height_px))


@dataclass(frozen=True)
class Road:
    """Road shape relative to the camera (metres, radians, 1/m, 1/m^2)."""

    lane_width: float = 3.6
    ego_offset: float = 0.0
    heading: float = 0.0
    curvature: float = 0.0
    dcurvature: float = 0.0
    profile: tuple[np.ndarray, np.ndarray] | None = field(default=None, compare=False)
    """Optional sampled centre line (distances, lateral offsets) replacing the clothoid (video)."""

    def centre(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=np.float64)
        if self.profile is not None:
            return np.interp(z, self.profile[0], self.profile[1])
        return self.heading * z + 0.5 * self.curvature * z**2 + self.dcurvature * z**3 / 6.0

    def boundary_offset(self, index: float) -> float:
        """Lateral offset of boundary ``index`` from the ego-lane centre: CULane lane IDs 1..4
        are indices -1.5, -0.5, 0.5, 1.5; further boundaries continue the series."""
        return index * self.lane_width

    def lateral(self, offset: float, z: np.ndarray) -> np.ndarray:
        """X of a line at lateral ``offset`` (metres from the ego-lane centre) at distances ``z``."""
        return self.centre(z) + offset - self.ego_offset


LANE_INDEX = {1: -1.5, 2: -0.5, 3: 0.5, 4: 1.5}
"""CULane lane ID -> boundary index (in lane widths from the ego-lane centre)."""
