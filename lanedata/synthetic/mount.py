"""Where the dashcam sits and what it frames: camera rigs drawn from physics and public specs.

Every range here comes from vehicle dimensions, camera spec sheets, video formats and lane
standards, never from a statistic of a real dev frame (``../shared/DESIGN.md``: dev sets measure,
they never tune). ``docs/datasets.md`` lists each range with its source.

A :class:`Mount` is a camera on a vehicle: mounting height, pitch, yaw, principal-point offset,
horizontal field of view and the frame it records (aspect, or a horizontal band of a 16:9
sensor). :func:`source_camera` maps it into the model's 1640x590 source geometry the way
``runtime.frame_policy`` (``letterbox``) maps any recorded frame: scaled to fit, centred, black
bars around. So a synthetic image is what the deployed model is fed from that camera, and its
window (where the frame lies in the source image) says where the bars are.

Geometry, in source pixels (``s`` the letterbox scale, ``w, h`` the frame size in its own pixels,
``(L, T)`` the window's top-left corner)::

    focal   = s * (w / 2) / tan(hfov / 2)
    cx      = L + s * (w / 2 + dx * w) + focal * tan(yaw)
    horizon = T + s * (h / 2 + dy * h) + focal * tan(pitch)     (pitch > 0: camera tilted up)

A band (a recorder that stores a 1640:590 strip of its 16:9 sensor, as CULane's frames are
stored) keeps the full sensor width; the strip's centre lies ``band_shift`` strip heights below
the sensor's centre (0: centred; the strip never leaves the sensor). Pitch moves the horizon and
keeps the ground's projection of a level camera (``lanedata.synthetic.geometry``): the small-angle
form of the tilt homography (row spacing within about 1 % of the exact one at 4 degrees).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lanedata.synthetic.geometry import Camera
from runtime.culane import CULANE_HEIGHT, CULANE_WIDTH

VEHICLES: dict[str, tuple[float, tuple[float, float]]] = {
    "car": (0.55, (1.15, 1.45)),
    "suv_van": (0.30, (1.45, 2.00)),
    "truck_bus": (0.15, (2.00, 2.90)),
}
"""Vehicle class -> (share of frames, camera height range in metres): a windscreen camera sits
0.1-0.3 m below the roof line (sedans 1.40-1.50 m tall, SUVs and vans 1.60-2.10 m, truck cabs and
buses 2.9-3.9 m: manufacturers' dimension sheets, see docs/datasets.md)."""

HFOV_DEG = (45.0, 110.0)
"""Horizontal field of view after undistortion: narrow ADAS cameras (about 50 deg) to wide dashcams
(120-140 deg diagonal before the recorder's rectification)."""

PITCH_DEG = (-4.0, 4.0)
"""Optical axis against the road plane: mounting by eye (about +-3 deg) plus body pitch from load
and acceleration (about +-1 deg)."""

YAW_DEG = (-3.0, 3.0)
"""Optical axis against the driving direction (mounting by eye)."""

PRINCIPAL_OFFSET = 0.03
"""Principal point off the frame centre, as a fraction of the frame's width / height (+-)."""

FRAMES: tuple[tuple[str, float, float | None], ...] = (
    ("16:9", 0.40, 16 / 9),
    ("4:3", 0.12, 4 / 3),
    ("3:2", 0.12, 3 / 2),
    ("2:1", 0.06, 2.0),
    ("band", 0.30, None),
)
"""Recorded frame: (name, share, aspect w/h; None: a 1640:590 band of a 16:9 sensor). Video
formats of dashcams and public driving datasets (1920x1080, 1280x720, 640x480, 1920x1280, ...)."""

BAND_SHIFT = (0.0, 0.28)
"""Where a band sits on its 16:9 sensor: its centre this many band heights below the sensor's
centre (0 .. 0.28, the lowest strip that stays on the sensor), a recorder keeping the road."""


@dataclass(frozen=True)
class Window:
    """Where the recorded frame lies in the source image (pixels; the rest is black)."""

    left: int
    top: int
    width: int
    height: int

    @property
    def right(self) -> int:
        return self.left + self.width

    @property
    def bottom(self) -> int:
        return self.top + self.height

    @property
    def full(self) -> bool:
        return (self.left, self.top, self.width, self.height) == (0, 0, CULANE_WIDTH, CULANE_HEIGHT)


@dataclass(frozen=True)
class Mount:
    """A camera on a vehicle (metres, degrees, fractions of the frame)."""

    vehicle: str
    height: float
    pitch: float
    yaw: float
    hfov: float
    dx: float  # principal point offset, fraction of the frame width
    dy: float  # and of its height
    frame: str  # a FRAMES name
    aspect: float  # recorded frame w/h (a band: CULane's 1640:590)
    band_shift: float = 0.0  # bands only


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def sample_mount(rng: np.random.Generator, frame: str | None = None) -> Mount:
    """A random camera over the documented ranges (``frame``: force one FRAMES name)."""
    names, shares = list(VEHICLES), np.array([v[0] for v in VEHICLES.values()])
    vehicle = names[int(rng.choice(len(names), p=shares / shares.sum()))]
    lo, hi = VEHICLES[vehicle][1]
    height = _u(rng, lo, hi)
    if frame is None:
        fshares = np.array([f[1] for f in FRAMES])
        frame = FRAMES[int(rng.choice(len(FRAMES), p=fshares / fshares.sum()))][0]
    aspect = next((f[2] for f in FRAMES if f[0] == frame), False)
    if aspect is False:
        raise ValueError(f"unknown frame {frame!r}; known: {', '.join(f[0] for f in FRAMES)}")
    return Mount(vehicle=vehicle, height=height, pitch=_u(rng, *PITCH_DEG), yaw=_u(rng, *YAW_DEG), hfov=_u(rng, *HFOV_DEG),
                 dx=_u(rng, -PRINCIPAL_OFFSET, PRINCIPAL_OFFSET), dy=_u(rng, -PRINCIPAL_OFFSET, PRINCIPAL_OFFSET),
                 frame=frame, aspect=aspect if aspect is not None else CULANE_WIDTH / CULANE_HEIGHT,
                 band_shift=_u(rng, *BAND_SHIFT) if aspect is None else 0.0)


def window_of(aspect: float, width: int = CULANE_WIDTH, height: int = CULANE_HEIGHT) -> Window:
    """The letterbox window of a frame of aspect ``aspect`` (w/h) in a ``width`` x ``height`` source
    (as ``runtime.frame_policy`` places it: scaled to fit, centred, rounded to whole pixels)."""
    if aspect * height <= width:
        w = min(width, int(math.floor(aspect * height + 0.5)))
        return Window((width - w) // 2, 0, w, height)
    h = min(height, int(math.floor(width / aspect + 0.5)))
    return Window(0, (height - h) // 2, width, h)


def source_camera(mount: Mount, width: int = CULANE_WIDTH, height: int = CULANE_HEIGHT) -> tuple[Camera, Window]:
    """The pinhole camera in source pixels and the frame's window (module docstring)."""
    win = window_of(mount.aspect, width, height)
    focal = (win.width / 2) / math.tan(math.radians(mount.hfov) / 2)
    cx = win.left + win.width / 2 + mount.dx * win.width + focal * math.tan(math.radians(mount.yaw))
    centre_row = win.top + win.height / 2 + mount.dy * win.height
    if mount.band_shift:  # the sensor's optical centre lies above the band's centre
        centre_row -= mount.band_shift * win.height
    horizon = centre_row + focal * math.tan(math.radians(mount.pitch))
    return Camera(width=width, height_px=height, focal=focal, cx=cx, horizon=horizon, height=mount.height), win
