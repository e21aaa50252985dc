"""Vehicles of the synthetic road scenes: cars, SUVs, vans, buses, trucks and two-wheelers with riders.

A vehicle is a small 3-D model in its own frame: ``x`` lateral (m, right positive, from its centre),
``y`` height above the road, ``dz`` depth from the face the camera sees (its rear, or its front when
oncoming). Its parts are flat polygons listed far to near; each is projected through the pinhole
camera (``X = road.lateral(lateral, distance + dz) + x``) and filled into a small uint8 BGRA patch,
where OpenCV's anti-aliasing works (it does not on float images) and leaves premultiplied alpha; the
patch is shaded (vertical gradient, grain, dirt) and composited into the float32 frame.
Faces are lit by the sun (``sun = (azimuth, elevation)``; azimuth 0 = ahead, +pi/2 = right).
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

import cv2
import numpy as np

from lanedata.synthetic.geometry import Camera, Road
from lanedata.synthetic.primitives import ONE, SHIFT
from lanedata.synthetic.textures import bank

Color = tuple[float, float, float]

KIND_WEIGHTS = {"car": 0.60, "suv": 0.08, "van": 0.07, "truck": 0.08, "bus": 0.05, "motorbike": 0.08, "bicycle": 0.04}
TWO_WHEELERS = ("motorbike", "bicycle")
DIMENSIONS = {  # kind -> (width, height, length) ranges in metres
    "car": ((1.68, 1.88), (1.38, 1.55), (4.2, 4.9)),
    "suv": ((1.80, 1.98), (1.62, 1.85), (4.4, 4.9)),
    "van": ((1.65, 1.98), (1.85, 2.35), (4.4, 5.4)),
    "bus": ((2.45, 2.55), (3.0, 3.4), (10.0, 12.0)),
    "truck": ((2.2, 2.55), (2.5, 3.8), (6.0, 12.0)),
    "motorbike": ((0.7, 0.85), (1.5, 1.75), (1.8, 2.1)),
    "bicycle": ((0.55, 0.7), (1.55, 1.8), (1.65, 1.85)),
}
GAP = 3.0  # minimum bumper-to-bumper gap (m) between vehicles sharing a lane


@dataclass
class Vehicle:
    kind: str  # "car" | "suv" | "van" | "bus" | "truck" | "motorbike" | "bicycle"
    lateral: float  # m, centre, from the ego-lane centre (X = road.lateral(lateral, distance))
    distance: float  # m ahead (its rear face; front face for oncoming)
    width: float
    height: float
    length: float
    color: Color  # BGR 0..255 body colour (a two-wheeler's: the rider's jacket)
    facing: int = 1  # 1: seen from behind (same direction), -1: oncoming (seen from the front)
    seed: int = 0  # per-vehicle randomness for details


# ------------------------------------------------------------------------------------------------
# Sampling
# ------------------------------------------------------------------------------------------------
def _paint(rng: np.random.Generator, kind: str) -> Color:
    """Body colour (BGR): mostly white, silver, grey and black; some red, blue and others."""
    p = rng.random()
    if kind in TWO_WHEELERS:  # rider's jacket
        palette = [(40, 38, 36), (120, 70, 30), (70, 70, 72), (150, 150, 150), (40, 40, 140), (60, 90, 40), (200, 200, 205)]
        c = palette[int(rng.integers(len(palette)))]
    elif kind == "bus":
        c = [(225, 228, 230), (90, 150, 60), (170, 110, 30), (50, 60, 190), (40, 150, 220)][int(rng.integers(5))]
    elif kind == "truck" and p < 0.55:
        c = [(220, 220, 222), (160, 110, 40), (150, 150, 152), (40, 60, 170), (30, 170, 220), (60, 110, 60)][int(rng.integers(6))]
    elif p < 0.30:
        g = rng.uniform(215, 245)
        c = (g + 3, g, g - 4)  # white
    elif p < 0.50:
        g = rng.uniform(150, 195)
        c = (g + 4, g + 2, g)  # silver
    elif p < 0.70:
        g = rng.uniform(18, 38)
        c = (g + 2, g, g)  # black
    elif p < 0.78:
        g = rng.uniform(70, 120)
        c = (g + 4, g + 2, g)  # grey
    elif p < 0.86:
        c = (rng.uniform(20, 45), rng.uniform(20, 45), rng.uniform(130, 190))  # red
    elif p < 0.93:
        c = (rng.uniform(110, 170), rng.uniform(50, 90), rng.uniform(10, 40))  # blue
    else:
        c = [(60, 100, 140), (50, 90, 50), (40, 160, 200), (120, 150, 170), (20, 80, 150)][int(rng.integers(5))]
    return (float(c[0]), float(c[1]), float(c[2]))


def overlaps(a: Vehicle, b: Vehicle, gap: float = GAP) -> bool:
    """Whether two vehicles share a lane (their lateral extents within 0.5 m) and are closer than
    the nearer one's length + ``gap``."""
    if abs(a.lateral - b.lateral) >= (a.width + b.width) / 2 + 0.5:
        return False
    near, far = (a, b) if a.distance <= b.distance else (b, a)
    return far.distance - near.distance < near.length + gap


def sample_vehicles(rng: np.random.Generator, road: Road, lane_centres: list[float], count: int,
                    min_distance: float = 6.0, max_distance: float = 80.0,
                    oncoming_centres: list[float] = ()) -> list[Vehicle]:
    """Up to ``count`` vehicles in the given lanes (lateral offsets of lane centres, m), none
    overlapping. Mix: cars ~60 %, SUV/van ~15 %, trucks ~8 %, buses ~5 %, two-wheelers ~12 %;
    two-wheelers ride in our direction, mostly near the right edge of the rightmost lane."""
    lanes = [float(c) for c in lane_centres] or [0.0]
    oncoming = [float(c) for c in oncoming_centres]
    kinds = list(KIND_WEIGHTS)
    weights = np.array([KIND_WEIGHTS[k] for k in kinds])
    weights /= weights.sum()
    half_lane = road.lane_width / 2
    out: list[Vehicle] = []
    for _ in range(count * 20):
        if len(out) >= count:
            break
        kind = kinds[int(rng.choice(len(kinds), p=weights))]
        (w0, w1), (h0, h1), (l0, l1) = DIMENSIONS[kind]
        w, h, length = rng.uniform(w0, w1), rng.uniform(h0, h1), rng.uniform(l0, l1)
        facing = 1
        if kind in TWO_WHEELERS:
            if rng.random() < 0.7:
                lateral = max(lanes) + half_lane - rng.uniform(0.45, 1.1)
            else:
                lateral = lanes[int(rng.integers(len(lanes)))] + rng.uniform(-0.6, 0.6)
        else:
            jitter = 0.15 if kind in ("bus", "truck") else 0.35
            if oncoming and rng.random() < 0.35:
                centre, facing = oncoming[int(rng.integers(len(oncoming)))], -1
            else:
                centre = lanes[int(rng.integers(len(lanes)))]
            lateral = centre + rng.uniform(-jitter, jitter)
        if kind == "truck" and h < 2.9:  # light trucks are narrower
            w = min(w, rng.uniform(1.9, 2.3))
            length = min(length, rng.uniform(5.5, 7.5))
        v = Vehicle(kind=kind, lateral=float(lateral), distance=float(rng.uniform(min_distance, max_distance)),
                    width=float(w), height=float(h), length=float(length), color=_paint(rng, kind),
                    facing=facing, seed=int(rng.integers(0, 2**31 - 1)))
        if not any(overlaps(v, o) for o in out):
            out.append(v)
    return out


# ------------------------------------------------------------------------------------------------
# Model building: flat polygons in the vehicle frame
# ------------------------------------------------------------------------------------------------
_CIRCLE = [(math.cos(a), math.sin(a)) for a in np.linspace(0, 2 * math.pi, 12, endpoint=False)]
TYRE, UNDER, PLASTIC = (14.0, 14.0, 16.0), (32.0, 32.0, 34.0), (38.0, 38.0, 41.0)


def _scale(c: Color, g: float) -> Color:
    return (min(255.0, c[0] * g), min(255.0, c[1] * g), min(255.0, c[2] * g))


class _Parts:
    """Polygons (vertex lists in the vehicle frame), their colours, which are body faces (grown by
    half a pixel so shared edges leave no seam), and which are lamps (index, radius m)."""

    def __init__(self, eye: float) -> None:
        self.eye = eye  # camera height: top faces above it are not seen
        self.dim = 1.0  # brightness of number plates (lower at night)
        self.pts: list[tuple[float, float, float]] = []
        self.counts: list[int] = []
        self.cols: list[Color] = []
        self.solid: list[bool] = []
        self.lamps: list[tuple[int, float]] = []

    def poly(self, pts: list[tuple[float, float, float]], col: Color, solid: bool = False) -> None:
        self.pts += pts
        self.counts.append(len(pts))
        self.cols.append(col)
        self.solid.append(solid)

    def face(self, x0: float, x1: float, y0: float, y1: float, dz: float, col: Color, solid: bool = False) -> None:
        """Rectangle in the vertical plane at depth dz (facing the camera)."""
        self.poly([(x0, y0, dz), (x1, y0, dz), (x1, y1, dz), (x0, y1, dz)], col, solid)

    def lamp(self, x0: float, x1: float, y0: float, y1: float, dz: float, col: Color, slant: float = 0.0) -> None:
        """A lamp: rectangle whose x1 edge is ``slant`` m nearer x0 at the bottom."""
        self.poly([(x0, y0, dz), (x1 + math.copysign(slant, x0 - x1), y0, dz), (x1, y1, dz), (x0, y1, dz)], col)
        self.lamps.append((len(self.cols) - 1, math.sqrt(abs((x1 - x0) * (y1 - y0)) / math.pi)))  # same area

    def top(self, hw: float, y: float, dz0: float, dz1: float, col: Color) -> None:
        if y < self.eye - 0.02:
            self.poly([(-hw, y, dz0), (hw, y, dz0), (hw, y, dz1), (-hw, y, dz1)], col, True)

    def side(self, x: float, dzy: list[tuple[float, float]], col: Color, solid: bool = False) -> None:
        """Polygon in the side plane x = const, from (dz, y) points."""
        self.poly([(x, y, dz) for dz, y in dzy], col, solid)

    def disc(self, xc: float, yc: float, dz: float, rx: float, ry: float, col: Color) -> None:
        self.poly([(xc + rx * c, yc + ry * s, dz) for c, s in _CIRCLE], col)

    def wheel(self, x: float, dzc: float, yc: float, r: float, col: Color) -> None:
        """Circle in the side plane x = const."""
        self.poly([(x, yc + r * s, dzc + r * c) for c, s in _CIRCLE], col)

    def reorder(self, first: int, mirror: float | None) -> None:
        """Parts from ``first`` on: mirror their depth (dz -> mirror - dz) if asked, then order them far
        to near by mean depth (stable)."""
        counts = self.counts[first:]
        s0 = sum(self.counts[:first])
        pts = self.pts[s0:]
        if mirror is not None:
            pts = [(x, y, mirror - dz) for x, y, dz in pts]
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(int).tolist()
        depth = [sum(p[2] for p in pts[s : s + n]) / n for s, n in zip(starts, counts)]
        order = sorted(range(len(counts)), key=lambda i: -depth[i])
        self.pts[s0:] = [p for i in order for p in pts[starts[i] : starts[i] + counts[i]]]
        self.counts[first:] = [counts[i] for i in order]
        self.cols[first:] = [self.cols[first + i] for i in order]
        self.solid[first:] = [self.solid[first + i] for i in order]
        where = {first + i: first + j for j, i in enumerate(order)}
        self.lamps = [(where.get(i, i), rad) for i, rad in self.lamps]

    def ring(self, x: float, dzc: float, yc: float, r: float, thick: float, col: Color) -> None:
        """Annulus in the side plane x = const (one contour: outer circle, slit, inner circle back)."""
        outer = [(x, yc + r * s, dzc + r * c) for c, s in _CIRCLE + _CIRCLE[:1]]
        ri = r - thick
        self.poly(outer + [(x, yc + ri * s, dzc + ri * c) for c, s in (_CIRCLE + _CIRCLE[:1])[::-1]], col)

    def plate(self, xc: float, yc: float, dz: float, kind: int, px: float, w: float = 0.44, h: float = 0.14) -> None:
        """Chinese number plate: 0 blue (white characters), 1 yellow, 2 green (dark characters)."""
        bg, fg = [((150, 70, 20), (235, 235, 235)), ((20, 185, 230), (25, 25, 25)), ((110, 200, 120), (25, 25, 25))][kind]
        bg, fg = _scale(bg, self.dim), _scale(fg, self.dim)
        self.face(xc - w / 2, xc + w / 2, yc - h / 2, yc + h / 2, dz, bg)
        if w * px > 14:  # seven characters
            step = w / 8.2
            for i in range(7):
                x = xc - w / 2 + step * (0.7 + i + (0.3 if i > 1 else 0))
                self.face(x - step * 0.3, x + step * 0.3, yc - h * 0.3, yc + h * 0.3, dz - 0.002, fg)


def _gains(sun: tuple[float, float] | None) -> dict[str, float]:
    """Brightness of the faces: near (towards the camera), left, right, top."""
    normals = {"near": (0.0, 0.0, -1.0), "left": (-1.0, 0.0, 0.0), "right": (1.0, 0.0, 0.0), "top": (0.0, 1.0, 0.0)}
    if sun is None:
        return {"near": 0.86, "left": 0.8, "right": 0.8, "top": 1.0}
    az, el = float(sun[0]), float(sun[1])
    s = (math.cos(el) * math.sin(az), math.sin(el), math.cos(el) * math.cos(az))
    return {k: min(1.22, 0.55 + 0.15 * max(n[1], 0.0) + 0.6 * max(0.0, n[0] * s[0] + n[1] * s[1] + n[2] * s[2]))
            for k, n in normals.items()}


class _Style:
    """Per-vehicle colours at the current light."""

    def __init__(self, v: Vehicle, night: bool, sun: tuple[float, float] | None) -> None:
        g = _gains(sun)
        k = 0.42 if night else 1.0
        base = _scale(v.color, k)
        self.near, self.top = _scale(base, g["near"]), _scale(base, g["top"])
        self.sides = {-1: _scale(base, g["left"]), 1: _scale(base, g["right"])}
        self.gain = {-1: g["left"], 1: g["right"], 0: g["near"]}
        self.night = night
        self.glass = (8.0, 8.0, 10.0) if night else (40.0, 37.0, 35.0)
        self.sky = (10.0, 10.0, 12.0) if night else (95.0, 86.0, 80.0)  # reflection at the top of windows
        self.tail = (50.0, 45.0, 255.0) if night else (38.0, 32.0, 150.0)
        self.head = (250.0, 252.0, 255.0) if night else (175.0, 172.0, 168.0)
        self.k = k


def _tyre_pair(P: _Parts, hw: float, y1: float, dz: float, inset: float = 0.08, width: float = 0.22) -> None:
    for s in (-1, 1):
        P.face(s * (hw - inset - width), s * (hw - inset), 0.0, y1, dz, TYRE)


def _car(P: _Parts, v: Vehicle, r: random.Random, S: _Style, sides: list[int], px: float) -> None:
    w, h, L = v.width, v.height, v.length
    hw = w / 2
    if v.kind == "car":
        hatch = r.random() < 0.35
        hs = h * r.uniform(0.6, 0.66)
        rear = (0.06, r.uniform(0.35, 0.5)) if hatch else (r.uniform(0.4, 0.65), r.uniform(0.55, 0.8))
        front, yb, top_in = (r.uniform(0.95, 1.25), r.uniform(0.7, 0.9)), r.uniform(0.2, 0.28), r.uniform(0.2, 0.27)
    elif v.kind == "suv":
        hs = h * r.uniform(0.55, 0.6)
        rear, front = (0.03, r.uniform(0.2, 0.35)), (r.uniform(0.9, 1.1), r.uniform(0.6, 0.8))
        yb, top_in = r.uniform(0.3, 0.4), r.uniform(0.14, 0.2)
    else:  # van / MPV
        hs = h * r.uniform(0.44, 0.52)
        rear, front = (0.0, r.uniform(0.05, 0.15)), (r.uniform(0.4, 0.9), r.uniform(0.5, 0.8))
        yb, top_in = r.uniform(0.22, 0.3), r.uniform(0.06, 0.12)
    near, far = (rear, front) if v.facing == 1 else (front, rear)
    r0, r1 = near[0] + near[1], L - far[0] - far[1]
    hb, ht = hw - 0.04, hw - top_in

    def slope(t: float, inset: float) -> tuple[float, float, float]:  # on the near slope (rear window)
        return hb + t * (ht - hb) - inset, hs + t * (h - hs), near[0] + t * near[1]

    P.top(hw, hs, 0.0, L, S.top)
    P.top(ht, h, r0, r1, _scale(S.top, 1.03))
    for s in sides:
        col = S.sides[s]
        P.side(s * (hw - 0.12), [(0.3, 0.0), (L - 0.3, 0.0), (L - 0.3, yb + 0.05), (0.3, yb + 0.05)], UNDER)
        P.side(s * hw, [(0.0, yb + 0.05), (L, yb + 0.05), (L, hs), (0.0, hs)], col, True)
        P.side(s * hw, [(0.5, yb + 0.03), (L - 0.5, yb + 0.03), (L - 0.5, yb + 0.12), (0.5, yb + 0.12)], _scale(col, 0.6))
        for dz in (0.75 if near is rear else 0.9, L - 0.9 if near is rear else L - 0.75):
            P.wheel(s * hw, dz, 0.33, 0.38, UNDER)
            P.wheel(s * (hw + 0.01), dz, 0.32, 0.31, TYRE)
            P.wheel(s * (hw + 0.02), dz, 0.32, 0.18, _scale((150, 150, 155), S.k * 0.9))
        P.poly([(s * hb, hs, near[0]), (s * ht, h, r0), (s * ht, h, r1), (s * hb, hs, L - far[0])], _scale(col, 0.95), True)
        e = 0.06 / (h - hs)
        xa, xb = s * (hb + e * (ht - hb) - 0.005), s * (ht - e * (ht - hb) - 0.005)
        mid = 0.5 * (near[0] + L - far[0])
        P.poly([(xa, hs + 0.06, near[0] + 0.18), (xb, h - 0.06, r0 + 0.08), (xb, h - 0.06, r1 - 0.05),
                (xa, hs + 0.06, L - far[0] - 0.25)], S.glass)
        P.poly([(xa, hs + 0.05, mid - 0.05), (xb, h - 0.05, mid - 0.05), (xb, h - 0.05, mid + 0.05), (xa, hs + 0.05, mid + 0.05)], PLASTIC)
        if px * 0.02 > 0.5:
            P.side(s * (hw + 0.003), [(mid - 0.01, yb + 0.15), (mid + 0.01, yb + 0.15), (mid + 0.01, hs - 0.03), (mid - 0.01, hs - 0.03)], _scale(col, 0.7))
        P.side(s * (hw + 0.003), [(0.0, hs - 0.2), (0.12, hs - 0.2), (0.12, hs - 0.06), (0.0, hs - 0.06)], S.tail if v.facing == 1 else S.head)
    mirror = L - far[0] - 0.1 if v.facing == 1 else near[0] + 0.1
    mcol = PLASTIC if r.random() < 0.4 else S.near
    for s in (-1, 1):
        P.face(s * (hw - 0.02), s * (hw + 0.17), hs + 0.06, hs + 0.2, mirror, mcol)
    # near end
    P.face(-(hw - 0.28), hw - 0.28, 0.0, yb + 0.04, 0.12, UNDER)
    _tyre_pair(P, hw, yb + 0.08, 0.12)
    c = min(0.09, 0.25 * (h - hs))
    xc, yc, zc = slope(1 - c / (h - hs), 0.0)
    P.poly([(-hb, hs, near[0]), (hb, hs, near[0]), (xc, yc, zc), (ht - c, h, r0), (c - ht, h, r0), (-xc, yc, zc)],
           _scale(S.near, 0.97), True)
    pil = 0.07 if v.facing == -1 else r.uniform(0.08, 0.16)
    a, b, c = slope(0.1, pil), slope(0.55, pil), slope(0.92, pil + 0.02)
    P.poly([(-a[0], a[1], a[2]), (a[0], a[1], a[2]), (b[0], b[1], b[2]), (-b[0], b[1], b[2])], S.glass)
    P.poly([(-b[0], b[1], b[2]), (b[0], b[1], b[2]), (c[0], c[1], c[2]), (-c[0], c[1], c[2])], S.sky)
    corner = min(0.1, 0.4 * (hs - yb))
    P.poly([(-hw, yb, 0.0), (hw, yb, 0.0), (hw, hs - corner, 0.0), (hw - corner, hs, 0.0), (-hw + corner, hs, 0.0),
            (-hw, hs - corner, 0.0)], S.near, True)
    bh = r.uniform(0.22, 0.3)
    P.face(-hw - 0.01, hw + 0.01, yb, yb + bh, -0.03, _scale(S.near, 0.9), True)
    P.face(-hw + 0.15, hw - 0.15, yb, yb + 0.06, -0.04, PLASTIC)
    plate = 0 if r.random() < 0.85 else 2
    if v.facing == 1:
        tw, th = r.uniform(0.28, 0.45), r.uniform(0.12, 0.2)
        ty = hs - 0.05 - (0.25 if v.kind == "van" else 0.0)
        if v.kind == "van":  # tall narrow lamps
            tw, th = r.uniform(0.13, 0.22), r.uniform(0.3, 0.45)
        for s in (-1, 1):
            P.lamp(s * hw, s * (hw - tw), ty - th, ty, -0.01, S.tail, 0.0 if v.kind == "van" else r.uniform(0.0, 0.6) * tw)
        if r.random() < 0.3:
            P.face(-(hw - tw), hw - tw, ty - 0.06, ty - 0.03, -0.01, _scale(S.tail, 0.75))
        if v.kind != "van" and r.random() < 0.5 and not (near[0] < 0.1):
            P.plate(0.0, hs - 0.3, -0.015, plate, px)
        else:
            P.plate(0.0, yb + bh * 0.55, -0.04, plate, px)
        if px * 0.03 > 0.6:
            hb3 = slope(0.94, 0.0)
            P.face(-0.18, 0.18, hb3[1] - 0.03, hb3[1], hb3[2] - 0.01, _scale(S.tail, 0.8))
    else:
        gw, gh = hw * r.uniform(0.3, 0.45), r.uniform(0.1, 0.2)
        P.face(-gw, gw, hs - 0.08 - gh, hs - 0.08, -0.01, (30.0, 30.0, 33.0))
        P.face(-gw * 1.2, gw * 1.2, yb + 0.05, yb + 0.05 + gh * 0.6, -0.04, (30.0, 30.0, 33.0))
        if r.random() < 0.5:
            P.face(-gw, gw, hs - 0.08 - gh * 0.5, hs - 0.05 - gh * 0.5, -0.015, _scale((170, 170, 175), S.k))
        for s in (-1, 1):
            P.lamp(s * (hw - 0.03), s * (hw - 0.03 - r.uniform(0.3, 0.42)), hs - 0.17, hs - 0.05, -0.01, S.head, 0.12)
        P.plate(0.0, yb + bh * 0.5, -0.04, plate, px)


def _bus(P: _Parts, v: Vehicle, r: random.Random, S: _Style, sides: list[int], px: float) -> None:
    w, h, L = v.width, v.height, v.length
    hw = w / 2
    livery = _scale([(60, 140, 40), (160, 90, 20), (40, 50, 180), (30, 140, 230), (120, 120, 120)][r.randrange(5)], S.k)
    wy0, wy1 = r.uniform(1.05, 1.25), h - r.uniform(0.3, 0.45)
    for s in sides:
        col = S.sides[s]
        P.side(s * (hw - 0.1), [(0.5, 0.0), (L - 0.5, 0.0), (L - 0.5, 0.4), (0.5, 0.4)], UNDER)
        P.side(s * hw, [(0.0, 0.3), (L, 0.3), (L, h), (0.0, h)], col, True)
        P.side(s * hw, [(0.0, 0.35), (L, 0.35), (L, wy0 - 0.15), (0.0, wy0 - 0.15)], _scale(livery, S.gain[s]))
        P.side(s * (hw + 0.005), [(0.25, wy0), (L - 0.25, wy0), (L - 0.25, wy1), (0.25, wy1)], S.glass)
        n = int((L - 0.5) / 1.3)
        for i in range(1, n):
            dz = 0.25 + i * (L - 0.5) / n
            P.side(s * (hw + 0.01), [(dz - 0.05, wy0), (dz + 0.05, wy0), (dz + 0.05, wy1), (dz - 0.05, wy1)], PLASTIC)
        for dz in (2.6, L - 2.4) if v.facing == 1 else (2.4, L - 2.6):
            P.wheel(s * hw, dz, 0.5, 0.6, UNDER)
            P.wheel(s * (hw + 0.01), dz, 0.5, 0.5, TYRE)
            P.wheel(s * (hw + 0.02), dz, 0.5, 0.27, _scale((140, 140, 145), S.k))
    P.face(-(hw - 0.35), hw - 0.35, 0.0, 0.4, 0.2, UNDER)
    _tyre_pair(P, hw, 0.45, 0.2, 0.1, 0.3)
    P.face(-hw, hw, 0.3, h, 0.0, S.near, True)
    P.face(-hw, hw, 0.3, 0.65, -0.04, _scale(S.near, 0.85), True)
    if v.facing == 1:
        if r.random() < 0.6:
            P.face(-hw + 0.12, hw - 0.12, h * 0.58, h - 0.2, -0.01, S.glass)
            P.face(-hw + 0.12, hw - 0.12, h - 0.6, h - 0.2, -0.012, S.sky)
        else:  # advertisement panel
            P.face(-hw + 0.1, hw - 0.1, h * 0.52, h - 0.15, -0.01, _scale(livery, S.gain[0]))
            P.face(-hw + 0.3, hw - 0.6, h * 0.62, h - 0.6, -0.012, _scale((230, 230, 235), S.k))
        P.face(-hw + 0.04, hw - 0.04, 0.7, 1.0, -0.01, _scale(livery, S.gain[0]))
        P.face(-0.7, 0.7, 1.1, 1.6, -0.01, (40.0, 40.0, 42.0))
        for s in (-1, 1):
            P.lamp(s * (hw - 0.04), s * (hw - 0.25), 0.75, 1.15, -0.02, S.tail)
            P.face(s * (hw - 0.04), s * (hw - 0.25), 1.15, 1.3, -0.02, _scale((30, 140, 230), 0.6 + 0.4 * S.k))
        P.plate(0.0, 0.5, -0.05, 1, px)
    else:
        P.face(-hw + 0.08, hw - 0.08, 1.0, h - 0.4, -0.01, S.glass)
        P.face(-hw + 0.08, hw - 0.08, h * 0.6, h - 0.4, -0.012, S.sky)
        P.face(-hw + 0.2, hw - 0.2, h - 0.35, h - 0.1, -0.01, (20.0, 20.0, 22.0))
        P.face(-hw + 0.5, hw - 0.7, h - 0.28, h - 0.17, -0.012, (20.0, 120.0, 230.0))
        P.face(-hw + 0.05, hw - 0.05, 0.7, 0.95, -0.01, _scale(livery, S.gain[0]))
        for s in (-1, 1):
            P.lamp(s * (hw - 0.06), s * (hw - 0.4), 0.55, 0.72, -0.05, S.head)
        P.plate(0.0, 0.48, -0.05, 1, px)


def _truck(P: _Parts, v: Vehicle, r: random.Random, S: _Style, sides: list[int], px: float) -> None:
    w, h, L = v.width, v.height, v.length
    hw = w / 2
    light = h < 2.9  # light truck: flatbed with a low tailgate, the cab seen above the load
    cab_h = h if light else min(h, r.uniform(2.7, 3.1))
    cab_l = 2.0 if light else 2.3
    cab_col = [(160, 100, 30), (40, 50, 170), (200, 200, 205), (30, 160, 220)][r.randrange(4)] if not light or r.random() < 0.5 else v.color
    cab = _scale(cab_col, S.k)
    floor = r.uniform(0.95, 1.15)
    cab0, cab1 = (L - cab_l, L) if v.facing == 1 else (0.0, cab_l)
    box0, box1 = (0.0, L - cab_l - 0.2) if v.facing == 1 else (cab_l + 0.2, L)
    box_top = floor + r.uniform(0.45, 0.7) if light else h
    axles = (1.0, 2.3, L - 1.3) if L > 8 and v.facing == 1 else (1.1, L - 1.2) if v.facing == 1 else (1.2, L - 2.3, L - 1.0)
    if light and v.facing == 1:  # behind the sides: the cab's back wall above the bed, the load
        P.face(-hw + 0.05, hw - 0.05, floor, cab_h, cab0, _scale(cab, S.gain[0]), True)
        P.face(-0.5, 0.5, cab_h - 0.75, cab_h - 0.35, cab0 - 0.01, S.glass)
        P.top(hw, box_top, 0.0, box1, _scale(S.top, 0.8))
        if r.random() < 0.6:  # tarpaulin-covered load
            tarp = _scale([(70, 110, 50), (140, 90, 40), (110, 110, 110)][r.randrange(3)], S.k)
            lh = r.uniform(0.4, min(1.3, cab_h - box_top + 0.2))
            P.top(hw - 0.1, box_top + lh, 0.4, box1 - 0.3, _scale(tarp, 1.1))
            P.face(-hw + 0.1, hw - 0.1, box_top, box_top + lh, 0.4, _scale(tarp, 0.85 * S.gain[0]), True)
    for s in sides:
        col = S.sides[s]
        P.side(s * (hw - 0.2), [(0.5, 0.35), (L - 0.5, 0.35), (L - 0.5, floor), (0.5, floor)], UNDER)
        P.side(s * hw, [(box0, floor), (box1, floor), (box1, box_top), (box0, box_top)], col, True)
        P.side(s * (hw + 0.005), [(box0, floor), (box1, floor), (box1, floor + 0.08), (box0, floor + 0.08)], _scale(col, 0.6))
        P.side(s * hw, [(cab0, 0.5), (cab1, 0.5), (cab1, cab_h), (cab0, cab_h)], _scale(cab, S.gain[s]), True)
        P.side(s * (hw + 0.005), [(cab0 + 0.25, cab_h - 0.95), (cab1 - 0.5, cab_h - 0.95), (cab1 - 0.5, cab_h - 0.2),
                                  (cab0 + 0.25, cab_h - 0.2)], S.glass)
        for dz in axles:
            P.wheel(s * hw, dz, 0.5, 0.56, UNDER)
            P.wheel(s * (hw + 0.01), dz, 0.5, 0.5, TYRE)
            P.wheel(s * (hw + 0.02), dz, 0.5, 0.22, _scale((120, 120, 125), S.k))
    if v.facing == 1:
        P.face(-(hw - 0.4), hw - 0.4, 0.3, floor, 0.8, UNDER)
        _tyre_pair(P, hw, 1.0, 1.0, 0.1, 0.5)
        for s in (-1, 1):
            P.face(s * (hw - 0.05), s * (hw - 0.5), 0.15, 0.7, 0.6, (12.0, 12.0, 12.0))
        P.face(-hw + 0.2, hw - 0.2, 0.45, 0.58, 0.0, _scale((60, 60, 200) if r.random() < 0.4 else (60, 60, 62), S.k))
        P.face(-hw, hw, floor, box_top, 0.0, S.near, True)
        P.face(-hw, hw, floor, floor + 0.12, -0.01, _scale(S.near, 0.65))
        n = 8
        for i in range(n):  # red / white reflective tape
            x = -hw + 0.1 + i * (w - 0.2) / n
            P.face(x, x + (w - 0.2) / n, floor + 0.02, floor + 0.09, -0.02, (40.0, 40.0, 200.0) if i % 2 else (220.0, 220.0, 220.0))
        if not light:
            P.face(-0.015, 0.015, floor + 0.1, h - 0.08, -0.02, _scale(S.near, 0.55))
            for x in (-0.55, -0.3, 0.3, 0.55):
                P.face(x - 0.015, x + 0.015, floor + 0.15, h - 0.15, -0.02, _scale(S.near, 0.6))
            if r.random() < 0.7:  # enlarged number
                P.plate(0.0, floor + r.uniform(0.5, 0.9), -0.03, 1, px, 1.3, 0.5)
        for s in (-1, 1):
            P.lamp(s * (hw - 0.05), s * (hw - 0.3), 0.62, 0.76, -0.03, S.tail)
        P.plate(0.0, floor - 0.12 if light else 0.66, -0.03, 1, px)
    else:
        if h > cab_h + 0.1:
            P.face(-hw, hw, cab_h - 0.2, h, box0, S.near, True)
        P.face(-(hw - 0.35), hw - 0.35, 0.0, 0.5, 0.3, UNDER)
        _tyre_pair(P, hw, 0.7, 1.2, 0.08, 0.3)
        P.face(-hw, hw, 0.45, cab_h, 0.0, _scale(cab, S.gain[0]), True)
        P.face(-hw + 0.1, hw - 0.1, cab_h - 1.05, cab_h - 0.2, -0.01, S.glass)
        P.face(-hw + 0.1, hw - 0.1, cab_h - 0.55, cab_h - 0.2, -0.012, S.sky)
        P.face(-0.6, 0.6, 0.95, cab_h - 1.25, -0.01, (35.0, 35.0, 38.0))
        P.face(-hw, hw, 0.4, 0.75, -0.03, _scale((90, 90, 95), 0.5 + 0.5 * S.k), True)
        for s in (-1, 1):
            P.lamp(s * (hw - 0.05), s * (hw - 0.4), 0.78, 0.95, -0.02, S.head)
        P.plate(0.0, 0.58, -0.04, 1, px)


def _two_wheeler(P: _Parts, v: Vehicle, r: random.Random, S: _Style, sides: list[int], px: float) -> None:
    """A motorbike, scooter or bicycle with its rider, built with dz from its rear; when oncoming the
    model is mirrored. Its parts are then ordered far to near (they interleave in depth)."""
    first = len(P.cols)
    k = v.height / 1.66  # rider's size
    L = v.length
    bicycle = v.kind == "bicycle"
    scooter = not bicycle and r.random() < 0.55
    front = v.facing == -1
    jacket = _scale(v.color, S.k * (0.85 if front else 1.0))
    trousers = _scale([(30, 30, 32), (70, 50, 40), (80, 80, 85)][r.randrange(3)], S.k)
    helmet = None if bicycle and r.random() < 0.7 else _scale(
        [(235, 235, 235), (30, 30, 180), (30, 200, 230), (160, 90, 30), (25, 25, 25)][r.randrange(5)], S.k)
    bike = _scale([(25, 25, 28), (200, 200, 205), (40, 40, 160), (150, 100, 40), (120, 120, 125)][r.randrange(5)], S.k)
    skin = _scale((110, 140, 185), S.k)
    tw = 0.035 if bicycle else 0.06
    # profile in the plane x = 0 (seen when off to a side; edge-on from straight behind)
    if bicycle:
        for dz in (0.34, L - 0.34):
            P.ring(0.0, dz, 0.34, 0.34, 0.05, TYRE)
        for a, b in (((0.34, 0.34), (0.75, 0.95)), ((0.75, 0.95), (L - 0.45, 0.95)), ((0.78, 0.4), (L - 0.45, 0.9)),
                     ((0.34, 0.34), (0.78, 0.4)), ((L - 0.45, 0.95), (L - 0.34, 0.34))):
            P.side(0.0, [(a[0], a[1] - 0.02), (b[0], b[1] - 0.02), (b[0], b[1] + 0.02), (a[0], a[1] + 0.02)], bike)
    else:
        for dz in (0.32, L - 0.32):
            P.wheel(tw, dz, 0.3, 0.3, TYRE)
            P.wheel(0.0, dz, 0.3, 0.13, _scale((110, 110, 115), S.k))
        if scooter:  # floorboard and leg shield
            prof = [(0.0, 0.6), (0.12, 0.82), (0.95, 0.82), (1.05, 0.42), (L - 0.6, 0.38), (L - 0.5, 1.0),
                    (L - 0.38, 1.05), (L - 0.32, 0.6), (L - 0.45, 0.32), (0.3, 0.35)]
            P.face(-0.2, 0.2, 0.38, 1.0, L - 0.5, bike)
        else:
            prof = [(0.02, 0.7), (0.2, 0.88), (0.9, 0.86), (L - 0.55, 0.98), (L - 0.4, 0.95), (L - 0.32, 0.5),
                    (L - 0.7, 0.3), (0.6, 0.3), (0.3, 0.5)]
        P.side(0.0, prof, bike)
    P.face(-tw, tw, 0.0, 0.6, L - 0.33, TYRE)
    P.face(-tw, tw, 0.0, 0.62, 0.3, TYRE)
    P.face(-0.33 * k, 0.33 * k, 1.0 * k, 1.05 * k, 1.25, PLASTIC)  # handlebar
    for s in (-1, 1):  # arms, legs, feet
        P.poly([(s * 0.17 * k, 1.38 * k, 0.85), (s * 0.25 * k, 1.36 * k, 0.85), (s * 0.34 * k, 1.06 * k, 1.1),
                (s * 0.26 * k, 1.04 * k, 1.1)], _scale(jacket, 0.85))
        P.poly([(s * 0.05 * k, 0.9 * k, 0.7), (s * 0.2 * k, 0.9 * k, 0.7), (s * 0.22 * k, 0.35 * k, 0.9),
                (s * 0.11 * k, 0.35 * k, 0.9)], trousers)
        P.face(s * 0.1 * k, s * 0.24 * k, 0.28 * k, 0.38 * k, 0.9, (20.0, 20.0, 22.0))
    if bicycle:
        P.face(-0.04, 0.04, 0.62, 0.68, 0.05, (40.0, 40.0, 170.0))
        P.face(-0.04, 0.04, 0.85, 0.92, L + 0.02, (200.0, 200.0, 200.0))
    else:
        bw = 0.2 if scooter else 0.15
        P.poly([(-bw, 0.35, 0.2), (bw, 0.35, 0.2), (bw * 0.8, 0.85 * k, 0.3), (-bw * 0.8, 0.85 * k, 0.3)], bike)
        if r.random() < 0.3:  # top box
            P.face(-0.2, 0.2, 0.82 * k, 1.12 * k, 0.05, _scale([(30, 30, 30), (210, 210, 210), (40, 40, 170)][r.randrange(3)], S.k), True)
        (P.lamp if not front else P.face)(-0.07, 0.07, 0.7 * k, 0.78 * k, 0.04, S.tail)
        P.plate(0.0, 0.55, 0.03, r.randrange(2), px, 0.22, 0.14)
        (P.lamp if front else P.face)(-0.09, 0.09, 0.88 * k, 1.0 * k, L + 0.02, S.head)
    P.poly([(-0.17 * k, 0.86 * k, 0.75), (0.17 * k, 0.86 * k, 0.75), (0.23 * k, 1.38 * k, 0.78), (-0.23 * k, 1.38 * k, 0.78)], jacket, True)
    P.face(-0.05 * k, 0.05 * k, 1.35 * k, 1.46 * k, 0.78, skin)
    hr = 0.14 * k if helmet else 0.11 * k
    P.disc(0.0, 1.66 * k - hr, 0.78, hr * 0.95, hr, helmet or skin)
    if not helmet:
        P.disc(0.0, 1.66 * k - hr * 0.72, 0.77, hr * 0.98, hr * 0.82, (30.0, 30.0, 35.0))
    elif front:
        P.face(-hr * 0.7, hr * 0.7, 1.66 * k - hr * 1.3, 1.66 * k - hr * 0.8, 0.92, (30.0, 30.0, 35.0))
    P.reorder(first, L if front else None)


_BUILDERS = {"car": _car, "suv": _car, "van": _car, "bus": _bus, "truck": _truck, "motorbike": _two_wheeler, "bicycle": _two_wheeler}
NEAREST = 3.0  # vehicles nearer than this (m) are not drawn


# ------------------------------------------------------------------------------------------------
# Projection and drawing
# ------------------------------------------------------------------------------------------------
def _visible_sides(road: Road, v: Vehicle) -> list[int]:
    """Side faces (-1 left, +1 right) that face the camera (at the origin)."""
    if v.kind in TWO_WHEELERS:
        return []
    z = np.array([v.distance, v.distance + v.length])
    out = []
    for s in (-1, 1):
        x0, x1 = road.lateral(v.lateral + s * v.width / 2, z)
        if s * (float(x0) * v.length - float(x1 - x0) * v.distance) < 0:
            out.append(s)
    return out


def _project(cam: Camera, road: Road, v: Vehicle, P: _Parts) -> np.ndarray:
    """(N, 2) image points of the parts' vertices."""
    p = np.asarray(P.pts, np.float64)
    z = v.distance + p[:, 2]
    x = road.lateral(v.lateral, z) + p[:, 0]
    return np.stack([cam.cx + cam.focal * x / z, cam.horizon + cam.focal * (cam.height - p[:, 1]) / z], 1)


def _model(cam: Camera, road: Road, v: Vehicle, night: bool, sun: tuple[float, float] | None) -> tuple[_Parts, np.ndarray]:
    r = random.Random(v.seed)
    P = _Parts(cam.height)
    P.dim = 0.55 if night else 1.0
    _BUILDERS.get(v.kind, _car)(P, v, r, _Style(v, night, sun), _visible_sides(road, v), cam.focal / v.distance)
    return P, _project(cam, road, v, P)


def _patch_box(uv: np.ndarray, shape: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    """Integer (x0, y0, x1, y1) around the points, clipped to the canvas; None when empty."""
    lo, hi = uv.min(0), uv.max(0)
    x0, y0 = max(int(math.floor(lo[0])) - 1, 0), max(int(math.floor(lo[1])) - 1, 0)
    x1, y1 = min(int(math.ceil(hi[0])) + 2, shape[1]), min(int(math.ceil(hi[1])) + 2, shape[0])
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _fill_parts(patch: np.ndarray, uv: np.ndarray, P: _Parts, origin: tuple[int, int], colours: bool) -> None:
    """Fill every part into the patch: its colour (+ opaque alpha) or 255 (a silhouette)."""
    counts = np.asarray(P.counts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    grow = np.repeat(np.asarray(P.solid, np.float64), counts)
    centre = np.repeat(np.add.reduceat(uv, starts, 0) / counts[:, None], counts, 0)
    d = uv - centre
    d *= (0.5 * grow / (np.hypot(d[:, 0], d[:, 1]) + 1e-6))[:, None]
    pts = np.rint(np.clip(uv + d - origin, -1e5, 1e5) * ONE).astype(np.int32)
    for i, (s, n) in enumerate(zip(starts.tolist(), P.counts)):
        c = P.cols[i]
        cv2.fillPoly(patch, [pts[s : s + n]], (c[0], c[1], c[2], 255.0) if colours else 255, cv2.LINE_AA, SHIFT)


def draw_vehicle(img: np.ndarray, cam: Camera, road: Road, v: Vehicle, night: bool,
                 sun: tuple[float, float] | None, lights: list[tuple[float, float, float]]) -> None:
    """Draw a vehicle onto img ((H, W, 3) float32 BGR 0..255, the canvas of ``cam``); at night,
    append (u, v, radius px) of each lit lamp (tail lights, or headlights when oncoming) to ``lights``."""
    if v.distance < NEAREST:
        return
    P, uv = _model(cam, road, v, night, sun)
    H, W = img.shape[:2]
    if night:
        for i, rad in P.lamps:
            s = sum(P.counts[:i])
            u, y = uv[s : s + P.counts[i]].mean(0)
            rp = max(1.0, cam.focal * rad / v.distance)
            if -rp <= u < W + rp and -rp <= y < H + rp:
                lights.append((float(u), float(y), float(rp)))
    box = _patch_box(uv, img.shape)
    if box is None:
        return
    x0, y0, x1, y1 = box
    ph, pw = y1 - y0, x1 - x0
    patch = np.zeros((ph, pw, 4), np.uint8)
    _fill_parts(patch, uv, P, (x0, y0), True)
    # shading: darker towards the underside, grain, dirt towards the bottom
    r = random.Random(v.seed ^ 0x5F3759DF)
    top = cam.horizon + cam.focal * (cam.height - v.height) / v.distance
    bottom = cam.horizon + cam.focal * cam.height / v.distance
    t = np.clip((np.arange(y0, y1, dtype=np.float32) - np.float32(top)) / np.float32(max(bottom - top, 1.0)), 0, 1)
    shade = np.float32(1.04) - np.float32(0.2) * t * t
    grain, blotch = bank()
    gh, gw = grain.shape[:2]
    if ph <= gh and pw <= gw:
        gy, gx = r.randrange(gh - ph + 1), r.randrange(gw - pw + 1)
        f = grain[gy : gy + ph, gx : gx + pw, 0] * np.float32(0.015 if night else 0.022) + shade[:, None]
        dirt = r.uniform(0.0, 0.35) if r.random() < 0.6 else 0.0
        if dirt > 0:
            wt = np.clip((t - 0.35) * np.float32(1.6), 0, 1) * np.float32(dirt)
            f -= np.maximum(blotch[gy : gy + ph, gx : gx + pw], 0) * wt[:, None]
    else:
        f = np.repeat(shade[:, None], pw, 1)
    rgb = patch[:, :, :3].astype(np.float32)
    rgb *= f[:, :, None]
    alpha = patch[:, :, 3].astype(np.float32) * np.float32(1 / 255)
    roi = img[y0:y1, x0:x1]
    roi *= (1 - alpha)[:, :, None]
    roi += rgb


def _shadow_hull(v: Vehicle, sun: tuple[float, float]) -> np.ndarray:
    """(n, 2) ground polygon (x, dz) in the vehicle frame of the shadow cast by a simplified body."""
    az, el = float(sun[0]), float(np.clip(sun[1], 0.06, np.pi / 2))
    ln = min(1.0 / math.tan(el), 12.0)
    dx, dzs = -math.sin(az) * ln, -math.cos(az) * ln  # ground shift per metre of height
    hw, h, L = v.width / 2, v.height, v.length
    if v.kind in TWO_WHEELERS:
        pts = [(x, y, dz) for x in (-0.2, 0.2) for dz in (0.2, L - 0.2) for y in (0.0, 0.9 * h)]
        pts += [(x, h, dz) for x in (-0.12, 0.12) for dz in (0.6, 0.95)]
    else:
        hs = {"car": 0.62, "suv": 0.58, "van": 0.5}.get(v.kind, 1.0) * h
        pts = [(x, y, dz) for x in (-hw, hw) for dz in (0.0, L) for y in (0.0, hs)]
        if hs < h:
            pts += [(x, h, dz) for x in (-0.8 * hw, 0.8 * hw) for dz in (0.25 * L, 0.75 * L)]
    g = np.array([(x + y * dx, dz + y * dzs) for x, y, dz in pts], np.float32)
    return cv2.convexHull(g)[:, 0].astype(np.float64)


def _clip_near(poly: np.ndarray, zmin: float) -> np.ndarray:
    """Clip a ground polygon ((n, 2) x, z) to z >= zmin."""
    out = []
    n = len(poly)
    for i in range(n):
        a, b = poly[i], poly[(i + 1) % n]
        if a[1] >= zmin:
            out.append(a)
        if (a[1] >= zmin) != (b[1] >= zmin):
            t = (zmin - a[1]) / (b[1] - a[1])
            out.append(a + t * (b - a))
    return np.array(out).reshape(-1, 2)


def draw_vehicle_shadow(mask: np.ndarray, cam: Camera, road: Road, v: Vehicle, sun: tuple[float, float] | None) -> None:
    """Into a uint8 (H, W) mask (255 = full shadow; combined by maximum): a contact shadow under the
    body and, with sun, the body's shadow cast along the sun direction. Pixels the vehicle itself
    covers are left out, so the mask may be applied after the vehicle is drawn."""
    if v.distance < NEAREST:
        return
    hw = 0.2 if v.kind in TWO_WHEELERS else v.width / 2 - 0.1
    polys = [np.array([(-hw, -0.2), (hw, -0.2), (hw, v.length + 0.1), (-hw, v.length + 0.1)])]
    if sun is not None:
        polys.append(_clip_near(_shadow_hull(v, sun), 0.5 - v.distance))
    ground = []
    for p in polys:
        if len(p) < 3:
            continue
        z = v.distance + p[:, 1]
        x = road.lateral(v.lateral, z) + p[:, 0]
        ground.append(np.stack([cam.cx + cam.focal * x / z, cam.horizon + cam.focal * cam.height / z], 1))
    P, uv = _model(cam, road, v, False, None)
    box = _patch_box(np.concatenate(ground + [uv]), mask.shape)
    if box is None:
        return
    x0, y0, x1, y1 = box
    shadow = np.zeros((y1 - y0, x1 - x0), np.uint8)
    for g in ground:
        pts = np.rint(np.clip(g - (x0, y0), -1e5, 1e5) * ONE).astype(np.int32)
        cv2.fillPoly(shadow, [pts], 255, cv2.LINE_AA, SHIFT)
    body = np.zeros_like(shadow)
    _fill_parts(body, uv, P, (x0, y0), False)
    cv2.subtract(shadow, body, dst=shadow)
    roi = mask[y0:y1, x0:x1]
    np.maximum(roi, shadow, out=roi)
