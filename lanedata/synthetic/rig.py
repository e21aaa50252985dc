"""The dashcam rig: what a recording camera adds to every frame besides the road.

Besides the road (``lanedata.synthetic.geometry``) and the camera's placement
(``lanedata.synthetic.mount``: height, pitch, yaw, field of view, the recorded frame's window in
the source image), a dashcam frame may show:

- the ego vehicle's **hood** (half the frames, :data:`HOOD_SHARE`): a dome-shaped edge whose top is
  4-30 % of the frame height above its bottom, reaching lower towards the sides, its paint (common
  car colours: white, black, grey, silver, blue, red, brown, green, from the paint makers' colour
  popularity reports) reflecting the sky and the scene ahead, with the dark cowl and wiper base
  below it. Lanes are annotated straight through the hood (the annotation is geometric, the hood
  only hides paint), as CULane annotates them;
- **dark rounded margins** (a third of the frames): the black segments a rectification of a
  barrel-distorted image leaves at the middle of the edges (4-26 px deep at the sides, up to 30 at
  the bottom, the size the barrel distortion range below leaves);
- a burnt-in **timestamp** (white digits near the frame's bottom left) and a **logo** (half the frames);
- **lens distortion** (mild barrel after the recorder's correction, :data:`EDGE_DISTORTION`) and a small **roll** (+-2 deg).

The distortion and roll are one warp of the rendered frame (:class:`Lens`), and the annotation
points go through the same warp (:meth:`Lens.forward`), so labels stay on the painted lines. A
frame narrower or wider than the source (``Rig.window``) is black outside its window, as the
runtime's letterbox makes it. Everything here draws from the ``numpy.random.Generator`` it is given.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from lanedata.synthetic.geometry import Camera
from lanedata.synthetic.mount import Window

Color = tuple[float, float, float]

HOOD_PAINTS: tuple[Color, ...] = (
    (28.0, 30.0, 32.0),  # black
    (40.0, 58.0, 36.0),  # dark green
    (70.0, 45.0, 30.0),  # dark blue
    (150.0, 150.0, 152.0),  # silver
    (200.0, 202.0, 205.0),  # white
    (40.0, 40.0, 150.0),  # red
    (90.0, 92.0, 96.0),  # grey
    (60.0, 80.0, 110.0),  # brown/bronze
)


@dataclass
class Hood:
    """The ego car's hood in full-size image pixels: its edge is
    ``v(u) = top + depth * |(u - centre) / half_width| ** power`` (clipped to the frame)."""

    top: float
    centre: float
    half_width: float
    depth: float
    power: float
    paint: Color
    reflectivity: float  # 0..1: how much of the scene ahead the paint mirrors
    cowl: float  # rows from the hood edge to the dark cowl/dashboard band (large = no cowl visible)
    highlight: float  # 0..1 brightness of the specular line along the edge

    def edge(self, u: np.ndarray) -> np.ndarray:
        d = np.abs((np.asarray(u, np.float64) - self.centre) / self.half_width)
        return self.top + self.depth * d**self.power


@dataclass
class Margins:
    """Black circular segments at the edge centres (depth in px at full size, 0 = none), and a
    corner darkening (0..1)."""

    left: float
    right: float
    top: float
    bottom: float
    span: float  # half-height (left/right) as a fraction of the image height
    corner: float


@dataclass
class Overlay:
    """Burnt-in text: ``timestamp`` at ``(u, v)`` (full-size px, baseline), its scale, and a logo."""

    timestamp: str
    u: float
    v: float
    scale: float
    logo: bool
    logo_u: float


@dataclass
class Rig:
    hood: Hood | None
    margins: Margins | None
    overlay: Overlay | None
    k1: float  # radial distortion (image = pinhole * (1 + k1 r^2)^-1 approx.; > 0 barrel), r in focal units
    roll: float  # degrees, counter-clockwise
    window: Window | None = None  # where the recorded frame lies in the source image (None: all of it); black outside


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


HOOD_SHARE = 0.5
"""Frames with the ego vehicle's hood in view: a windscreen camera sees it or not depending on the
vehicle's bonnet and the camera's height and pitch (no dataset's share is copied)."""
EDGE_DISTORTION = (-0.03, 0.11)
"""Residual radial distortion after a recorder's rectification, as the relative displacement at the
frame's side edge (``k1 r_edge^2``; > 0 barrel): camera sheets give "TV distortion" of a few per
cent for rectilinear lenses; wider-angle optics leave more. Set per frame, so a wide field of view
is not distorted more than a narrow one."""
HOOD_ROWS = (0.04, 0.30)
"""The hood's highest point, as a fraction of the frame height above its bottom edge."""


def sample_rig(rng: np.random.Generator, camera: Camera, window: Window | None = None) -> Rig:
    """A random dashcam rig for a full-size camera whose frame lies in ``window`` (None: the whole image)."""
    win = window or Window(0, 0, camera.width, camera.height_px)
    k = win.height / 590.0  # the hood's shape parameters were drawn for a 590-row frame
    hood = None
    if rng.random() < HOOD_SHARE:
        paint = HOOD_PAINTS[int(rng.integers(len(HOOD_PAINTS)))]
        paint = tuple(float(np.clip(c * _u(rng, 0.45, 1.0), 0, 255)) for c in paint)
        hood = Hood(
            top=win.bottom - win.height * _u(rng, *HOOD_ROWS),
            centre=camera.cx + win.width * _u(rng, -0.1, 0.1),
            half_width=win.width * _u(rng, 0.4, 0.6),
            depth=k * _u(rng, 120, 320),
            power=_u(rng, 1.6, 2.6),
            paint=paint,  # type: ignore[arg-type]
            reflectivity=_u(rng, 0.25, 0.75),
            cowl=k * _u(rng, 45, 110) if rng.random() < 0.75 else 1e4,
            highlight=_u(rng, 0.0, 0.25) if rng.random() < 0.6 else 0.0,
        )
    margins = None
    if rng.random() < 0.35:
        margins = Margins(
            left=_u(rng, 4, 24), right=_u(rng, 4, 26), top=_u(rng, 0, 8), bottom=_u(rng, 0, 30),
            span=_u(rng, 0.25, 0.45), corner=_u(rng, 0.0, 0.35),
        )
    overlay = None
    if rng.random() < 0.5:
        if rng.random() < 0.5:
            text = f"{int(rng.integers(0, 60)):02d}:{int(rng.integers(0, 60)):02d}"
        else:
            text = f"2015/0{int(rng.integers(1, 7))}/{int(rng.integers(10, 29))} {int(rng.integers(0, 24)):02d}:{int(rng.integers(0, 60)):02d}:{int(rng.integers(0, 60)):02d}"
        overlay = Overlay(
            timestamp=text, u=win.left + _u(rng, 20, max(21.0, min(700.0, win.width - 400.0))), v=win.bottom - _u(rng, 2, 30),
            scale=_u(rng, 0.8, 1.3), logo=rng.random() < 0.6, logo_u=win.left + _u(rng, 60, max(61.0, min(400.0, win.width - 200.0))),
        )
    edge = (win.width / 2) / camera.focal  # the frame's side edge, in focal units
    return Rig(hood=hood, margins=margins, overlay=overlay, k1=_u(rng, *EDGE_DISTORTION) / edge**2,
               roll=float(np.clip(rng.normal(0.0, 0.8), -2.0, 2.0)), window=None if win.full else win)


# ------------------------------------------------------------------------------------------------
# Lens: distortion and roll, one warp for pixels and the same mapping for points
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Lens:
    """Radial distortion ``k1`` and roll about the image centre of a camera (any scale).

    Model (normalised by the focal length, centred on the image centre ``(cu, cv)``): a
    pinhole point ``p`` (after the roll) appears at ``d`` with ``p = d * (1 + k1 |d|^2)``; k1 > 0
    is barrel distortion. ``inverse`` (output pixel -> pinhole pixel) is closed-form, which makes
    the image warp exact; ``forward`` (pinhole -> output) solves it by fixed-point iteration.
    """

    k1: float
    roll: float
    focal: float
    cu: float
    cv: float

    @classmethod
    def of(cls, rig: Rig, cam: Camera) -> "Lens":
        return cls(rig.k1, rig.roll, cam.focal, (cam.width - 1) / 2, (cam.height_px - 1) / 2)

    @property
    def identity(self) -> bool:
        return self.k1 == 0.0 and self.roll == 0.0

    def _rotate(self, x: np.ndarray, y: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
        a = np.deg2rad(degrees)
        c, s = np.cos(a), np.sin(a)
        return c * x + s * y, -s * x + c * y

    def inverse(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Output (distorted, rolled) pixels -> pinhole pixels."""
        x, y = (np.asarray(u, np.float64) - self.cu) / self.focal, (np.asarray(v, np.float64) - self.cv) / self.focal
        g = 1.0 + self.k1 * (x * x + y * y)
        x, y = self._rotate(x * g, y * g, -self.roll)
        return self.cu + self.focal * x, self.cv + self.focal * y

    def forward(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pinhole pixels -> output pixels (inverse of :meth:`inverse` to ~1e-9 px)."""
        x, y = (np.asarray(u, np.float64) - self.cu) / self.focal, (np.asarray(v, np.float64) - self.cv) / self.focal
        x, y = self._rotate(x, y, self.roll)
        dx, dy = x.copy(), y.copy()
        for _ in range(30):
            g = 1.0 + self.k1 * (dx * dx + dy * dy)
            dx, dy = x / g, y / g
        return self.cu + self.focal * dx, self.cv + self.focal * dy

    def padding(self, width: int, height: int) -> int:
        """Pixels the pinhole render must extend beyond a ``width`` x ``height`` output on each
        side so that :meth:`warp` never samples outside it (barrel distortion and roll look out)."""
        if self.identity:
            return 0
        u = np.array([0.0, width - 1, 0.0, width - 1, (width - 1) / 2, (width - 1) / 2, 0.0, width - 1])
        v = np.array([0.0, 0.0, height - 1, height - 1, 0.0, height - 1, (height - 1) / 2, (height - 1) / 2])
        su, sv = self.inverse(u, v)
        beyond = np.maximum.reduce([-su, su - (width - 1), -sv, sv - (height - 1), np.zeros_like(su)])
        return int(np.ceil(beyond.max())) + 2

    def warp(self, img: np.ndarray, out_shape: tuple[int, int] | None = None, pad: int = 0,
             interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
        """Apply the lens to a rendered pinhole image whose pixel (x, y) is output-frame pixel
        (x - pad, y - pad); returns the ``out_shape`` (h, w) output frame (default: img's shape).
        ``interpolation``: of the image (``cv2.INTER_NEAREST`` for label maps).
        The map is smooth, so it is computed on nodes every 4 px and interpolated bilinearly
        (< 0.01 px off at the render size)."""
        h, w = out_shape or img.shape[:2]
        if self.identity:
            return img[pad : pad + h, pad : pad + w]
        step = 4
        su, sv = self.inverse(np.arange(0.0, w + step, step)[None, :], np.arange(0.0, h + step, step)[:, None])
        fu, fv = np.meshgrid(np.arange(w, dtype=np.float32) / step, np.arange(h, dtype=np.float32) / step)
        mu = cv2.remap((su + pad).astype(np.float32), fu, fv, cv2.INTER_LINEAR)
        mv = cv2.remap((sv + pad).astype(np.float32), fu, fv, cv2.INTER_LINEAR)
        return cv2.remap(img, mu, mv, interpolation, borderMode=cv2.BORDER_REPLICATE)


# ------------------------------------------------------------------------------------------------
# Drawing (at any scale: ``s`` = render size / full size)
# ------------------------------------------------------------------------------------------------
def hood_mask(hood: Hood, shape: tuple[int, int], s: float) -> np.ndarray:
    """(h, w) float32 coverage of the hood (1 inside, anti-aliased edge) at scale ``s``."""
    h, w = shape
    u = (np.arange(w, dtype=np.float64) + 0.5) / s - 0.5
    edge = hood.edge(u) * s
    rows = np.arange(h, dtype=np.float64)[:, None]
    return np.clip(rows - edge[None, :] + 0.5, 0.0, 1.0).astype(np.float32)


def draw_hood(img: np.ndarray, hood: Hood, s: float, horizon: float, night: bool, rng: np.random.Generator) -> None:
    """Paint the hood over ``img`` ((h, w, 3) float32 BGR, the frame at scale ``s``; ``horizon``
    its horizon row at that scale), in place.

    The paint mirrors the scene just above the hood edge (flipped, compressed and blurred, as a
    curved glossy surface does), darkens towards the windscreen, carries a specular line along its
    edge, and ends in the dark cowl band."""
    h, w = img.shape[:2]
    horizon = int(np.clip(round(horizon), 1, h - 1))
    mask = hood_mask(hood, (h, w), s)
    top = int(np.clip(np.floor(hood.top * s), 0, h - 1))
    if top >= h - 1:
        return
    rows = h - top
    paint = np.array(hood.paint, np.float32)
    # Reflection: a glossy hood tilted towards the camera mirrors what stands above the horizon
    # (sky, trees, buildings, vehicles' tops): that band, flipped, fills the hood from its edge down.
    band = max(4, int(rows * _u(rng, 0.6, 1.6)))
    src = img[max(0, horizon - band) : max(1, horizon)][::-1]
    reflection = cv2.resize(src, (w, rows), interpolation=cv2.INTER_LINEAR)
    reflection = cv2.GaussianBlur(reflection, (0, 0), max(0.8, 3.0 * s))
    t = np.linspace(0.0, 1.0, rows, dtype=np.float32)[:, None, None]
    gloss = np.float32(hood.reflectivity) * (1.0 - 0.7 * t)
    body = paint * (0.55 + 0.45 * (1.0 - t)) * np.float32(0.15 if night else 1.0)
    surface = body * (1.0 - gloss) + reflection * gloss * np.float32(0.85)
    u = np.arange(w, dtype=np.float64) / s
    edge = hood.edge(u) * s
    if hood.highlight:
        dist = np.arange(top, h, dtype=np.float32)[:, None] - edge[None, :].astype(np.float32)
        line = np.exp(-((dist - 2.0 * s) ** 2) / np.float32(2 * (1.5 * s) ** 2))
        surface += (np.float32(255.0 * hood.highlight * (0.2 if night else 1.0)) * line)[:, :, None]
    cowl_edge = edge + hood.cowl * s * (1.0 + 0.4 * np.abs((u - hood.centre) / hood.half_width))
    cowl = np.clip(np.arange(top, h, dtype=np.float32)[:, None] - cowl_edge[None, :].astype(np.float32), 0.0, 1.0)
    dark = np.float32(_u(rng, 8, 30) * (0.4 if night else 1.0))
    surface = surface * (1.0 - cowl[:, :, None]) + dark * cowl[:, :, None]
    m = mask[top:, :, None]
    img[top:] = img[top:] * (1.0 - m) + surface * m


def margin_mask(margins: Margins, shape: tuple[int, int], s: float) -> np.ndarray:
    """(h, w) float32 multiplicative mask at scale ``s``: 0 in the black margins, soft edges,
    corner darkening."""
    h, w = shape
    H, W = h / s, w / s
    v = (np.arange(h, dtype=np.float32) + 0.5) / s
    u = (np.arange(w, dtype=np.float32) + 0.5) / s
    half = margins.span * H

    def segment(depth: float, pos: np.ndarray, centre: float, half_len: float) -> np.ndarray:
        x = np.clip(1.0 - ((pos - centre) / half_len) ** 2, 0.0, None)
        return depth * np.sqrt(x)

    out = np.ones((h, w), np.float32)
    dl = segment(margins.left, v, H * 0.47, half)[:, None]
    dr = segment(margins.right, v, H * 0.45, half)[:, None]
    dt = segment(margins.top, u, W * 0.53, W * 0.1)[None, :]
    db = segment(margins.bottom, u, W * 0.48, W * 0.17)[None, :]
    soft = np.float32(1.5)
    out *= np.clip((u[None, :] - dl) / soft, 0, 1)
    out *= np.clip((W - u[None, :] - dr) / soft, 0, 1)
    out *= np.clip((v[:, None] - dt) / soft, 0, 1)
    out *= np.clip((H - v[:, None] - db) / soft, 0, 1)
    if margins.corner:
        r = np.sqrt(((u[None, :] - W / 2) / (W / 2)) ** 2 + ((v[:, None] - H / 2) / (H / 2)) ** 2)
        out *= 1.0 - np.float32(margins.corner) * np.clip(r - 1.0, 0.0, 1.0)
    return out


def draw_overlay(img: np.ndarray, overlay: Overlay) -> None:
    """Burn the timestamp (and logo) into the full-size uint8 image, in place."""
    scale = overlay.scale
    org = (int(overlay.u), int(overlay.v))
    font = cv2.FONT_HERSHEY_SIMPLEX | cv2.FONT_ITALIC
    cv2.putText(img, overlay.timestamp, org, font, scale, (20, 20, 20), max(2, int(4 * scale)), cv2.LINE_AA)
    cv2.putText(img, overlay.timestamp, org, font, scale, (235, 235, 235), max(1, int(2 * scale)), cv2.LINE_AA)
    if overlay.logo:
        centre = (int(overlay.logo_u), 2)
        cv2.ellipse(img, centre, (80, 28), 0, 0, 180, (245, 245, 245), -1, cv2.LINE_AA)
        cv2.ellipse(img, centre, (80, 28), 0, 0, 180, (40, 40, 210), 6, cv2.LINE_AA)
