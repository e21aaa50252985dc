"""Everything beside and above the road: sky and skyline, off-road ground, 3-D roadside objects
and their cast shadows.

A :class:`Roadside` is sampled once per scene (:func:`sample_roadside`) in road coordinates:
lateral offsets are metres from the ego-lane centre (like ``road_left``/``road_right``), distances
are metres ahead, heights are metres above the road plane. The draw functions project it through
the pinhole :class:`~training.data.synthetic.geometry.Camera` with

    u = cx + focal X / Z,    v = horizon + focal (height - Y) / Z,    X = road.lateral(offset, Z),

so every element follows the road's curve. Drawing is deterministic for a given ``Roadside``
(its ``seed`` picks the texture windows). Far scenery (above the horizon) uses angles instead:
``u = cx + focal a``, ``v = horizon - focal e``.

Things a lane detector confuses with lanes are the point of this module: guardrail beams, kerb
edges, fence rails, hedge and wall bases, building plinths, pole shadows across the road,
far-carriageway paint behind a median. Colours and textures are domain-randomized per scene.

Extras beyond the four draw functions: ``emissive`` masks (lights to keep bright at night),
:func:`street_lights` (lamp positions for glow halos) and :meth:`Roadside.advanced` (video: the
same roadside after driving on; patterns and hashed details stay attached to the ground).

Cost: about 10 ms per scene at 820x295 for sampling and all four draw functions together (one
core, OpenCV single-threaded, measured on a busy machine).
"""
from __future__ import annotations

import colorsys
import threading
from dataclasses import dataclass, field, replace
from functools import lru_cache

import cv2
import numpy as np

from training.data.synthetic.geometry import Camera, Road
from training.data.synthetic.textures import bank, window

Color = tuple[float, float, float]
"""BGR in 0..255."""

SHIFT = 4
ONE = 1 << SHIFT
Z_NEAR = 1.0  # m: nearest distance anything is drawn at (long elements reach the bottom row)
Z_NEAR_OBJECT = 2.0  # m: point objects nearer than this are skipped


# ------------------------------------------------------------------------------------------------
# Scene description
# ------------------------------------------------------------------------------------------------
@dataclass
class Band:
    """A ground band beside the road between signed lateral offsets ``inner`` (road side) and
    ``outer``: flat ``colour`` mixed with ``colour2`` patches by low-frequency noise (``mix`` 0..1),
    fine ``grain`` (0..1). ``tile`` > 0 draws paving joints ``tile`` metres apart; ``lines`` are
    lateral offsets of painted lines (a far carriageway), dashed or solid."""

    inner: float
    outer: float
    kind: str  # grass, dirt, gravel, paving, tarmac, cycle, field
    colour: Color
    colour2: Color
    mix: float = 0.5
    grain: float = 0.3
    tile: float = 0.0
    joint: Color = (0.0, 0.0, 0.0)
    lines: tuple[float, ...] = ()
    dashed: bool = True
    line_colour: Color = (215.0, 220.0, 222.0)


@dataclass
class Linear:
    """An element running along the road between distances ``z0`` and ``z1``: its road-facing face
    at signed lateral ``offset``, ``width`` metres thick away from the road (side = sign).

    kinds: kerb, guardrail, jersey (concrete barrier), railing (pedestrian fence with bars),
    mesh (wire-mesh fence), wall, barrier (noise barrier), hedge, canopy (a forest edge / tree row)."""

    kind: str
    side: int
    offset: float
    z0: float
    z1: float
    height: float
    colour: Color
    colour2: Color
    base: float = 0.0
    width: float = 0.2
    spacing: float = 3.0
    alpha: float = 1.0
    texture: float = 0.05
    rough: float = 0.0  # top-edge irregularity (m)
    phase: float = 0.0  # distance along the road of its pattern origin (posts, crowns); grows when advanced
    seed: int = 0  # for hashed irregularities (crown bumps)

    def footprint(self) -> tuple[float, float]:
        a, b = self.offset, self.offset + self.side * self.width
        return min(a, b), max(a, b)


@dataclass
class Tree:
    """A tree (or a bush when ``trunk_height`` is 0): trunk at signed lateral ``offset``, distance
    ``z``; crown ``crown_width`` x ``crown_height`` m from ``crown_bottom`` up; ``sprite`` picks a
    crown shape; ``whitewash`` m of painted trunk base."""

    offset: float
    z: float
    trunk_height: float
    trunk_width: float
    crown_bottom: float
    crown_width: float
    crown_height: float
    sprite: int
    colour: Color
    trunk_colour: Color
    whitewash: float = 0.0
    wash_colour: Color = (205.0, 210.0, 212.0)
    branches: bool = False

    def footprint(self) -> tuple[float, float]:
        half = self.trunk_width / 2 if self.crown_bottom >= 2.5 else max(self.crown_width / 2, self.trunk_width / 2)
        return self.offset - half, self.offset + half


@dataclass
class Pole:
    """A street light (arm over the road, lamp), a utility pole (cross-arm, wires to the next one)
    or a plain pole. ``arm`` is the signed lateral reach of the lamp arm (m)."""

    offset: float
    z: float
    height: float
    width: float
    colour: Color
    kind: str = "lamp"  # lamp, utility, plain
    arm: float = 0.0
    lamp: Color = (200.0, 230.0, 255.0)
    wire_to: int = -1  # index of the next utility pole carrying wires, or -1
    double: bool = False  # lamp arms on both sides (median lights)

    def footprint(self) -> tuple[float, float]:
        return self.offset - self.width / 2, self.offset + self.width / 2


@dataclass
class Sign:
    """A traffic sign: board ``board_width`` x ``board_height`` m with its bottom at ``bottom``,
    on one or two posts (``posts``) beside the road, or on a gantry over it (``span`` = signed
    lateral offsets of the two gantry legs, board centred at ``offset``)."""

    offset: float
    z: float
    bottom: float
    board_width: float
    board_height: float
    colour: Color
    border: Color
    shape: str = "rect"  # rect, circle, triangle
    posts: int = 1
    post_colour: Color = (150.0, 150.0, 150.0)
    span: tuple[float, float] | None = None

    def footprint(self) -> tuple[float, float]:
        if self.span is not None:
            return min(self.span) - 0.2, max(self.span) + 0.2  # the legs (checked separately)
        half = 0.35 * self.board_width + 0.05 if self.posts >= 2 else 0.05
        if self.bottom < 2.5:  # a low board counts too
            half = max(half, self.board_width / 2)
        return self.offset - half, self.offset + half


@dataclass
class Building:
    """A building beside the road: facade at signed lateral ``offset`` facing the road, from
    ``z0`` to ``z1``, ``depth`` m deep, ``height`` m tall; a windows grid; an optional shop sign band."""

    side: int
    offset: float
    z0: float
    z1: float
    depth: float
    height: float
    colour: Color
    window: Color
    floor_height: float = 3.0
    window_spacing: float = 3.0
    window_fill: float = 0.5  # window width / spacing
    window_height: float = 0.5  # window height / floor height
    shop: Color | None = None
    lit: float = 0.0  # fraction of lit windows (night)
    roof: Color = (90.0, 90.0, 90.0)
    end_shade: float = 0.8
    texture: float = 0.06
    seed: int = 0

    def footprint(self) -> tuple[float, float]:
        a, b = self.offset, self.offset + self.side * self.depth
        return min(a, b), max(a, b)


@dataclass
class Bridge:
    """An overpass crossing the road at distance ``z``: a deck ``depth`` m along the road,
    underside at ``clearance`` m, ``thickness`` m thick, with a parapet and piers at signed
    lateral offsets ``piers`` (outside the tarmac)."""

    z: float
    depth: float
    clearance: float
    thickness: float
    colour: Color
    piers: tuple[float, ...] = ()
    pier_width: float = 1.0
    parapet: float = 1.0
    parapet_colour: Color = (170.0, 170.0, 170.0)


@dataclass
class Skyline:
    """Far scenery in angles (tangent units: u = cx + f a, v = horizon - f e)."""

    clouds: float = 0.0  # cover 0..1
    cloud_colour: Color = (245.0, 245.0, 245.0)
    cloud_scale: float = 1.0
    hills: np.ndarray | None = None  # (N, 2) (a, e) profile
    hill_colour: Color = (110.0, 120.0, 100.0)
    haze: float = 0.4
    treeline: np.ndarray | None = None  # (N, 2) (a, e) profile
    treeline_colour: Color = (40.0, 70.0, 45.0)
    buildings: list[tuple[float, float, float, Color, Color]] = field(default_factory=list)  # a0, a1, e, colour, windows
    pylons: list[tuple[float, float]] = field(default_factory=list)  # a, e
    overpass: tuple[float, float, float, Color] | None = None  # e_bottom, e_top, a_half, colour
    lights: np.ndarray | None = None  # (N, 2) far lights at night


@dataclass
class Roadside:
    """Everything beside and above the road, sampled once per scene."""

    road_left: float
    road_right: float
    night: bool
    urban: float
    seed: int
    far_limit: float
    bands: list[Band] = field(default_factory=list)
    field_colour: Color = (60.0, 100.0, 80.0)
    linears: list[Linear] = field(default_factory=list)
    trees: list[Tree] = field(default_factory=list)
    poles: list[Pole] = field(default_factory=list)
    signs: list[Sign] = field(default_factory=list)
    buildings: list[Building] = field(default_factory=list)
    bridges: list[Bridge] = field(default_factory=list)
    skyline: Skyline = field(default_factory=Skyline)
    foliage_texture: float = 0.35
    travelled: float = 0.0  # metres driven since sampling (video): scrolls ground patterns
    gaps: list[tuple[float, float]] = field(default_factory=list)
    """Distance ranges (m) kept clear of roadside objects and their shadows, e.g. a crossing road:
    set by the renderer after sampling (``rs.gaps = [(z0, z1)]``)."""

    def footprints(self) -> list[tuple[str, float, float]]:
        """(kind, lo, hi): lateral extents (m) of everything standing on the ground (bridge decks
        and gantry beams span the road above it; their piers and legs are listed)."""
        out: list[tuple[str, float, float]] = []
        out += [(e.kind, *e.footprint()) for e in self.linears]
        out += [("tree", *t.footprint()) for t in self.trees]
        out += [("pole", *p.footprint()) for p in self.poles]
        for s in self.signs:
            if s.span is None:
                out.append(("sign", *s.footprint()))
            else:
                out += [("gantry", x - 0.2, x + 0.2) for x in s.span]
        out += [("building", *b.footprint()) for b in self.buildings]
        for b in self.bridges:
            out += [("pier", p - b.pier_width / 2, p + b.pier_width / 2) for p in b.piers]
        return out

    def advanced(self, distance: float) -> "Roadside":
        """The same roadside after driving ``distance`` m (video): every element comes closer."""
        d = float(distance)
        return replace(
            self,
            travelled=self.travelled + d,
            linears=[replace(e, z0=e.z0 - d, z1=e.z1 - d, phase=e.phase + d) for e in self.linears],
            trees=[replace(t, z=t.z - d) for t in self.trees],
            poles=[replace(p, z=p.z - d) for p in self.poles],
            signs=[replace(s, z=s.z - d) for s in self.signs],
            buildings=[replace(b, z0=b.z0 - d, z1=b.z1 - d) for b in self.buildings],
            bridges=[replace(b, z=b.z - d) for b in self.bridges],
            gaps=[(a - d, b - d) for a, b in self.gaps],
        )


# ------------------------------------------------------------------------------------------------
# Colours
# ------------------------------------------------------------------------------------------------
def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * rng.random()


def _hsv(h: float, s: float, v: float) -> Color:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return (b * 255.0, g * 255.0, r * 255.0)


def _grey(rng: np.random.Generator, lo: float, hi: float, tint: float = 6.0) -> Color:
    g = _u(rng, lo, hi)
    return (g + _u(rng, -tint, tint), g + _u(rng, -tint, tint), g + _u(rng, -tint, tint))


def _scale(c: Color, k: float) -> Color:
    return (min(max(c[0] * k, 0.0), 255.0), min(max(c[1] * k, 0.0), 255.0), min(max(c[2] * k, 0.0), 255.0))


def _mix(a: Color, b: Color, t: float) -> Color:
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t)


class _Palette:
    """Per-scene colour sampler: realistic most of the time, sometimes off (domain randomization)."""

    def __init__(self, rng: np.random.Generator, night: bool):
        self.rng = rng
        self.night = night
        self.dark = _u(rng, 0.2, 0.5) if night else 1.0  # night: unlit surfaces (the renderer's ambient comes on top)
        self.off = rng.random() < 0.12  # a scene with odd colours everywhere
        self.green_hue = _u(rng, 0.2, 0.42)
        self.green_sat = _u(rng, 0.3, 0.75)
        self.green_val = _u(rng, 0.22, 0.55)

    def k(self, c: Color) -> Color:
        return _scale(c, self.dark)

    def foliage(self) -> Color:
        r = self.rng
        if self.off and r.random() < 0.5:
            return self.k(_hsv(r.random(), _u(r, 0.2, 0.8), _u(r, 0.2, 0.6)))
        x = r.random()
        if x < 0.08:  # purple-leaf shrubs and trees, as in Chinese road medians
            return self.k(_hsv(_u(r, 0.88, 1.0), _u(r, 0.3, 0.6), _u(r, 0.2, 0.45)))
        if x < 0.15:  # yellow-green / autumn
            return self.k(_hsv(_u(r, 0.1, 0.2), _u(r, 0.4, 0.8), _u(r, 0.35, 0.7)))
        return self.k(_hsv(self.green_hue + _u(r, -0.05, 0.05), self.green_sat * _u(r, 0.75, 1.25),
                           self.green_val * _u(r, 0.7, 1.3)))

    def grass(self) -> Color:
        r = self.rng
        if self.off and r.random() < 0.5:
            return self.k(_hsv(r.random(), _u(r, 0.1, 0.6), _u(r, 0.25, 0.6)))
        if r.random() < 0.25:  # dry grass
            return self.k(_hsv(_u(r, 0.1, 0.18), _u(r, 0.25, 0.55), _u(r, 0.35, 0.65)))
        return self.k(_hsv(_u(r, 0.19, 0.36), _u(r, 0.3, 0.7), _u(r, 0.28, 0.6)))

    def dirt(self) -> Color:
        r = self.rng
        return self.k(_hsv(_u(r, 0.05, 0.12), _u(r, 0.15, 0.5), _u(r, 0.3, 0.65)))

    def concrete(self, lo: float = 120, hi: float = 215) -> Color:
        r = self.rng
        if self.off and r.random() < 0.4:
            return self.k(_hsv(r.random(), _u(r, 0.1, 0.5), _u(r, lo, hi) / 255))
        return self.k(_grey(r, lo, hi, 6))

    def paint(self) -> Color:
        """Painted metal/wall colours: white, grey, blue, green, cream, red-brown..."""
        r = self.rng
        x = r.random()
        if x < 0.35:
            return self.k(_grey(r, 150, 235, 5))
        if x < 0.55:
            return self.k(_hsv(_u(r, 0.5, 0.65), _u(r, 0.2, 0.7), _u(r, 0.35, 0.8)))  # blue
        if x < 0.7:
            return self.k(_hsv(_u(r, 0.25, 0.45), _u(r, 0.2, 0.6), _u(r, 0.3, 0.7)))  # green
        if x < 0.85:
            return self.k(_hsv(_u(r, 0.05, 0.14), _u(r, 0.1, 0.5), _u(r, 0.5, 0.9)))  # cream / beige
        return self.k(_hsv(r.random(), _u(r, 0.2, 0.8), _u(r, 0.2, 0.8)))

    def facade(self) -> Color:
        r = self.rng
        x = r.random()
        if x < 0.35:
            return self.k(_grey(r, 120, 225, 6))
        if x < 0.7:  # beige, orange, salmon apartment blocks
            return self.k(_hsv(_u(r, 0.03, 0.13), _u(r, 0.15, 0.55), _u(r, 0.5, 0.92)))
        if x < 0.85:  # brick
            return self.k(_hsv(_u(r, 0.0, 0.05), _u(r, 0.4, 0.7), _u(r, 0.3, 0.6)))
        return self.k(_hsv(r.random(), _u(r, 0.1, 0.6), _u(r, 0.3, 0.9)))

    def sign(self) -> tuple[Color, Color]:
        r = self.rng
        x = r.random()
        white = _grey(r, 215, 245, 4)
        if x < 0.45:
            board = _hsv(_u(r, 0.58, 0.64), _u(r, 0.75, 1.0), _u(r, 0.55, 0.85))  # blue
        elif x < 0.7:
            board = _hsv(_u(r, 0.36, 0.44), _u(r, 0.75, 1.0), _u(r, 0.35, 0.6))  # green
        elif x < 0.82:
            board = _hsv(_u(r, 0.12, 0.16), 0.9, 0.95)  # yellow warning
            white = (20.0, 20.0, 20.0)
        elif x < 0.92:
            board, white = white, (30.0, 30.0, 200.0)  # white with red ring
        else:
            board = _hsv(r.random(), _u(r, 0.5, 1.0), _u(r, 0.4, 0.9))
        s = max(self.dark, 0.45)  # retro-reflective: brighter than the scenery at night
        return _scale(board, s), _scale(white, s)


# ------------------------------------------------------------------------------------------------
# Sampling
# ------------------------------------------------------------------------------------------------
def _far_limit(road: Road) -> float:
    """Distance up to which the road model (and so the roadside) is drawn."""
    c = abs(road.curvature) + 1e-9
    return float(np.clip(0.9 / c, 60.0, 260.0))


def _sample_trees_row(rng, pal: _Palette, side: int, offset: float, z0: float, z1: float, rs: "Roadside",
                      min_bottom: float = 0.0) -> None:
    """A row of trees (street trees): regular spacing with jitter, one species per row. Beyond
    30-75 m the row continues as a canopy band (distant crowns merge into one)."""
    spacing = _u(rng, 4.5, 12.0)
    sprite_kind = int(rng.choice(N_CROWN_KINDS, p=CROWN_KIND_P))
    height = _u(rng, 4.0, 13.0)
    width = height * _u(rng, 0.3, 0.45) if sprite_kind == 1 else height * _u(rng, 0.45, 0.8)
    colour = pal.foliage()
    trunk = pal.k(_grey(rng, 60, 200, 10)) if rng.random() < 0.5 else pal.k(_hsv(_u(rng, 0.05, 0.1), 0.35, _u(rng, 0.2, 0.45)))
    white = _u(rng, 0.8, 1.6) if rng.random() < 0.35 else 0.0
    cut = min(z1, z0 + _u(rng, 30, 75))
    z = z0 + _u(rng, 0, spacing)
    while z < cut:
        if rng.random() < 0.9:
            h = height * _u(rng, 0.75, 1.25)
            w = width * _u(rng, 0.75, 1.3)
            bottom = h * (_u(rng, 0.15, 0.3) if sprite_kind == 2 else _u(rng, 0.3, 0.5))
            bottom = max(bottom, min_bottom)
            off = offset + side * _u(rng, 0.0, 0.6)
            if bottom < 2.5:  # low crowns must not hang over the tarmac
                off = offset + side * (w / 2 + 0.1)
            rs.trees.append(Tree(off, z + _u(rng, -0.2, 0.2) * spacing, bottom + 0.15 * (h - bottom), h * 0.03 + 0.12, bottom,
                                 w, h - bottom, _crown_index(rng, sprite_kind), _scale(colour, _u(rng, 0.85, 1.15)),
                                 trunk, white, pal.k((205.0, 210.0, 212.0)), branches=rng.random() < 0.5))
        z += spacing
    if z1 > cut + 10 and rng.random() < 0.85:
        base = height * 0.35
        rs.linears.append(Linear("canopy", side, offset + side * max(width / 2 - 0.5, 0.3) if base < 2.5 else offset, cut - spacing * 0.5, z1,
                                 height, _scale(colour, 0.95), trunk, base=base, width=width * 0.8, spacing=spacing,
                                 texture=rs.foliage_texture, rough=0.3 * height, phase=_u(rng, 0, 100)))


def _sample_bushes(rng, pal: _Palette, side: int, inner: float, outer: float, z0: float, z1: float, n: int,
                   out: list[Tree]) -> None:
    for _ in range(n):
        w = _u(rng, 0.8, 3.5)
        h = w * _u(rng, 0.45, 0.9)
        d = _u(rng, 0, max(outer - inner - w, 0.01))
        out.append(Tree(inner + side * (d + w / 2 + 0.05), _u(rng, z0, z1), 0.0, 0.0, 0.0, w, h,
                        _crown_index(rng, 3), pal.foliage(), (0.0, 0.0, 0.0)))


def sample_roadside(rng: np.random.Generator, road: Road, road_left: float, road_right: float,
                    night: bool, urban: float) -> Roadside:
    """road_left/right: lateral offsets (m, from the ego-lane centre) of the tarmac edges.
    urban in [0,1]: 0 open highway/countryside, 1 city street. Randomize structure, textures and colours."""
    urban = float(np.clip(urban, 0.0, 1.0))
    pal = _Palette(rng, night)
    far = _far_limit(road)
    rs = Roadside(road_left=float(road_left), road_right=float(road_right), night=bool(night), urban=urban,
                  seed=int(rng.integers(0, 2**31)), far_limit=far)
    rs.foliage_texture = _u(rng, 0.25, 0.5)
    rs.field_colour = pal.grass() if rng.random() < 0.7 - 0.3 * urban else pal.dirt()
    lane = road.lane_width
    kerb_both = rng.random() < 0.3 + 0.6 * urban
    # some roads are bare (open highway, fields): fewer optional elements
    dens = _u(rng, 0.15, 0.6) if rng.random() < 0.2 else 1.0

    for side in (-1, 1):
        edge = road_left if side < 0 else road_right
        d = 0.0  # outward distance from the tarmac edge

        def at(dist: float, _edge=edge, _side=side) -> float:
            return _edge + _side * dist

        # ---- kerb -------------------------------------------------------------------------
        if kerb_both or rng.random() < 0.2:
            kw = _u(rng, 0.12, 0.3)
            kh = _u(rng, 0.08, 0.25)
            stripes = rng.random() < 0.15  # painted black/white or yellow/black blocks
            col = pal.concrete(150, 230)
            if stripes:
                col2 = pal.k((30.0, 30.0, 30.0)) if rng.random() < 0.5 else pal.k((20.0, 190.0, 230.0))
            else:
                col2 = _scale(col, _u(rng, 0.5, 0.9))  # the face, often in its own shade
            rs.linears.append(Linear("kerb", side, at(0.0), Z_NEAR, far, kh, col, col2, width=kw,
                                     spacing=_u(rng, 0.8, 1.2) if stripes else 0.0, texture=0.05))
            d = kw
        # ---- median and the opposite carriageway (left side) --------------------------------
        if side < 0 and rng.random() < 0.45 - 0.15 * urban:
            mw = _u(rng, 1.5, 8.0)
            grass = pal.grass()
            rs.bands.append(Band(at(d), at(d + mw), "grass", grass, pal.dirt(), _u(rng, 0.1, 0.7), _u(rng, 0.2, 0.5)))
            what = rng.random()
            zs, ze = Z_NEAR, far
            inner = 0.2  # first free distance into the median (after a barrier at its road side)
            separated = True
            if what < 0.5:  # guardrail(s) in the median
                gr_col = pal.concrete(140, 220) if rng.random() < 0.8 else pal.paint()
                h = _u(rng, 0.65, 0.85)
                dd = _u(rng, 0.3, 0.8)
                for off in ((dd,) if rng.random() < 0.6 or mw < 2.5 else (dd, mw - 0.6)):
                    rs.linears.append(Linear("guardrail", side, at(d + off), zs, ze, h, gr_col, _scale(gr_col, 0.7),
                                             width=0.35, spacing=_u(rng, 2.0, 4.0), texture=0.04))
                inner = dd + 0.5
            elif what < 0.68:
                col = pal.concrete(150, 225)
                rs.linears.append(Linear("jersey", side, at(d + mw / 2 - 0.3), zs, ze, _u(rng, 0.8, 1.1), col, _scale(col, 0.8),
                                         width=0.6, spacing=_u(rng, 4, 8), texture=0.05))
            elif what < 0.82:
                col = pal.paint()
                rs.linears.append(Linear("railing", side, at(d + mw / 2), zs, ze, _u(rng, 0.9, 1.3), col, col,
                                         width=0.1, spacing=_u(rng, 0.12, 0.25), texture=0.03))
            else:
                separated = False
            hedge = mw - inner > 1.0 and (rng.random() < 0.55 or (not separated and mw < 3.5))
            if hedge:  # hedge or shrubs in the median
                hh = _u(rng, 0.5, 1.4)
                rs.linears.append(Linear("hedge", side, at(d + inner + _u(rng, 0.0, 0.3)), _u(rng, Z_NEAR, 15) if separated else Z_NEAR,
                                         ze * (_u(rng, 0.5, 1.0) if separated else 1.0), hh, pal.foliage(), pal.foliage(),
                                         width=min(mw - inner - 0.3, _u(rng, 0.6, 2.0)), texture=rs.foliage_texture,
                                         rough=_u(rng, 0.05, 0.3) * hh, phase=_u(rng, 0, 100)))
            elif mw > 2.0 and rng.random() < 0.6:
                _sample_trees_row(rng, pal, side, at(d + mw / 2), _u(rng, 3, 10), far * _u(rng, 0.4, 0.9), rs)
            if rng.random() < 0.3 and mw > 1.5:
                _sample_bushes(rng, pal, side, at(d + 0.3), at(d + mw - 0.3), 4, far * 0.6, int(rng.integers(2, 7)), rs.trees)
            if rng.random() < 0.35:  # double-armed street lights in the median
                spacing = _u(rng, 25, 45)
                h = _u(rng, 8, 13)
                col = pal.concrete(110, 210)
                lamp = _lamp_colour(rng)
                z = _u(rng, 3, spacing)
                while z < far:
                    rs.poles.append(Pole(at(d + mw / 2), z, h, _u(rng, 0.15, 0.3), col, "lamp", arm=-side * _u(rng, 1.0, 3.0), lamp=lamp, double=True))
                    z += spacing
            d += mw
            # opposite carriageway
            n_lanes = int(rng.integers(1, 4))
            ow = n_lanes * lane * _u(rng, 0.95, 1.05) + _u(rng, 0.3, 1.0)
            asphalt = pal.k(_grey(rng, 60, 130, 4))
            lines = tuple(at(d + 0.3 + k * lane) for k in range(1, n_lanes)) + (at(d + 0.2), at(d + ow - 0.3))
            rs.bands.append(Band(at(d), at(d + ow), "tarmac", asphalt, _scale(asphalt, _u(rng, 0.85, 1.15)), _u(rng, 0.1, 0.4),
                                 _u(rng, 0.05, 0.2), lines=lines if rng.random() < 0.8 else (),
                                 dashed=rng.random() < 0.7, line_colour=pal.k(_grey(rng, 170, 230, 3))))
            d += ow
            if rng.random() < 0.5:
                col = pal.concrete(140, 220)
                rs.linears.append(Linear("guardrail", side, at(d + 0.3), Z_NEAR, far, _u(rng, 0.65, 0.85), col, _scale(col, 0.7),
                                         width=0.35, spacing=_u(rng, 2.0, 4.0), texture=0.04))
            d += 0.5
        # ---- shoulder / sidewalk / cycle lane -------------------------------------------------
        x = rng.random()
        if x < 0.15 + 0.55 * urban:  # sidewalk (paving)
            sw = _u(rng, 1.5, 6.0)
            col = pal.concrete(110, 200) if rng.random() < 0.6 else pal.k(_hsv(_u(rng, 0.0, 0.08), _u(rng, 0.2, 0.6), _u(rng, 0.35, 0.7)))
            if rng.random() < 0.2:  # cycle lane first (red / green tarmac)
                cw = _u(rng, 1.2, 2.5)
                cc = pal.k(_hsv(_u(rng, 0.97, 1.03), _u(rng, 0.4, 0.75), _u(rng, 0.45, 0.75))) if rng.random() < 0.7 else pal.k(_hsv(0.35, 0.4, 0.5))
                rs.bands.append(Band(at(d), at(d + cw), "cycle", cc, _scale(cc, 0.9), 0.3, 0.1))
                d += cw
            rs.bands.append(Band(at(d), at(d + sw), "paving", col, _scale(col, _u(rng, 0.8, 1.1)), _u(rng, 0.1, 0.5), _u(rng, 0.05, 0.25),
                                 tile=_u(rng, 0.3, 1.0) if rng.random() < 0.7 else 0.0, joint=_scale(col, _u(rng, 0.6, 0.85))))
            if rng.random() < 0.35:  # pedestrian railing at the kerb
                c = pal.paint()
                rs.linears.append(Linear("railing", side, at(d + 0.15), _u(rng, Z_NEAR, 10), far * _u(rng, 0.4, 1.0),
                                         _u(rng, 0.8, 1.2), c, _scale(c, 0.8), width=0.08, spacing=_u(rng, 0.12, 0.3), texture=0.03))
            if rng.random() < 0.5:  # street trees in pits on the sidewalk
                _sample_trees_row(rng, pal, side, at(d + _u(rng, 0.6, min(1.5, sw))), _u(rng, 2, 10), far * _u(rng, 0.5, 1.0), rs, min_bottom=2.6)
            d += sw
        elif x < 0.75:  # gravel / dirt shoulder then grass
            sw = _u(rng, 0.3, 2.5)
            col = pal.dirt() if rng.random() < 0.5 else pal.concrete(90, 170)
            rs.bands.append(Band(at(d), at(d + sw), "gravel", col, _scale(col, _u(rng, 0.7, 1.2)), _u(rng, 0.2, 0.8), _u(rng, 0.3, 0.7)))
            d += sw
        # ---- guardrail --------------------------------------------------------------------
        if rng.random() < 0.55 * (1 - urban) + 0.1:
            col = pal.concrete(140, 225) if rng.random() < 0.85 else pal.paint()
            z0 = Z_NEAR if rng.random() < 0.75 else _u(rng, 5, 60)
            rs.linears.append(Linear("guardrail", side, at(d + _u(rng, 0.2, 0.8)), z0, far * _u(rng, 0.5, 1.0), _u(rng, 0.65, 0.85),
                                     col, _scale(col, 0.65), width=0.35, spacing=_u(rng, 2.0, 4.0), texture=0.04))
            d += 1.0
        # ---- verge -------------------------------------------------------------------------
        vw = _u(rng, 1.0, 10.0)
        g = pal.grass() if rng.random() < 0.8 else pal.dirt()
        rs.bands.append(Band(at(d), at(d + vw), "grass", g, pal.dirt() if rng.random() < 0.5 else pal.grass(), _u(rng, 0.1, 0.8), _u(rng, 0.25, 0.6)))
        verge_inner = d
        if rng.random() < 0.45 * dens:  # hedge along the road
            hh = _u(rng, 0.5, 1.8)
            z0 = Z_NEAR if rng.random() < 0.6 else _u(rng, 3, 40)
            rs.linears.append(Linear("hedge", side, at(d + _u(rng, 0.2, 0.8)), z0, min(far, z0 + _u(rng, 20, 250)), hh, pal.foliage(), pal.foliage(),
                                     width=_u(rng, 0.6, 2.0), texture=rs.foliage_texture, rough=_u(rng, 0.05, 0.35) * hh, phase=_u(rng, 0, 100)))
        if rng.random() < (0.8 - 0.35 * urban) * dens:  # tree row
            _sample_trees_row(rng, pal, side, at(d + _u(rng, 0.8, 3.0)), _u(rng, 2, 15), far * _u(rng, 0.5, 1.0), rs)
        if rng.random() < 0.5 * dens:
            _sample_bushes(rng, pal, side, at(d + 0.3), at(d + vw), 3, far * 0.6, int(rng.integers(1, 6)), rs.trees)
        d += vw
        # ---- fences, walls, noise barriers --------------------------------------------------
        y = rng.random() / dens
        if y < 0.2:
            c = pal.paint() if rng.random() < 0.6 else pal.k(_hsv(_u(rng, 0.3, 0.45), 0.5, 0.4))
            z0 = _u(rng, Z_NEAR, 30)
            rs.linears.append(Linear("mesh", side, at(d), z0, min(far, z0 + _u(rng, 30, 250)), _u(rng, 1.5, 2.5), c, _scale(c, 0.7),
                                     width=0.1, spacing=_u(rng, 2.5, 4.0), alpha=_u(rng, 0.2, 0.5), texture=0.03))
            d += 0.5
        elif y < 0.32 + 0.1 * urban:
            c = pal.paint() if rng.random() < 0.6 else pal.concrete(100, 220)
            z0 = _u(rng, Z_NEAR, 40)
            rs.linears.append(Linear("wall", side, at(d), z0, min(far, z0 + _u(rng, 20, 200)), _u(rng, 1.2, 3.2), c,
                                     _scale(c, _u(rng, 0.6, 1.2)), width=0.3, spacing=_u(rng, 2.5, 6.0), texture=_u(rng, 0.04, 0.12)))
            d += 0.6
        elif y < 0.4 + 0.05 * (1 - urban):
            c = pal.paint()
            z0 = _u(rng, Z_NEAR, 40)
            rs.linears.append(Linear("barrier", side, at(d), z0, min(far, z0 + _u(rng, 40, 250)), _u(rng, 2.5, 5.0), c,
                                     pal.concrete(80, 160), width=0.3, spacing=_u(rng, 3.0, 5.0), texture=0.05))
            d += 0.6
        # ---- poles -------------------------------------------------------------------------
        if rng.random() < (0.35 + 0.35 * urban) * dens:  # street lights
            spacing = _u(rng, 22, 45)
            h = _u(rng, 7, 13)
            col = pal.concrete(100, 215)
            lamp = _lamp_colour(rng)
            arm = _u(rng, 0.8, 3.0)
            off = at(max(0.4, verge_inner * _u(rng, 0.0, 1.0)))
            z = _u(rng, 2, spacing)
            while z < far:
                rs.poles.append(Pole(off, z, h, _u(rng, 0.14, 0.3), col, "lamp", arm=-side * arm, lamp=lamp))
                z += spacing
        if rng.random() < (0.3 * (1 - urban) + 0.1) * dens:  # utility poles with wires
            spacing = _u(rng, 30, 55)
            h = _u(rng, 7, 11)
            col = pal.k(_grey(rng, 70, 170, 10)) if rng.random() < 0.6 else pal.k(_hsv(0.08, 0.4, _u(rng, 0.2, 0.4)))
            off = at(d + _u(rng, 0.5, 4.0))
            z = _u(rng, 2, spacing)
            first = len(rs.poles)
            while z < far:
                rs.poles.append(Pole(off + _u(rng, -0.2, 0.2), z, h, _u(rng, 0.2, 0.32), col, "utility", arm=_u(rng, 0.8, 1.6)))
                z += spacing * _u(rng, 0.9, 1.1)
            for i in range(first, len(rs.poles) - 1):
                rs.poles[i].wire_to = i + 1
        # ---- buildings ---------------------------------------------------------------------
        if rng.random() < 0.1 + 0.85 * urban:
            boff = d + _u(rng, 0.5, 12.0)
            z = _u(rng, 3.0, 30.0)
            tall = _u(rng, 0.2, 1.0) * urban
            while z < far * 0.9:
                length = _u(rng, 8, 45)
                length = min(length, float(np.sqrt(8 * 1.5 / (abs(road.curvature) + 1e-6))))  # facade chords hug the curve
                floors = int(np.clip(rng.exponential(2 + 10 * tall), 1, 30))
                fh = _u(rng, 2.8, 3.6)
                lit = _u(rng, 0.05, 0.6) if night else 0.0
                win = pal.k(_hsv(_u(rng, 0.5, 0.65), _u(rng, 0.1, 0.4), _u(rng, 0.15, 0.45))) if rng.random() < 0.8 else pal.k(_grey(rng, 130, 220))
                shop = None  # a shop sign band over the ground floor (lit at night)
                if rng.random() < 0.3 + 0.5 * urban:
                    shop = _hsv(float(rng.choice([0.0, 0.08, 0.15, 0.6, 0.33, 0.95])) + _u(rng, -0.03, 0.03), _u(rng, 0.5, 1.0),
                                _u(rng, 0.5, 0.95))
                col = pal.facade()
                rs.buildings.append(Building(side, at(boff + _u(rng, 0, 3)), z, z + length, _u(rng, 8, 25), floors * fh + _u(rng, 0.3, 1.5),
                                             col, win, fh, _u(rng, 2.0, 4.0), _u(rng, 0.3, 0.7), _u(rng, 0.35, 0.65), shop, lit,
                                             roof=_scale(col, 0.6), end_shade=_u(rng, 0.6, 1.15), texture=_u(rng, 0.015, 0.06),
                                             seed=int(rng.integers(0, 2**31))))
                z += length + (_u(rng, 0, 4) if rng.random() < 0.6 else _u(rng, 5, 30))
        # ---- forest / far tree band ---------------------------------------------------------
        if rng.random() < (0.55 * (1 - urban) + 0.15) * dens:
            h = _u(rng, 4, 14)
            fo = d + _u(rng, 3, 30)
            rs.linears.append(Linear("canopy", side, at(fo), _u(rng, Z_NEAR, 30), far, h, pal.foliage(),
                                     pal.k(_grey(rng, 50, 120, 10)), base=_u(rng, 1.0, 2.5) if rng.random() < 0.4 else 0.0,
                                     width=5.0, spacing=_u(rng, 3.5, 9.0), texture=rs.foliage_texture,
                                     rough=_u(rng, 0.2, 0.45) * h, phase=_u(rng, 0, 100)))
        # ---- signs ---------------------------------------------------------------------------
        for _ in range(int(rng.poisson((0.5 + 0.6 * urban) * dens))):
            board, border = pal.sign()
            shape = "rect" if rng.random() < 0.6 else ("circle" if rng.random() < 0.6 else "triangle")
            if shape == "rect":
                bw, bh = _u(rng, 0.6, 3.5), _u(rng, 0.5, 2.2)
            else:
                bw = bh = _u(rng, 0.6, 1.2)
            posts = 2 if shape == "rect" and bw > 2.0 and rng.random() < 0.7 else 1
            bottom = _u(rng, 1.8, 3.5)
            margin = _u(rng, 0.3, 2.0) + (bw / 2 if bottom < 2.5 else 0.35 * bw + 0.05 if posts == 2 else 0.05)
            rs.signs.append(Sign(at(margin), _u(rng, 5, min(far, 120)), bottom, bw, bh, board, border, shape, posts,
                                 pal.concrete(120, 200)))

    # ---- overhead gantry sign ------------------------------------------------------------------
    if rng.random() < 0.08:
        board, border = pal.sign()
        legs = (road_left - _u(rng, 0.5, 2.0), road_right + _u(rng, 0.5, 2.0))
        centre = _u(rng, road_left + 2, road_right - 2) if road_right - road_left > 4 else (road_left + road_right) / 2
        rs.signs.append(Sign(centre, _u(rng, 25, min(far, 110)), _u(rng, 5.5, 6.5), _u(rng, 3, 8), _u(rng, 1.5, 3.0), board, border,
                             "rect", 0, pal.concrete(130, 210), span=legs))
    # ---- bridge ----------------------------------------------------------------------------------
    if rng.random() < 0.1:
        col = pal.concrete(110, 200)
        piers = []
        for side, edge in ((-1, road_left), (1, road_right)):
            if rng.random() < 0.85:
                piers.append(edge + side * _u(rng, 1.0, 4.0))
        rs.bridges.append(Bridge(_u(rng, 25, min(far, 160)), _u(rng, 8, 20), _u(rng, 5.0, 7.0), _u(rng, 0.9, 2.2), col, tuple(piers),
                                 _u(rng, 0.6, 2.0), _u(rng, 0.8, 1.4), pal.paint()))
    rs.skyline = _sample_skyline(rng, pal, urban, night)
    for e in rs.linears:
        e.seed = int(rng.integers(0, 2**31))
    return rs


def _lamp_colour(rng: np.random.Generator) -> Color:
    return (_u(rng, 60, 140), _u(rng, 170, 220), 255.0) if rng.random() < 0.6 else (_u(rng, 225, 255), _u(rng, 235, 255), 255.0)


def _profile(rng: np.random.Generator, a0: float, a1: float, n: int, smooth: int) -> np.ndarray:
    a = np.linspace(a0, a1, n)
    e = rng.standard_normal(n + 2 * smooth)
    k = np.hanning(2 * smooth + 1)
    e = np.convolve(e, k / k.sum(), mode="same")[smooth:-smooth]
    e = (e - e.min()) / max(e.max() - e.min(), 1e-6)
    return np.stack([a, e], 1)


def _sample_skyline(rng: np.random.Generator, pal: _Palette, urban: float, night: bool) -> Skyline:
    sk = Skyline()
    sk.clouds = 0.0 if rng.random() < 0.25 else _u(rng, 0.05, 0.7)
    sk.cloud_scale = _u(rng, 0.6, 2.0)
    sk.cloud_colour = _scale(_grey(rng, 225, 255, 4), 0.15 if night else 1.0)
    sk.haze = _u(rng, 0.2, 0.7)
    if rng.random() < 0.5:
        p = _profile(rng, -1.6, 1.6, 40, 4)
        p[:, 1] = p[:, 1] * _u(rng, 0.02, 0.09) + 0.002
        sk.hills = p
        sk.hill_colour = pal.k(_hsv(_u(rng, 0.2, 0.45), _u(rng, 0.2, 0.5), _u(rng, 0.25, 0.5)))
    if rng.random() < 0.92:
        # a distant tree line: a smooth height profile topped by round crowns
        p = _profile(rng, -1.6, 1.6, 640, 12)
        base = _u(rng, 0.004, 0.02)
        p[:, 1] = base + p[:, 1] * _u(rng, 0.005, 0.03)
        spacing = _u(rng, 0.006, 0.02)
        t = (p[:, 0] + 2.0) / spacing
        k = np.floor(t).astype(np.int64)
        ks = np.arange(k.min() - 1, k.max() + 2)
        hs = rng.uniform(0.3, 1.0, len(ks)) * spacing * _u(rng, 0.5, 1.2)
        cs = ks + 0.5 + rng.uniform(-0.3, 0.3, len(ks))
        rr = rng.uniform(0.5, 1.0, len(ks))
        crown = np.zeros(len(p))
        for di in (-1, 0, 1):
            j = k - ks[0] + di
            d = (t - cs[j]) / rr[j]
            crown = np.maximum(crown, np.sqrt(np.maximum(1 - d * d, 0)) * hs[j])
        p[:, 1] += crown
        if rng.random() < 0.4:  # a gap
            p[np.abs(p[:, 0] - _u(rng, -1, 1)) < _u(rng, 0.05, 0.4), 1] = 0.0
        sk.treeline = p
        sk.treeline_colour = _scale(pal.foliage(), _u(rng, 0.5, 0.85))
    nb = int(rng.poisson(1 + 8 * urban)) if rng.random() < 0.3 + 0.7 * urban else 0
    for _ in range(nb):
        a0 = _u(rng, -1.5, 1.5)
        w = _u(rng, 0.015, 0.12)
        e = _u(rng, 0.02, 0.05 + 0.15 * urban)
        col = pal.facade()
        col = _mix(col, (235.0, 225.0, 215.0), _u(rng, 0.0, 0.4)) if not night else col
        win = (_u(rng, 90, 160), _u(rng, 190, 235), 250.0) if night else _scale(col, _u(rng, 0.55, 0.8))
        sk.buildings.append((a0, a0 + w, e, col, win))
    if rng.random() < 0.2:
        a = _u(rng, -1.2, 1.2)
        for k in range(int(rng.integers(1, 4))):
            sk.pylons.append((a + k * _u(rng, 0.1, 0.3) * (1 if a < 0 else -1), _u(rng, 0.03, 0.09)))
    if rng.random() < 0.06:
        e0 = _u(rng, 0.004, 0.015)
        sk.overpass = (e0, e0 + _u(rng, 0.004, 0.01), _u(rng, 0.4, 2.0), pal.concrete(110, 200))
    if night:
        n = int(rng.integers(0, 25))
        sk.lights = np.stack([rng.uniform(-1.0, 1.0, n), rng.uniform(0.0, 0.03, n)], 1)
    return sk


# ------------------------------------------------------------------------------------------------
# Precomputed textures and sprites
# ------------------------------------------------------------------------------------------------
N_CROWN_KINDS = 5  # round, poplar (tall), conifer, bush, sparse
CROWN_KIND_P = (0.35, 0.25, 0.12, 0.03, 0.25)
CROWN_VARIANTS = 4
SPRITE = 96


def _crown_index(rng: np.random.Generator, kind: int) -> int:
    return kind * CROWN_VARIANTS + int(rng.integers(0, CROWN_VARIANTS))


@lru_cache(maxsize=1)
def _leaf() -> np.ndarray:
    """Clumpy leaf-scale noise in [-1, 1], (1024, 2048) float32: windows of it texture foliage."""
    rng = np.random.default_rng(7331)
    h, w = 1024, 2048
    a = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 1.1)
    b = cv2.resize(rng.standard_normal((h // 5, w // 5)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    t = a / a.std() * 0.45 + b / b.std() * 0.6
    return np.tanh(t).astype(np.float32)


@lru_cache(maxsize=1)
def _crowns() -> np.ndarray:
    """Crown sprites: (N, SPRITE, SPRITE, 2) float32 (alpha 0..1, alpha * shade; shade ~0.2..1.4),
    the crown filling its box (x, y in [-1, 1], y down)."""
    rng = np.random.default_rng(4242)
    s = SPRITE
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    yy = (yy + 0.5) / s * 2 - 1
    xx = (xx + 0.5) / s * 2 - 1
    out = np.zeros((N_CROWN_KINDS * CROWN_VARIANTS, s, s, 2), np.float32)
    for kind in range(N_CROWN_KINDS):
        for var in range(CROWN_VARIANTS):
            n = {0: 22, 1: 22, 2: 70, 3: 14, 4: 12}[kind]
            alpha = np.zeros((s, s), np.float32)
            shade = np.full((s, s), 0.6, np.float32)
            for _ in range(n):
                if kind == 2:  # conifer: clumps in a triangle
                    cy = rng.uniform(-0.85, 0.8)
                    half = 0.05 + 0.8 * (cy + 1) / 2
                    cx = rng.uniform(-half, half)
                    r = rng.uniform(0.12, 0.22) * (0.6 + 0.6 * (cy + 1) / 2)
                elif kind == 1:  # poplar: a tall narrow ellipse of clumps
                    t = rng.uniform(0, 2 * np.pi)
                    rr = np.sqrt(rng.uniform(0, 1))
                    cx, cy = 0.55 * rr * np.cos(t), 0.75 * rr * np.sin(t)
                    r = rng.uniform(0.2, 0.35)
                elif kind == 3:  # bush: low dome
                    cx = rng.uniform(-0.65, 0.65)
                    cy = rng.uniform(-0.2, 0.6) + 0.3 * abs(cx)
                    r = rng.uniform(0.25, 0.4)
                elif kind == 4:  # sparse young tree: a few scattered clumps
                    cx, cy = rng.uniform(-0.65, 0.65), rng.uniform(-0.7, 0.6)
                    r = rng.uniform(0.15, 0.3)
                else:  # round deciduous
                    t = rng.uniform(0, 2 * np.pi)
                    rr = np.sqrt(rng.uniform(0, 1))
                    cx, cy = 0.6 * rr * np.cos(t), 0.6 * rr * np.sin(t)
                    r = rng.uniform(0.22, 0.38)
                dx, dy = (xx - cx) / r, (yy - cy) / r
                d2 = dx * dx + dy * dy
                inside = d2 < 1.0
                blob = np.clip(1.0 - d2, 0, 1)
                alpha = np.maximum(alpha, blob)
                # lit from above-left, darker underneath and at the edges
                sh = 0.75 - 0.35 * dy - 0.15 * dx + 0.15 * np.sqrt(np.clip(1 - d2, 0, 1))
                shade = np.where(inside, sh, shade)
            if kind == 2:  # conifer: keep the crown inside a triangle
                alpha *= np.clip((0.95 * (yy + 1) / 2 + 0.05 - np.abs(xx)) * 6, 0, 1)
            noise = cv2.GaussianBlur(rng.standard_normal((s, s)).astype(np.float32), (0, 0), 1.2)
            noise /= noise.std()
            coarse = cv2.GaussianBlur(rng.standard_normal((s, s)).astype(np.float32), (0, 0), 4.0)
            coarse /= coarse.std()
            holes = 0.35 if kind == 4 else 0.2
            inside = np.clip(alpha * 8.0, 0, 1)  # no speckles outside the clumps
            a = np.clip((alpha - 0.1 + 0.2 * noise - holes * np.clip(-coarse - 0.6, 0, 2)) * 5.0, 0, 1) * inside
            sh = shade * (0.85 + 0.18 * noise) * (1.05 - 0.3 * (yy + 1) / 2)
            out[kind * CROWN_VARIANTS + var, :, :, 0] = a
            out[kind * CROWN_VARIANTS + var, :, :, 1] = a * np.clip(sh, 0.2, 1.4)  # premultiplied
    return out


@lru_cache(maxsize=8)
def _ground_maps(cam: Camera, scale: float) -> tuple[np.ndarray, np.ndarray, int]:
    """remap() maps (fixed point) from the ground rows of ``cam`` to texture pixels at ``scale`` px
    per metre of the road plane (X, Z): perspective-correct ground textures. Returns (map1, map2,
    first row)."""
    hz = int(np.clip(np.floor(cam.horizon) + 1, 0, cam.height_px))
    rows = np.arange(hz, cam.height_px, dtype=np.float32) + 0.0
    z = cam.focal * cam.height / np.maximum(rows - cam.horizon, 0.25)
    z = np.minimum(z, 300.0)
    cols = np.arange(cam.width, dtype=np.float32)
    x = (cols[None, :] - cam.cx) * z[:, None] / cam.focal
    map_x = (x * scale).astype(np.float32)
    map_y = np.repeat((z * scale).astype(np.float32)[:, None], cam.width, 1)
    if map_x.size == 0:
        return np.zeros((0, cam.width, 2), np.int16), np.zeros((0, cam.width), np.uint16), hz
    m1, m2 = cv2.convertMaps(np.clip(map_x, -3e4, 3e4), np.clip(map_y, -3e4, 3e4), cv2.CV_16SC2)
    return m1, m2, hz


def _set(img: np.ndarray, colour) -> None:
    """Fill a whole (view of an) image with a colour (faster than numpy broadcasting)."""
    col = tuple(float(c) for c in colour) if isinstance(colour, (tuple, list, np.ndarray)) else float(colour)
    cv2.rectangle(img, (0, 0), (img.shape[1], img.shape[0]), col, -1)


# ------------------------------------------------------------------------------------------------
# Drawing helpers
# ------------------------------------------------------------------------------------------------
class _Emissive(threading.local):
    """While drawing with an emissive mask: ``img`` is the canvas whose fills also clear the mask
    (occluders), so lights hidden behind nearer objects do not stay lit (per thread)."""

    img: np.ndarray | None = None
    mask: np.ndarray | None = None


_EMIT = _Emissive()


def _emit(polys, value: int = 255) -> None:
    """Mark polygons (list of (N, 2) or an (n, k, 2) array) as self-lit."""
    if _EMIT.mask is None or len(polys) == 0:
        return
    pl = [_pts(p) for p in polys if len(p) >= 3]
    if pl:
        cv2.fillPoly(_EMIT.mask, pl, int(value), cv2.LINE_8, SHIFT)


def _pts(poly: np.ndarray) -> np.ndarray:
    p = np.minimum(np.maximum(poly, -2e4), 2e4)
    p *= ONE
    return np.rint(p).astype(np.int32).reshape(-1, 1, 2)


def _fill(canvas: np.ndarray, polys, colour, aa: bool = True) -> None:
    """Fill one polygon ((N, 2) float pixels) or a list of them."""
    if isinstance(polys, np.ndarray) and polys.ndim == 2:
        polys = [polys]
    polys = [_pts(p) for p in polys if len(p) >= 3]
    if not polys:
        return
    col = tuple(float(c) for c in colour) if isinstance(colour, (tuple, list, np.ndarray)) else float(colour)
    cv2.fillPoly(canvas, polys, col, lineType=cv2.LINE_AA if aa else cv2.LINE_8, shift=SHIFT)
    if _EMIT.mask is not None and canvas is _EMIT.img:
        cv2.fillPoly(_EMIT.mask, polys, 0, cv2.LINE_8, SHIFT)


def _quads(canvas: np.ndarray, quads: np.ndarray, colour, aa: bool = True) -> None:
    """Fill (n, k, 2) polygons in one call."""
    if len(quads) == 0:
        return
    pts = np.rint(np.minimum(np.maximum(quads, -2e4), 2e4) * ONE).astype(np.int32)
    col = tuple(float(c) for c in colour) if isinstance(colour, (tuple, list, np.ndarray)) else float(colour)
    cv2.fillPoly(canvas, list(pts), col, lineType=cv2.LINE_AA if aa else cv2.LINE_8, shift=SHIFT)
    if _EMIT.mask is not None and canvas is _EMIT.img:
        cv2.fillPoly(_EMIT.mask, list(pts), 0, cv2.LINE_8, SHIFT)


def _lines(canvas: np.ndarray, polylines: list[np.ndarray], colour, thickness: int = 1) -> None:
    pl = [_pts(p) for p in polylines if len(p) >= 2]
    if pl:
        col = tuple(float(c) for c in colour) if isinstance(colour, (tuple, list, np.ndarray)) else float(colour)
        cv2.polylines(canvas, pl, False, col, max(1, int(thickness)), cv2.LINE_AA, SHIFT)
        if _EMIT.mask is not None and canvas is _EMIT.img:
            cv2.polylines(_EMIT.mask, pl, False, 0, max(1, int(thickness)), cv2.LINE_8, SHIFT)


def _fill_alpha(img: np.ndarray, polys: list[np.ndarray], colour: Color, alpha: float) -> None:
    """Blend ``colour`` with opacity ``alpha`` inside the polygons (within their bounding box)."""
    polys = [p for p in polys if len(p) >= 3]
    if not polys or alpha <= 0:
        return
    allp = np.concatenate(polys)
    h, w = img.shape[:2]
    x0, y0 = np.floor(np.clip(allp.min(0), 0, [w, h])).astype(int)
    x1, y1 = np.ceil(np.clip(allp.max(0) + 1, 0, [w, h])).astype(int)
    if x1 <= x0 or y1 <= y0:
        return
    m = np.zeros((y1 - y0, x1 - x0), np.uint8)
    _fill(m, [p - [x0, y0] for p in polys], 255)
    a = cv2.merge([cv2.multiply(m, 1.0, dtype=cv2.CV_32F, scale=alpha / 255.0)] * 3)
    roi = img[y0:y1, x0:x1]
    d = cv2.subtract(np.full_like(roi, 0.0) + np.array(colour, np.float32), roi)
    cv2.add(roi, cv2.multiply(d, a), dst=roi)
    if _EMIT.mask is not None and img is _EMIT.img and alpha > 0.5:
        _EMIT.mask[y0:y1, x0:x1][m > 127] = 0


def _proj(cam: Camera, x, z, y=0.0) -> tuple[np.ndarray, np.ndarray]:
    z = np.maximum(np.asarray(z, dtype=np.float64), 1e-3)
    return cam.cx + cam.focal * np.asarray(x) / z, cam.horizon + cam.focal * (cam.height - np.asarray(y)) / z


def _distances(near: float, far: float, ratio: float = 1.015) -> np.ndarray:
    if far <= near:
        return np.zeros(0)
    n = max(2, int(np.ceil(np.log(far / near) / np.log(ratio))) + 1)
    return np.geomspace(near, far, n)


def _flat(cam: Camera, road: Road, a: float, b: float, z: np.ndarray, y: float = 0.0) -> np.ndarray:
    """A horizontal strip along the road between lateral offsets ``a`` and ``b`` at height ``y``."""
    ua, va = _proj(cam, road.lateral(a, z), z, y)
    ub, vb = _proj(cam, road.lateral(b, z), z, y)
    return np.concatenate([np.stack([ua, va], 1), np.stack([ub, vb], 1)[::-1]])


def _verticals(cam: Camera, road: Road, offset: float, z: np.ndarray, half: float, y0: float, y1) -> np.ndarray:
    """(n, 4, 2) image quads of vertical posts ``2 half`` m wide (seen from the side, thin along Z)."""
    x = road.lateral(offset, z)
    u, vb = _proj(cam, x, z, y0)
    _, vt = _proj(cam, x, z, y1)
    hw = np.maximum(cam.focal * half / z, 0.35)
    return np.stack([np.stack([u - hw, vb], 1), np.stack([u + hw, vb], 1), np.stack([u + hw, vt], 1), np.stack([u - hw, vt], 1)], 1)


def _clip_z(x: np.ndarray, z: np.ndarray, zmin: float) -> tuple[np.ndarray, np.ndarray]:
    """Clip a ground polygon (closed, vertices x, z) to z >= zmin (Sutherland-Hodgman, vectorized)."""
    if len(z) == 0:
        return x, z
    inside = z >= zmin
    if inside.all():
        return x, z
    if not inside.any():
        return x[:0], z[:0]
    x2, z2 = np.roll(x, -1), np.roll(z, -1)
    in2 = np.roll(inside, -1)
    cross = inside != in2
    t = (zmin - z) / np.where(z2 - z == 0, 1e-9, z2 - z)
    xi = x + t * (x2 - x)
    # per edge: [vertex if inside, intersection if crossing]
    vx = np.stack([x, xi], 1).ravel()
    vz = np.stack([z, np.full_like(z, zmin)], 1).ravel()
    keep = np.stack([inside, cross], 1).ravel()
    return vx[keep], vz[keep]


def _ground_poly(cam: Camera, x: np.ndarray, z: np.ndarray, zmin: float = 0.5) -> np.ndarray:
    x, z = _clip_z(np.asarray(x, np.float64), np.asarray(z, np.float64), zmin)
    if len(x) < 3:
        return np.zeros((0, 2))
    u, v = _proj(cam, x, z, 0.0)
    return np.stack([u, v], 1)


def _sprite(img: np.ndarray, amp: np.ndarray | None, sprite: np.ndarray, left: float, top: float, width: float,
            height: float, colour: np.ndarray, amp_value: int) -> None:
    """Blend a (S, S, 2) premultiplied (alpha, alpha * shade) sprite into the box (left, top, width,
    height) px, tinted by ``colour``; big sprites also get ``amp_value`` of screen-space texture."""
    h, w = img.shape[:2]
    x0, y0 = max(int(left), 0), max(int(top), 0)
    x1, y1 = min(int(left + width) + 2, w), min(int(top + height) + 2, h)
    if x1 <= x0 or y1 <= y0 or width < 0.5 or height < 0.5:
        return
    s = sprite.shape[0]
    sx, sy = width / s, height / s
    m = np.float32([[sx, 0, left - x0 + 0.5 * sx - 0.5], [0, sy, top - y0 + 0.5 * sy - 0.5]])
    patch = cv2.warpAffine(sprite, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    if patch.ndim == 2:
        return
    roi = img[y0:y1, x0:x1]
    if patch.shape[0] * patch.shape[1] < 2000:  # small: numpy has less call overhead
        roi *= 1.0 - patch[:, :, :1]
        roi += patch[:, :, 1:2] * colour
        a = patch[:, :, 0]
    else:  # large: OpenCV's vectorized per-channel ops are faster than numpy broadcasting
        a, ps = cv2.split(patch)
        cv2.multiply(roi, cv2.merge([1.0 - a] * 3), dst=roi)
        cv2.add(roi, cv2.multiply(cv2.merge([ps] * 3), (float(colour[0]), float(colour[1]), float(colour[2]), 0.0)), dst=roi)
    if amp is not None and amp_value and width > 40:
        aroi = amp[y0:y1, x0:x1]
        np.copyto(aroi, np.uint8(amp_value), where=a > 0.5)
    if _EMIT.mask is not None and img is _EMIT.img:
        _EMIT.mask[y0:y1, x0:x1][a > 0.5] = 0


# ------------------------------------------------------------------------------------------------
# Far scenery
# ------------------------------------------------------------------------------------------------
def draw_far_scenery(img: np.ndarray, cam: Camera, road: Road, rs: Roadside, sky_top, sky_horizon,
                     emissive: np.ndarray | None = None) -> None:
    """Sky (gradient, optional clouds) and the skyline above the horizon: tree lines, buildings, hills,
    pylons, distant overpasses. img: (H, W, 3) float32 BGR 0..255 at the render camera's size.
    Rows below the horizon may be left as they are (the skyline reaches a pixel below it).
    ``emissive``: optional (H, W) uint8 mask, zeroed here, that receives 255 where lights are (night:
    lit windows, distant lights), to keep them bright under night ambient."""
    H, W = img.shape[:2]
    hz = int(np.clip(np.ceil(cam.horizon) + 1, 0, H))
    if hz <= 0:
        return
    if emissive is not None:
        emissive[:] = 0
        _EMIT.img, _EMIT.mask = img[:hz], emissive[:hz]
    try:
        _draw_far(img, cam, rs, sky_top, sky_horizon, hz)
    finally:
        _EMIT.img = _EMIT.mask = None


def _draw_far(img: np.ndarray, cam: Camera, rs: Roadside, sky_top, sky_horizon, hz: int) -> None:
    H, W = img.shape[:2]
    rng = np.random.default_rng(rs.seed + 1)
    sk = rs.skyline
    f, cx, hor = cam.focal, cam.cx, cam.horizon
    top = np.array(sky_top, np.float32)
    bot = np.array(sky_horizon, np.float32)
    # gradient in angle: the sky brightens towards the horizon, faster near it
    rows = np.arange(hz, dtype=np.float32)
    e = np.clip((hor - rows) / max(f, 1.0), 0, None)
    t = np.clip(np.sqrt(e / 0.45), 0, 1)[:, None, None]
    col = bot * (1 - t) + top * t
    img[:hz] = cv2.resize(col.astype(np.float32), (W, hz), interpolation=cv2.INTER_NEAREST)
    sky = img[:hz]
    if _EMIT.img is not None:
        _EMIT.img = sky
    _, blotch = bank()
    # clouds: thresholded low-frequency noise (at half resolution), bigger and denser higher up
    if sk.clouds > 0:
        hh, ww = max(2, (hz + 1) // 2), max(2, (W + 1) // 2)
        sc = sk.cloud_scale * f / 500.0
        sh, sw = min(max(2, int(hz / sc) + 2), blotch.shape[0]), min(max(2, int(W / sc) + 2), blotch.shape[1])
        b = cv2.resize(window(blotch, rng, (sh, sw)), (ww, hh), interpolation=cv2.INTER_LINEAR)
        fade = cv2.resize(np.clip(t[:, 0, 0] * 3.0, 0, 1).astype(np.float32)[:, None], (1, hh))
        thr = np.float32(0.55 - 0.6 * sk.clouds)
        b -= thr
        a = np.clip(b * np.float32(5.0), 0, 1) * fade
        lum = a * np.clip(np.float32(1.0) - b * np.float32(0.4), 0.65, 1.0)
        a = cv2.resize(a, (W, hz), interpolation=cv2.INTER_LINEAR)
        lum = cv2.resize(lum, (W, hz), interpolation=cv2.INTER_LINEAR)
        cv2.multiply(sky, cv2.merge([1 - a] * 3), dst=sky)
        cc = sk.cloud_colour
        cv2.add(sky, cv2.multiply(cv2.merge([lum] * 3), (cc[0], cc[1], cc[2], 0.0)), dst=sky)
    amp = np.zeros((hz, W), np.uint8)
    hor_col = bot
    base = min(hor + 1.5, H)

    def poly_of(profile: np.ndarray) -> np.ndarray:
        u = cx + f * profile[:, 0]
        v = hor - f * profile[:, 1]
        return np.concatenate([np.stack([u, v], 1), [[u[-1], base], [u[0], base]]])

    if sk.hills is not None:
        c = _mix(sk.hill_colour, tuple(hor_col), sk.haze)
        p = poly_of(sk.hills)
        _fill(sky, p, c)
        _fill(amp, p, 18)
    # far buildings (blocks, with faint window rows)
    for a0, a1, e_top, c, winc in sk.buildings:
        c2 = _mix(c, tuple(hor_col), sk.haze * 0.6) if not rs.night else c
        u0, u1, vt = cx + f * a0, cx + f * a1, hor - f * e_top
        _fill(sky, np.array([[u0, vt], [u1, vt], [u1, base], [u0, base]]), c2)
        floor_px = max(f * 0.0035, 1.0)
        if (u1 - u0) > 4 and floor_px >= 1.5:
            ys = np.arange(vt + floor_px, hor - 1, floor_px)
            if rs.night:
                n = len(ys) * 6
                xs = rng.uniform(u0 + 1, max(u1 - 2, u0 + 1.5), n)
                yy = np.repeat(ys, 6)
                lit = rng.random(n) < 0.35
                q = np.stack([np.stack([xs, yy], 1), np.stack([xs + 1.2, yy], 1), np.stack([xs + 1.2, yy + 0.8], 1),
                              np.stack([xs, yy + 0.8], 1)], 1)[lit]
                _quads(sky, q, winc)
                _emit(q)
            else:
                _lines(sky, [np.array([[u0 + 1, y], [u1 - 1, y]]) for y in ys], _mix(winc, c2, 0.5 * sk.haze), 1)
    if sk.overpass is not None:
        e0, e1, ah, c = sk.overpass
        c = _mix(c, tuple(hor_col), sk.haze * 0.5)
        _fill(sky, np.array([[cx - f * ah, hor - f * e1], [cx + f * ah, hor - f * e1], [cx + f * ah, hor - f * e0], [cx - f * ah, hor - f * e0]]), c)
        for k in np.linspace(-ah, ah, 5):
            _fill(sky, np.array([[cx + f * k - 1, hor - f * e0], [cx + f * k + 1, hor - f * e0], [cx + f * k + 1, base], [cx + f * k - 1, base]]), _scale(c, 0.7))
    if sk.treeline is not None:
        p = sk.treeline.copy()
        # leafy bumps on the top edge, a couple of pixels
        jitter = window(_leaf(), rng, (1, len(p)))[0] * (0.8 / f)
        p[:, 1] = np.where(p[:, 1] > 0, p[:, 1] + jitter, p[:, 1])
        c = _mix(sk.treeline_colour, tuple(hor_col), sk.haze * 0.25)
        poly = poly_of(p)
        _fill(sky, poly, c)
        _fill(amp, poly, int(255 * rs.foliage_texture))
    for a, e_top in sk.pylons:
        u = cx + f * a
        vt = hor - f * e_top
        wb = f * e_top * 0.18
        c = _scale(_mix((90.0, 90.0, 90.0), tuple(hor_col), 0.3), 0.3 if rs.night else 1.0)
        legs = [np.array([[u - wb, base], [u, vt]]), np.array([[u + wb, base], [u, vt]]),
                np.array([[u - wb * 1.6, vt + (base - vt) * 0.2], [u + wb * 1.6, vt + (base - vt) * 0.2]]),
                np.array([[u - wb * 1.2, vt + (base - vt) * 0.35], [u + wb * 1.2, vt + (base - vt) * 0.35]])]
        _lines(sky, legs, c, 1)
    if rs.night and sk.lights is not None and len(sk.lights):
        for a, e_ in sk.lights:
            u, v = cx + f * a, hor - f * e_ - 1
            r = int(ONE * max(0.8, f * 0.002))
            cv2.circle(sky, (int(u * ONE), int(v * ONE)), r, (140.0, 210.0, 255.0), -1, cv2.LINE_AA, SHIFT)
            if _EMIT.mask is not None:
                cv2.circle(_EMIT.mask, (int(u * ONE), int(v * ONE)), r, 255, -1, cv2.LINE_8, SHIFT)
    _texture(sky, amp, rng)


@lru_cache(maxsize=1)
def _fine() -> np.ndarray:
    """Leaf clumps plus grain, (1024, 2048) float32 (~[-1, 1]): windows of it texture surfaces."""
    grain, _ = bank()
    leaf = _leaf()
    return cv2.addWeighted(leaf, 0.8, np.ascontiguousarray(grain[: leaf.shape[0], : leaf.shape[1], 1]), 0.25, 0.0)


def _texture(img: np.ndarray, amp: np.ndarray, rng: np.random.Generator, scale: float = 1.0) -> None:
    """img *= 1 + amp/255 * T inside amp's bounding box; T mixes leaf clumps and grain."""
    x, y, w, h = cv2.boundingRect(amp)
    if w == 0 or h == 0:
        return
    fine = _fine()
    h = min(h, fine.shape[0])
    w = min(w, fine.shape[1])
    k = cv2.multiply(amp[y : y + h, x : x + w], window(fine, rng, (h, w)), dtype=cv2.CV_32F, scale=scale / 255.0)
    k += np.float32(1.0)
    roi = img[y : y + h, x : x + w]
    cv2.multiply(roi, cv2.merge([k, k, k]), dst=roi)


# ------------------------------------------------------------------------------------------------
# Ground
# ------------------------------------------------------------------------------------------------
def draw_offroad_ground(img: np.ndarray, cam: Camera, road: Road, rs: Roadside) -> None:
    """The ground beside the tarmac (below the horizon, outside the road): grass, dirt, sidewalk/paving,
    gravel shoulder, a far carriageway behind a median, textured, following the road's curve. The whole
    ground region is painted (the tarmac strip too: it is drawn over afterwards)."""
    H, W = img.shape[:2]
    hz = int(np.clip(np.floor(cam.horizon), 0, H))
    if hz >= H:
        return
    rng = np.random.default_rng(rs.seed + 2)
    g = img[hz:]
    gh = H - hz
    off = np.array([0, hz], np.float64)
    field2 = _scale(rs.field_colour, 0.8) if rs.night else _mix(rs.field_colour, (90.0, 110.0, 125.0), 0.4)
    _set(g, rs.field_colour)
    g2 = np.empty_like(g)
    _set(g2, field2)
    mix = np.full((gh, W), 110, np.uint8)
    grain = np.full((gh, W), 90, np.uint8)
    far = min(rs.far_limit * 1.2, 300.0)
    z = _distances(max(cam.nearest_visible * 0.5, 0.5), far)
    z = z[z > 0]
    if len(z) >= 2:
        # outermost bands first (they reach far out), then inwards
        bands = sorted(rs.bands, key=lambda b: -abs(b.outer - (rs.road_left + rs.road_right) / 2))
        for side in (-1, 1):
            last = [b for b in bands if np.sign(b.outer - b.inner) == side]
            if last:
                b = last[0]
                poly = _flat(cam, road, b.outer, b.outer + side * 150.0, z) - off
                _fill(g, poly, rs.field_colour)
        for b in bands:
            poly = _flat(cam, road, b.inner, b.outer, z) - off
            _fill(g, poly, b.colour)
            _fill(g2, poly, b.colour2, aa=False)
            _fill(mix, poly, int(255 * b.mix), aa=False)
            _fill(grain, poly, int(255 * b.grain), aa=False)
    # patches mixed by perspective-correct low-frequency noise (at quarter resolution), then grain
    _, blotch = bank()
    q = 4
    small = Camera(width=(W + q - 1) // q, height_px=(H + q - 1) // q, focal=cam.focal / q,
                   cx=(cam.cx + 0.5) / q - 0.5, horizon=(cam.horizon + 0.5) / q - 0.5, height=cam.height)
    m1, m2, row0 = _ground_maps(small, 3.0)
    if len(m1):
        src = window(blotch, rng, (512, 1024))
        n = cv2.remap(src, m1, m2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        n = np.clip(n * np.float32(2.5) + np.float32(0.5), 0, 1)
        top = hz - row0 * q  # rows of the upsampled noise above the ground region
        n = cv2.resize(n, (W, n.shape[0] * q), interpolation=cv2.INTER_LINEAR)
        if top < 0:
            n = np.concatenate([np.repeat(n[:1], -top, 0), n])
            top = 0
        n = n[top : top + gh]
        if n.shape[0] < gh:
            n = np.concatenate([n, np.repeat(n[-1:], gh - n.shape[0], 0)])
        wgt = cv2.multiply(mix, n, dtype=cv2.CV_32F, scale=1 / 255.0)
        d = cv2.subtract(g2, g)
        cv2.multiply(d, cv2.merge([wgt, wgt, wgt]), dst=d)
        cv2.add(g, d, dst=g)
    _texture(g, grain, rng, 0.45)
    # paving joints and far-carriageway paint
    for b in rs.bands:
        if b.tile > 0:
            lo, hi = sorted((b.inner, b.outer))
            # longitudinal joints (one batch)
            xs = np.arange(lo + b.tile, hi - 0.05, b.tile)
            zz = _distances(max(cam.nearest_visible * 0.5, 0.5), 60.0, 1.04)
            if len(xs) and len(zz) >= 2:
                c = road.lateral(0.0, zz)[None, :]
                k = (cam.focal / zz)[None, :]
                v = np.broadcast_to(cam.horizon - hz + k * cam.height, (len(xs), len(zz)))
                ua = cam.cx + k * (c + xs[:, None] - 0.015)
                ub = cam.cx + k * (c + xs[:, None] + 0.015)
                polys = np.concatenate([np.stack([ua, v], 2), np.stack([ub, v], 2)[:, ::-1]], 1)
                _quads(g, polys, b.joint)
            # transverse joints while they are > 2 px apart
            zt = _periodic(max(cam.nearest_visible * 0.5, 1.0), 80.0, b.tile, rs.travelled)
            zt = zt[cam.focal * cam.height * b.tile / zt**2 > 2.0]
            if len(zt):
                _quads(g, _ground_quads(cam, road, lo, hi, zt, zt + 0.03) - off, b.joint)
        if b.lines:
            for i, x in enumerate(b.lines):
                edge = i >= len(b.lines) - 2
                if b.dashed and not edge:
                    za = _periodic(max(cam.nearest_visible * 0.5, 0.5), 120.0, 9.0, rs.travelled)
                    if len(za):
                        _quads(g, _ground_quads(cam, road, x - 0.07, x + 0.07, za, za + 3.0) - off, b.line_colour)
                else:
                    zz = _distances(max(cam.nearest_visible * 0.5, 0.5), 120.0, 1.04)
                    if len(zz) >= 2:
                        _fill(g, _flat(cam, road, x - 0.07, x + 0.07, zz) - off, b.line_colour)


def _ground_quads(cam: Camera, road: Road, a: float, b: float, z0: np.ndarray, z1: np.ndarray) -> np.ndarray:
    """(n, 4, 2) image quads of ground patches between lateral offsets a..b and distances z0..z1."""
    c0, c1 = road.lateral(0.0, z0), road.lateral(0.0, z1)
    k0, k1 = cam.focal / z0, cam.focal / z1
    v0, v1 = cam.horizon + k0 * cam.height, cam.horizon + k1 * cam.height
    return np.stack([np.stack([cam.cx + k0 * (c0 + a), v0], 1), np.stack([cam.cx + k0 * (c0 + b), v0], 1),
                     np.stack([cam.cx + k1 * (c1 + b), v1], 1), np.stack([cam.cx + k1 * (c1 + a), v1], 1)], 1)


# ------------------------------------------------------------------------------------------------
# Objects
# ------------------------------------------------------------------------------------------------
def _noise_top(e: Linear, z: np.ndarray) -> np.ndarray:
    """Irregular top height of hedges and canopies along z: a row of random round crowns (stable
    from frame to frame: they are hashed from their index along the road)."""
    if e.rough <= 0:
        return np.full_like(z, e.height)
    spacing = max(e.spacing, 3.0) if e.kind == "canopy" else 0.9
    t = (z + e.phase) / spacing + 1e5
    k = np.floor(t).astype(np.int64)
    k0 = int(k.min()) - 1
    ks = np.arange(k0, int(k.max()) + 2)
    seed = e.seed
    hs = 0.55 + 0.45 * _hashed(ks, seed)
    cs = ks + 0.5 + (_hashed(ks, seed + 1) - 0.5) * 0.6
    rs = 1.0 / (0.55 + 0.5 * _hashed(ks, seed + 2))
    best = np.zeros_like(z)
    i = k - k0
    for di in (-1, 0, 1):
        j = i + di
        d = (t - cs[j]) * rs[j]
        best = np.maximum(best, np.sqrt(np.maximum(1.0 - d * d, 0.0)) * hs[j])
    return e.height - e.rough + e.rough * best


class _Track:
    """A line along the road at one lateral offset, sampled at distances ``z`` (trimmed to the part
    that can be in view for things up to ``top`` m tall): shared projections for the bands and
    strips of one element."""

    def __init__(self, cam: Camera, road: Road, offset: float, z: np.ndarray, top: float = 0.0, reach: float = 0.0):
        self.cam = cam
        x = road.lateral(offset, z)
        k = cam.focal / z
        u = cam.cx + k * x
        # keep the samples that may be visible (plus one on each side)
        w = cam.width
        vis = (u + k * abs(reach) > -0.25 * w) & (u - k * abs(reach) < 1.25 * w) & \
              (cam.horizon + k * (cam.height - top) < cam.height_px + 2)
        if not vis.all():
            idx = np.flatnonzero(vis)
            if len(idx) == 0:
                z, x, k, u = z[:0], x[:0], k[:0], u[:0]
            else:
                a, b = max(idx[0] - 1, 0), min(idx[-1] + 2, len(z))
                z, x, k, u = z[a:b], x[a:b], k[a:b], u[a:b]
        self.z, self.x, self.k, self.u = z, x, k, u
        self.n = len(z)

    def v(self, y) -> np.ndarray:
        return self.cam.horizon + self.k * (self.cam.height - y)

    def band(self, y0, y1, mask: np.ndarray | None = None) -> np.ndarray:
        """Vertical band between heights y0 and y1 (scalars or per-sample)."""
        u, k = self.u, self.k
        c = self.cam.horizon
        h = self.cam.height
        if mask is not None:
            u, k = u[mask], k[mask]
            y0 = y0[mask] if np.ndim(y0) else y0
            y1 = y1[mask] if np.ndim(y1) else y1
        n = len(u)
        out = np.empty((2 * n, 2))
        out[:n, 0] = u
        out[n:, 0] = u[::-1]
        out[:n, 1] = c + k * (h - y0)
        out[n:, 1] = (c + k * (h - y1))[::-1]
        return out

    def flat(self, d0: float, d1: float, y: float) -> np.ndarray:
        """Horizontal strip between lateral shifts d0 and d1 (m) at height y."""
        c, k, n = self.cam.cx, self.k, self.n
        out = np.empty((2 * n, 2))
        out[:n, 0] = c + k * (self.x + d0)
        out[n:, 0] = (c + k * (self.x + d1))[::-1]
        v = self.v(y)
        out[:n, 1] = v
        out[n:, 1] = v[::-1]
        return out


def _periodic(z0: float, z1: float, spacing: float, phase: float) -> np.ndarray:
    """Positions k*spacing - phase within [z0, z1)."""
    if spacing <= 0:
        return np.zeros(0)
    return np.arange(np.ceil((z0 + phase) / spacing) * spacing - phase, z1, spacing)


def _resolvable(cam: Camera, road: Road, offset: float, z: np.ndarray, spacing: float, px: float) -> np.ndarray:
    """The subset of ``z`` where things ``spacing`` m apart along the road are > ``px`` pixels apart."""
    if len(z) == 0:
        return z
    x = np.maximum(np.abs(road.lateral(offset, z)), 0.3)
    return z[cam.focal * spacing * x / z**2 > px]


def _draw_linear(img: np.ndarray, amp: np.ndarray, cam: Camera, road: Road, e: Linear, z0: float, z1: float) -> None:
    z0, z1 = max(z0, e.z0, Z_NEAR), min(z1, e.z1)
    if z1 <= z0 + 0.1:
        return
    kind = e.kind
    s = e.side
    rough = kind in ("hedge", "canopy")
    z = _distances(z0, z1, 1.015 if rough else 1.04)
    if len(z) < 2:
        return
    tr = _Track(cam, road, e.offset, z, e.height + e.rough, e.width)
    if tr.n < 2:
        return
    z = tr.z
    tex = int(np.clip(e.texture * 255, 0, 255))
    if kind == "kerb":
        face = tr.band(0.0, e.height)
        top = tr.flat(0.0, s * e.width, e.height)
        _fill(img, face, e.colour2 if e.spacing == 0 else _scale(e.colour, 0.85))
        _fill(img, top, e.colour)
        if e.spacing > 0:  # painted stripes on the face and top, while they are resolvable
            za = _resolvable(cam, road, e.offset, _periodic(z0, min(z1, 60.0), 2 * e.spacing, e.phase), e.spacing, 0.6)
            if len(za):
                zz = np.stack([za, za + e.spacing], 1)
                x = road.lateral(e.offset, zz)
                k = cam.focal / zz
                u0, u1 = cam.cx + k * x, cam.cx + k * (x + s * e.width)
                vb, vt = cam.horizon + k * cam.height, cam.horizon + k * (cam.height - e.height)
                faces = np.stack([np.stack([u0[:, 0], vb[:, 0]], 1), np.stack([u0[:, 1], vb[:, 1]], 1),
                                  np.stack([u0[:, 1], vt[:, 1]], 1), np.stack([u0[:, 0], vt[:, 0]], 1)], 1)
                tops = np.stack([np.stack([u0[:, 0], vt[:, 0]], 1), np.stack([u0[:, 1], vt[:, 1]], 1),
                                 np.stack([u1[:, 1], vt[:, 1]], 1), np.stack([u1[:, 0], vt[:, 0]], 1)], 1)
                _quads(img, np.concatenate([faces, tops]), e.colour2)
        return
    if kind == "guardrail":
        h = e.height
        zp = _resolvable(cam, road, e.offset, _periodic(z0, z1, e.spacing, e.phase), e.spacing, 1.5)
        if len(zp):  # posts (behind the beam)
            _quads(img, _verticals(cam, road, e.offset + s * 0.15, zp, 0.08, 0.0, h + 0.03), e.colour2)
        yb = h - 0.32
        _fill(img, tr.band(yb, h), e.colour)
        # W profile: dark groove, bright upper ridge, shadowed lower lip
        _fill(img, tr.band(yb + 0.13, yb + 0.19), _scale(e.colour, 0.62))
        _fill(img, tr.band(yb + 0.22, yb + 0.29), _scale(e.colour, 1.18))
        _fill(img, tr.band(yb, yb + 0.05), _scale(e.colour, 0.75))
        return
    if kind == "jersey":
        h = e.height
        _fill(img, tr.band(0.0, 0.25), _scale(e.colour, 1.1))
        upper = tr.band(0.25, h)
        upper[:, 0] += (s * 0.15) * np.concatenate([tr.k, tr.k[::-1]])
        _fill(img, upper, e.colour)
        _fill(img, tr.flat(s * 0.15, s * 0.4, h), _scale(e.colour, 1.2))
        zj = _resolvable(cam, road, e.offset, _periodic(z0, min(z1, 80.0), e.spacing, e.phase), e.spacing, 3.0)
        if len(zj):
            _quads(img, _verticals(cam, road, e.offset + s * 0.1, zj, 0.01, 0.0, h), e.colour2)
        return
    if kind == "railing":
        h = e.height
        # vertical bars individually while > 2.5 px apart, a half-transparent band beyond
        near = _resolvable(cam, road, e.offset, _periodic(z0, z1, e.spacing, e.phase), e.spacing, 2.5)
        zd = float(near.max()) if len(near) else z0
        if len(near):
            _quads(img, _verticals(cam, road, e.offset, near, 0.015, 0.05, h), e.colour)
        far = z >= zd
        if far.sum() >= 2:
            _fill_alpha(img, [tr.band(0.05, h, far)], e.colour, 0.55)
        zp = _resolvable(cam, road, e.offset, _periodic(z0, z1, 2.5, e.phase), 2.5, 1.5)
        if len(zp):
            _quads(img, _verticals(cam, road, e.offset, zp, 0.04, 0.0, h + 0.05), e.colour2)
        _fill(img, [tr.band(0.05, 0.11), tr.band(h - 0.06, h)], e.colour)
        return
    if kind == "mesh":
        h = e.height
        _fill_alpha(img, [tr.band(0.0, h)], e.colour, e.alpha)
        zp = _resolvable(cam, road, e.offset, _periodic(z0, z1, e.spacing, e.phase), e.spacing, 1.5)
        if len(zp):
            _quads(img, _verticals(cam, road, e.offset, zp, 0.04, 0.0, h), e.colour2)
        _fill(img, [tr.band(h - 0.05, h), tr.band(0.0, 0.04)], e.colour2)
        return
    if kind in ("wall", "barrier"):
        h = e.height
        face = tr.band(0.0, h)
        _fill(img, face, e.colour)
        _fill(amp, face, tex)
        if kind == "wall":
            _fill(img, tr.band(h - 0.15, h), e.colour2)  # coping
            _fill(img, tr.band(0.0, 0.12), _scale(e.colour, 0.7))  # dirty base
        else:
            _fill(img, [tr.band(y, y + 0.03) for y in np.arange(0.5, h, 0.5)[:8]], _scale(e.colour, 0.8))
            _fill(img, tr.band(0.0, 0.4), e.colour2)
        zp = _resolvable(cam, road, e.offset, _periodic(z0, z1, e.spacing, e.phase), e.spacing, 2.0)
        if len(zp):
            _quads(img, _verticals(cam, road, e.offset - s * 0.03, zp, 0.05 if kind == "wall" else 0.1, 0.0, h), e.colour2)
        return
    # hedge and canopy: foliage bands with irregular tops
    ytop = _noise_top(e, z)
    if kind == "canopy" and e.z0 > Z_NEAR + 0.5:  # a rounded first crown, not a cut
        r = max(e.spacing, 3.0) * 0.7
        ytop = e.base + (ytop - e.base) * np.sqrt(np.clip((z - e.z0) / r * (2 - (z - e.z0) / r), 0.05, 1.0))
    ytop = np.maximum(ytop, e.base + 0.2)
    if kind == "hedge":
        top = tr.flat(0.0, s * e.width, float(e.height))
        _fill(img, top, _scale(e.colour, 1.12))
        _fill(amp, top, tex)
    face = tr.band(e.base, ytop)
    _fill(img, face, e.colour)
    _fill(amp, face, tex)
    # darker lower part (self-shadow)
    _fill(img, tr.band(e.base, e.base + (ytop - e.base) * 0.35), _scale(e.colour, 0.72))
    if e.base > 0.3:  # trunks under a raised canopy
        zt = _resolvable(cam, road, e.offset, _periodic(z0, z1, e.spacing, e.phase), e.spacing, 1.5)
        if len(zt):
            _quads(img, _verticals(cam, road, e.offset + s * 0.3, zt, 0.12, 0.0, e.base + 0.5), e.colour2)


def _draw_tree(img: np.ndarray, amp: np.ndarray, cam: Camera, road: Road, t: Tree, foliage_amp: int) -> None:
    if t.z < Z_NEAR_OBJECT:
        return
    x = float(road.lateral(t.offset, np.array(t.z)))
    f = cam.focal
    u = cam.cx + f * x / t.z
    k = f / t.z
    if t.trunk_height > 0:
        vb = cam.horizon + k * cam.height
        vt = cam.horizon + k * (cam.height - t.trunk_height)
        hw = max(k * t.trunk_width / 2, 0.4)
        trunk = np.array([[u - hw, vb], [u + hw, vb], [u + hw * 0.6, vt], [u - hw * 0.6, vt]])
        _fill(img, trunk, t.trunk_colour)
        if t.whitewash > 0:
            vw = cam.horizon + k * (cam.height - t.whitewash)
            _fill(img, np.array([[u - hw, vb], [u + hw, vb], [u + hw * 0.9, vw], [u - hw * 0.9, vw]]), t.wash_colour)
        if t.branches and k * t.crown_height > 12:
            ch = k * t.crown_height
            for dx, dy in ((-0.3, 0.45), (0.25, 0.3), (0.05, 0.7)):
                _lines(img, [np.array([[u, vt + 0.1 * ch], [u + dx * k * t.crown_width, vt - dy * ch]])], t.trunk_colour,
                       max(1, int(hw)))
    cw, ch = k * t.crown_width, k * t.crown_height
    top = cam.horizon + k * (cam.height - t.crown_bottom - t.crown_height)
    if cw < 3 and ch < 3:
        centre, axes = (int(u * ONE), int((top + ch / 2) * ONE)), (int(max(cw / 2, 0.5) * ONE), int(max(ch / 2, 0.5) * ONE))
        cv2.ellipse(img, centre, axes, 0, 0, 360, t.colour, -1, cv2.LINE_AA, SHIFT)
        if _EMIT.mask is not None and img is _EMIT.img:
            cv2.ellipse(_EMIT.mask, centre, axes, 0, 0, 360, 0, -1, cv2.LINE_8, SHIFT)
        return
    _sprite(img, amp, _crowns()[t.sprite % len(_crowns())], u - cw / 2, top, cw, ch, np.array(t.colour, np.float32), foliage_amp)


def _draw_pole(img: np.ndarray, cam: Camera, road: Road, p: Pole, poles: list[Pole], night: bool) -> None:
    if p.z < Z_NEAR_OBJECT:
        return
    f = cam.focal
    x = float(road.lateral(p.offset, np.array(p.z)))
    k = f / p.z
    u = cam.cx + f * x / p.z
    vb = cam.horizon + k * cam.height
    vt = cam.horizon + k * (cam.height - p.height)
    hw = max(k * p.width / 2, 0.35)
    _fill(img, np.array([[u - hw, vb], [u + hw, vb], [u + hw * 0.6, vt], [u - hw * 0.6, vt]]), p.colour)
    if p.kind == "lamp" and p.arm != 0:
        for direction in ((1, -1) if p.double else (1,)):
            xa = x + p.arm * direction
            ua = cam.cx + f * xa / p.z
            va = cam.horizon + k * (cam.height - p.height - 0.3)
            um = cam.cx + f * (x + p.arm * direction * 0.5) / p.z
            vm = cam.horizon + k * (cam.height - p.height - 0.35)
            _lines(img, [np.array([[u, vt], [um, vm], [ua, va]])], p.colour, max(1, int(round(hw))))
            lw = max(k * 0.5, 1.0)
            lh = max(k * 0.15, 0.8)
            lamp = np.array([[ua - lw, va], [ua + lw * 0.3, va], [ua + lw * 0.3, va + lh], [ua - lw, va + lh]]) if direction * p.arm > 0 else \
                np.array([[ua - lw * 0.3, va], [ua + lw, va], [ua + lw, va + lh], [ua - lw * 0.3, va + lh]])
            _fill(img, lamp, _scale(p.colour, 0.8))
            if night:
                r = max(k * 0.25, 1.2)
                centre, axes = (int(ua * ONE), int((va + lh) * ONE)), (int(r * 1.6 * ONE), int(r * ONE))
                cv2.ellipse(img, centre, axes, 0, 0, 360, p.lamp, -1, cv2.LINE_AA, SHIFT)
                if _EMIT.mask is not None:
                    cv2.ellipse(_EMIT.mask, centre, axes, 0, 0, 360, 255, -1, cv2.LINE_8, SHIFT)
    elif p.kind == "utility":
        va = cam.horizon + k * (cam.height - p.height + 0.6)
        aw = k * p.arm
        _lines(img, [np.array([[u - aw, va], [u + aw, va]])], p.colour, max(1, int(round(hw))))
        if p.wire_to >= 0:
            q = poles[p.wire_to]
            zs = np.linspace(p.z, q.z, 12)
            t = np.linspace(0, 1, 12)
            sag = 4 * t * (1 - t) * 0.6
            wires = []
            for dx in (-p.arm * 0.9, p.arm * 0.9, 0.0):
                xo = np.interp(zs, [p.z, q.z], [p.offset, q.offset]) + dx
                yy = np.interp(zs, [p.z, q.z], [p.height - 0.6, q.height - 0.6]) - sag + (0.5 if dx == 0 else 0)
                uu, vv = _proj(cam, _lat(road, xo, zs), zs, yy)
                wires.append(np.stack([uu, vv], 1))
            _lines(img, wires, _scale(p.colour, 0.4), 1)


def _lat(road: Road, offsets: np.ndarray, z: np.ndarray) -> np.ndarray:
    return road.centre(z) + offsets - road.ego_offset


def _draw_sign(img: np.ndarray, cam: Camera, road: Road, s: Sign) -> None:
    if s.z < Z_NEAR_OBJECT:
        return
    f = cam.focal
    k = f / s.z
    x = float(road.lateral(s.offset, np.array(s.z)))
    u = cam.cx + f * x / s.z
    vb = cam.horizon + k * cam.height
    b0 = cam.horizon + k * (cam.height - s.bottom)
    b1 = cam.horizon + k * (cam.height - s.bottom - s.board_height)
    bw = k * s.board_width
    pw = max(k * 0.05, 0.35)
    if s.span is not None:
        legs = [float(road.lateral(o, np.array(s.z))) for o in s.span]
        ul = [cam.cx + f * xl / s.z for xl in legs]
        for uu in ul:
            _fill(img, np.array([[uu - 2.5 * pw, vb], [uu + 2.5 * pw, vb], [uu + 2.5 * pw, b1], [uu - 2.5 * pw, b1]]), s.post_colour)
        _fill(img, np.array([[ul[0], b1 + 0.1 * (b0 - b1)], [ul[1], b1 + 0.1 * (b0 - b1)], [ul[1], b1 + 0.3 * (b0 - b1)], [ul[0], b1 + 0.3 * (b0 - b1)]]), s.post_colour)
    else:
        posts = [u] if s.posts <= 1 else [u - bw * 0.35, u + bw * 0.35]
        for uu in posts:
            _fill(img, np.array([[uu - pw, vb], [uu + pw, vb], [uu + pw, b1], [uu - pw, b1]]), s.post_colour)
    if s.shape == "circle":
        r = bw / 2
        c = (int(u * ONE), int((b0 + b1) / 2 * ONE))
        cv2.circle(img, c, int(r * ONE), s.border, -1, cv2.LINE_AA, SHIFT)
        cv2.circle(img, c, int(r * 0.78 * ONE), s.colour, -1, cv2.LINE_AA, SHIFT)
        if _EMIT.mask is not None and img is _EMIT.img:
            cv2.circle(_EMIT.mask, c, int(r * ONE), 0, -1, cv2.LINE_8, SHIFT)
        return
    if s.shape == "triangle":
        tri = np.array([[u, b1], [u + bw / 2, b0], [u - bw / 2, b0]])
        _fill(img, tri, s.border)
        _fill(img, (tri - [u, (b0 + 2 * b1) / 3]) * 0.75 + [u, (b0 + 2 * b1) / 3 + 0.05 * (b0 - b1)], s.colour)
        return
    board = np.array([[u - bw / 2, b1], [u + bw / 2, b1], [u + bw / 2, b0], [u - bw / 2, b0]])
    _fill(img, board, s.border)
    m = max(0.04 * k, 0.4)
    _fill(img, board + [[m, m], [-m, m], [-m, -m], [m, -m]], s.colour)
    # "text": a few white bars and an arrow-ish block, when big enough to matter
    if bw > 8 and (b0 - b1) > 5:
        rows = 2 if (b0 - b1) < 14 else 3
        bars = []
        for i in range(rows):
            yc = b1 + (i + 0.7) * (b0 - b1) / (rows + 0.4)
            x0 = u - bw * 0.38 + (i * 0.07) * bw
            bars.append(np.array([[x0, yc - m], [x0 + bw * (0.45 + 0.1 * (i % 2)), yc - m], [x0 + bw * (0.45 + 0.1 * (i % 2)), yc + m],
                                  [x0, yc + m]]))
        _fill(img, bars, s.border)


def _draw_building(img: np.ndarray, amp: np.ndarray, cam: Camera, road: Road, b: Building, z0: float, z1: float, night: bool) -> None:
    za, zb = max(b.z0, z0, Z_NEAR_OBJECT), min(b.z1, z1)
    if zb <= za + 0.2:
        return
    f, hor, ch = cam.focal, cam.horizon, cam.height
    s = b.side
    z = np.linspace(za, zb, max(2, int((zb - za) / 4) + 2))
    tr = _Track(cam, road, b.offset, z, b.height, b.depth)
    if tr.n < 2:
        return
    tex = int(b.texture * 255)
    facade = tr.band(0.0, b.height)
    _fill(img, facade, b.colour)
    _fill(amp, facade, tex)
    # end face towards the camera (when the building starts in view)
    xa = None
    if b.z0 >= za - 1e-6:
        xa = float(road.lateral(b.offset, np.array(za)))
        k = f / za
        ua, ub = cam.cx + k * xa, cam.cx + k * (xa + s * b.depth)
        vb, vt = hor + k * ch, hor + k * (ch - b.height)
        end = np.array([[ua, vb], [ub, vb], [ub, vt], [ua, vt]])
        _fill(img, end, _scale(b.colour, b.end_shade))
        _fill(amp, end, tex)
    # plinth / shop band
    _fill(img, tr.band(0.0, 0.35), _scale(b.colour, 0.55))
    if b.shop is not None:
        _fill(img, tr.band(0.4, min(2.8, b.height - 0.3)), _scale(b.window, 0.6) if not night else _scale(b.shop, 0.5))
        sign = tr.band(min(2.9, b.height - 0.6), min(3.6, b.height - 0.1))
        _fill(img, sign, b.shop)
        if night:
            _emit([sign])
    floors = int(b.height / b.floor_height)
    first = 1 if b.shop is not None else 0
    if floors <= first:
        return
    ys = (np.arange(first, floors) + 0.5 - b.window_height / 2) * b.floor_height + 0.3
    yh = b.window_height * b.floor_height
    half = b.window_spacing * b.window_fill / 2
    quads, ids = [], []
    fl = np.arange(first, floors)
    # windows on the facade: columns along z (while > 0.6 px wide), rows by floor; ids stay with
    # the building as it comes closer (video: the same windows stay lit)
    sp = b.window_spacing
    col = np.arange(max(np.ceil((za - b.z0) / sp - 0.5), 0), np.floor((zb - b.z0) / sp - 0.8) + 1)
    zc = b.z0 + (col + 0.5) * sp
    if len(zc):
        keep = np.isin(zc, _resolvable(cam, road, b.offset, zc, 2 * half, 0.6))
        zc, col = zc[keep], col[keep]
    if len(zc):
        zz = np.stack([zc - half, zc + half])  # (2, n): near and far edge of each window
        kk = f / zz
        uu = cam.cx + kk * road.lateral(b.offset, zz)
        q = np.empty((len(ys), len(zc), 4, 2))
        y0 = ys[:, None]
        q[:, :, 0, 0], q[:, :, 1, 0], q[:, :, 2, 0], q[:, :, 3, 0] = uu[0], uu[1], uu[1], uu[0]
        q[:, :, 0, 1] = hor + kk[0] * (ch - y0)
        q[:, :, 1, 1] = hor + kk[1] * (ch - y0)
        q[:, :, 2, 1] = hor + kk[1] * (ch - y0 - yh)
        q[:, :, 3, 1] = hor + kk[0] * (ch - y0 - yh)
        quads.append(q.reshape(-1, 4, 2))
        ids.append((fl[:, None] * 1000 + col[None, :]).ravel())
    # windows on the end face
    if xa is not None:
        k = f / za
        cols = np.arange(b.window_spacing * 0.5, b.depth - 0.5, b.window_spacing)
        if len(cols) and k * 2 * half > 1.0:
            q = np.empty((len(ys), len(cols), 4, 2))
            u0 = cam.cx + k * (xa + s * cols - half)
            u1 = u0 + k * 2 * half
            v0 = hor + k * (ch - ys)[:, None]
            v1 = v0 - k * yh
            q[:, :, 0, 0], q[:, :, 1, 0], q[:, :, 2, 0], q[:, :, 3, 0] = u0, u1, u1, u0
            q[:, :, 0, 1], q[:, :, 1, 1], q[:, :, 2, 1], q[:, :, 3, 1] = v0, v0, v1, v1
            quads.append(q.reshape(-1, 4, 2))
            ids.append((500000 + fl[:, None] * 1000 + np.arange(len(cols))[None, :]).ravel())
    if quads:
        q = np.concatenate(quads)
        if night:
            lit = _hashed(np.concatenate(ids).astype(np.int64), b.seed) < b.lit
            _quads(img, q[~lit], _scale(b.window, 0.5))
            _quads(img, q[lit], _lit_colour(b.seed))
            _emit(q[lit])
        else:
            _quads(img, q, b.window)


def _hashed(i: np.ndarray, seed: int) -> np.ndarray:
    """Stable pseudo-random numbers in [0, 1) per index (lit windows stay lit from frame to frame)."""
    x = (i.astype(np.uint64) + np.uint64(seed & 0xFFFFFFFF)) * np.uint64(2654435761)
    x ^= x >> np.uint64(13)
    x *= np.uint64(0x5BD1E995)
    x ^= x >> np.uint64(15)
    return (x & np.uint64(0xFFFF)).astype(np.float64) / 65536.0


def _lit_colour(seed: int) -> Color:
    h = _hashed(np.arange(3), seed)
    return (80.0 + 90.0 * h[0], 180.0 + 50.0 * h[1], 220.0 + 35.0 * h[2])


def _draw_bridge(img: np.ndarray, amp: np.ndarray, cam: Camera, road: Road, b: Bridge) -> None:
    if b.z < Z_NEAR_OBJECT:
        return
    f = cam.focal
    W = img.shape[1]
    k0, k1 = f / b.z, f / (b.z + b.depth)
    y0, y1 = b.clearance, b.clearance + b.thickness
    v_front_bottom = cam.horizon + k0 * (cam.height - y0)
    v_front_top = cam.horizon + k0 * (cam.height - y1)
    v_back_bottom = cam.horizon + k1 * (cam.height - y0)
    v_par = cam.horizon + k0 * (cam.height - y1 - b.parapet)
    left, right = -50.0, W + 50.0
    # piers (front and back), then the dark underside, then the deck face and parapet
    for p in b.piers:
        for zz, shade in ((b.z + b.depth * 0.8, 0.55), (b.z + 0.6, 0.8)):
            x = float(road.lateral(p, np.array(zz)))
            u = cam.cx + f * x / zz
            hw = f * b.pier_width / 2 / zz
            vb = cam.horizon + f * cam.height / zz
            vt = cam.horizon + f * (cam.height - y0) / zz
            _fill(img, np.array([[u - hw, vb], [u + hw, vb], [u + hw, vt], [u - hw, vt]]), _scale(b.colour, shade))
    _fill(img, np.array([[left, v_front_bottom], [right, v_front_bottom], [right, v_back_bottom], [left, v_back_bottom]]), _scale(b.colour, 0.35))
    face = np.array([[left, v_front_top], [right, v_front_top], [right, v_front_bottom], [left, v_front_bottom]])
    _fill(img, face, b.colour)
    _fill(amp, face, 15)
    _fill(img, np.array([[left, v_front_bottom - 0.12 * (v_front_bottom - v_front_top)], [right, v_front_bottom - 0.12 * (v_front_bottom - v_front_top)],
                         [right, v_front_bottom], [left, v_front_bottom]]), _scale(b.colour, 0.7))
    _fill(img, np.array([[left, v_par], [right, v_par], [right, v_front_top], [left, v_front_top]]), b.parapet_colour)
    _lines(img, [np.array([[left, v_par], [right, v_par]])], _scale(b.parapet_colour, 1.2), max(1, int(k0 * 0.08)))


def draw_roadside_objects(img: np.ndarray, cam: Camera, road: Road, rs: Roadside, max_distance: float = 200.0,
                          emissive: np.ndarray | None = None) -> None:
    """The 3-D objects beside the road, far to near: trees, bushes, hedges, buildings, guardrails,
    fences, walls, noise barriers, poles, signs, kerbs, medians, bridges/overpasses. Drawn after the
    tarmac and paint; nothing stands on the tarmac (bridge decks and gantry beams pass above it).
    ``emissive``: optional (H, W) uint8 mask (e.g. the one draw_far_scenery filled) that receives 255
    where lights are (night: lit windows, lamps, lit shop signs); pixels of objects drawn over it are
    cleared."""
    if emissive is not None:
        _EMIT.img, _EMIT.mask = img, emissive
    try:
        _draw_objects(img, cam, road, rs, max_distance)
    finally:
        _EMIT.img = _EMIT.mask = None


def _draw_objects(img: np.ndarray, cam: Camera, road: Road, rs: Roadside, max_distance: float) -> None:
    H, W = img.shape[:2]
    rng = np.random.default_rng(rs.seed + 3)
    amp = np.zeros((H, W), np.uint8)
    zmax = min(max_distance, rs.far_limit)
    centre = (rs.road_left + rs.road_right) / 2
    foliage_amp = int(255 * rs.foliage_texture * 0.5)
    # items: (lateral distance from the road centre, distance, kind, index); drawn outermost first
    items = []
    for i, e in enumerate(rs.linears):
        items.append((abs(e.offset - centre) + (0.01 if e.kind != "kerb" else -0.5), 1e9, 0, i))
    for i, t in enumerate(rs.trees):
        if Z_NEAR_OBJECT <= t.z <= zmax:
            items.append((abs(t.offset - centre), t.z, 1, i))
    for i, p in enumerate(rs.poles):
        if Z_NEAR_OBJECT <= p.z <= zmax:
            items.append((abs(p.offset - centre), p.z, 2, i))
    for i, s in enumerate(rs.signs):
        if Z_NEAR_OBJECT <= s.z <= zmax:
            items.append((abs(s.offset - centre) if s.span is None else 0.0, s.z, 3, i))
    for i, b in enumerate(rs.buildings):
        if b.z1 >= Z_NEAR_OBJECT and b.z0 <= zmax:
            items.append((abs(b.offset - centre), b.z0, 4, i))
    items.sort(key=lambda it: (-it[0], -it[1]))
    bridges = sorted([b for b in rs.bridges if Z_NEAR_OBJECT <= b.z <= zmax], key=lambda b: -b.z)
    cuts = [zmax] + [b.z for b in bridges] + [0.0]
    for j in range(len(cuts) - 1):
        zhi, zlo = cuts[j], cuts[j + 1]
        ranges = _ranges(zlo, zhi, rs.gaps)
        for _, zz, kind, i in items:
            if kind == 0:
                for a, b in ranges:
                    _draw_linear(img, amp, cam, road, rs.linears[i], a, b)
            elif kind == 4:
                for a, b in ranges:
                    _draw_building(img, amp, cam, road, rs.buildings[i], a, b, rs.night)
            elif zlo <= zz < zhi and not (rs.gaps and _in_gap(zz, _half_size(rs, kind, i), rs.gaps)):
                if kind == 1:
                    _draw_tree(img, amp, cam, road, rs.trees[i], foliage_amp)
                elif kind == 2:
                    _draw_pole(img, cam, road, rs.poles[i], rs.poles, rs.night)
                else:
                    _draw_sign(img, cam, road, rs.signs[i])
        if j < len(bridges):
            _draw_bridge(img, amp, cam, road, bridges[j])
    _texture(img, amp, rng)


def _half_size(rs: Roadside, kind: int, i: int) -> float:
    """Half the along-road size of a point object (to keep it out of gaps)."""
    if kind == 1:
        return rs.trees[i].crown_width / 2
    if kind == 3:
        return 0.3
    return 0.3


def _ranges(zlo: float, zhi: float, gaps: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """[zlo, zhi] minus the gaps, as a list of ranges."""
    out = [(zlo, zhi)]
    for a, b in gaps:
        nxt = []
        for lo, hi in out:
            if b <= lo or a >= hi:
                nxt.append((lo, hi))
                continue
            if a > lo:
                nxt.append((lo, a))
            if b < hi:
                nxt.append((b, hi))
        out = nxt
    return out


def _in_gap(z: float, half: float, gaps: list[tuple[float, float]]) -> bool:
    return any(z + half > a and z - half < b for a, b in gaps)


def street_lights(cam: Camera, road: Road, rs: Roadside, max_distance: float = 200.0) -> np.ndarray:
    """(N, 3) image positions and sizes (u, v, radius px at ``cam``) of the street lamps in view:
    for glow halos at night."""
    out = []
    for p in rs.poles:
        if p.kind != "lamp" or not (Z_NEAR_OBJECT <= p.z <= min(max_distance, rs.far_limit)):
            continue
        x = float(road.lateral(p.offset, np.array(p.z)))
        for arm in ((p.arm, -p.arm) if p.double else (p.arm,)):
            u, v = (float(c) for c in _proj(cam, x + arm, p.z, p.height + 0.15))
            if -20 <= u <= cam.width + 20 and -20 <= v <= cam.height_px:
                out.append((u, v, max(cam.focal * 0.3 / p.z, 1.0)))
    return np.array(out, np.float64).reshape(-1, 3)


# ------------------------------------------------------------------------------------------------
# Shadows
# ------------------------------------------------------------------------------------------------
def draw_roadside_shadows(mask: np.ndarray, cam: Camera, road: Road, rs: Roadside, sun: tuple[float, float]) -> None:
    """Cast shadows of trees (dappled), poles, signs, buildings, walls, hedges, fences, guardrails and
    bridges on the ground, into a uint8 (H, W) mask (255 = full shadow; combined with what is there by
    maximum). sun = (azimuth, elevation) radians: azimuth 0 = sun straight ahead (shadows fall towards
    the camera), +pi/2 = sun on the right (shadows fall to the left); low elevation = long shadows."""
    H, W = mask.shape[:2]
    hz = int(np.clip(np.floor(cam.horizon), 0, H))
    if hz >= H:
        return
    az, el = float(sun[0]), float(np.clip(sun[1], 0.06, np.pi / 2))
    L = float(min(1.0 / np.tan(el), 12.0))
    dx, dz = -np.sin(az) * L, -np.cos(az) * L  # ground shift per metre of height
    px, pz = np.cos(az), -np.sin(az)  # unit vector across the shadow direction
    zmax = rs.far_limit
    off = np.array([0, hz], np.float64)
    gh = H - hz
    hard = np.zeros((gh, W), np.uint8)
    leafy = np.zeros((gh, W), np.uint8)
    znear = 0.3

    def ground_polys(xs: np.ndarray, zs: np.ndarray) -> list[np.ndarray]:
        """(n, k) ground polygons -> image polygons (clipped to z >= znear)."""
        if len(xs) == 0:
            return []
        ok = (zs >= znear).all(1)
        out = []
        if ok.any():
            u, v = _proj(cam, xs[ok], zs[ok], 0.0)
            out += list(np.stack([u, v - hz], 2))
        for x, z in zip(xs[~ok], zs[~ok]):
            p = _ground_poly(cam, x, z, znear)
            if len(p) >= 3:
                out.append(p - off)
        return out

    # vertical things: (x, z, y0, y1, half width) -> shadow quads
    vx, vz, vy0, vy1, vh = [], [], [], [], []

    def vertical(x: float, z: float, y0: float, y1: float, half: float) -> None:
        vx.append(x), vz.append(z), vy0.append(y0), vy1.append(y1), vh.append(half)

    def along(offset: float, z: np.ndarray, y0, y1) -> np.ndarray:
        """Shadow of a vertical band along the road (heights y0..y1)."""
        x = road.lateral(offset, z)
        xs = np.concatenate([x + y0 * dx, (x + y1 * dx)[::-1]])
        zs = np.concatenate([z + y0 * dz, (z + y1 * dz)[::-1]])
        return _ground_poly(cam, xs, zs, znear) - off

    polys: list[np.ndarray] = []
    soft: list[np.ndarray] = []
    arms_x, arms_z = [], []
    gaps = rs.gaps
    for p in rs.poles:
        if not (Z_NEAR_OBJECT <= p.z <= zmax) or (gaps and _in_gap(p.z, 0.3, gaps)):
            continue
        x = float(road.lateral(p.offset, np.array(p.z)))
        vertical(x, p.z, 0.0, p.height, max(p.width / 2, 0.08))
        if p.kind == "lamp" and p.arm:
            for a in ((p.arm, -p.arm) if p.double else (p.arm,)):
                arms_x.append(np.array([x, x + a, x + a, x]) + p.height * dx)
                arms_z.append(np.array([p.z - 0.06, p.z - 0.06, p.z + 0.06, p.z + 0.06]) + p.height * dz)
    if arms_x:
        polys += ground_polys(np.array(arms_x), np.array(arms_z))
    for s in rs.signs:
        if not (Z_NEAR_OBJECT <= s.z <= zmax) or (gaps and _in_gap(s.z, 0.3, gaps)):
            continue
        x = float(road.lateral(s.offset, np.array(s.z)))
        if s.span is None:
            vertical(x, s.z, 0.0, s.bottom, 0.05)
        else:
            for o in s.span:
                vertical(float(road.lateral(o, np.array(s.z))), s.z, 0.0, s.bottom + s.board_height, 0.15)
        vertical(x, s.z, s.bottom, s.bottom + s.board_height, s.board_width / 2)
    keep = [i for i, t in enumerate(rs.trees)
            if Z_NEAR_OBJECT <= t.z <= zmax and not (gaps and _in_gap(t.z, t.crown_width / 2, gaps))]
    trees = [rs.trees[i] for i in keep]
    if trees:
        tz = np.array([t.z for t in trees])
        tx = road.lateral(0.0, tz) + np.array([t.offset for t in trees])
        for t, x in zip(trees, tx):
            if t.trunk_height > 0:
                vertical(float(x), t.z, 0.0, t.crown_bottom + 0.3 * t.crown_height, max(t.trunk_width / 2, 0.06))
        cb = np.array([t.crown_bottom for t in trees])
        ch = np.array([t.crown_height for t in trees])
        cw = np.array([t.crown_width for t in trees])
        ym = cb + ch / 2
        a_along = np.hypot(cw / 2, ch / 2 * L)[:, None]
        a_across = (cw / 2)[:, None]
        nv = 24
        ang = np.linspace(0, 2 * np.pi, nv, endpoint=False)[None, :]
        # irregular crown outlines (stable per tree: hashed from its position)
        idx = np.array(keep)[:, None] * 131 + np.arange(nv)[None, :]
        wob = 1.0 + 0.45 * (_hashed(idx, rs.seed) - 0.5)
        wob = (wob + np.roll(wob, 1, 1) + np.roll(wob, -1, 1)) / 3
        n = max(np.hypot(dx, dz), 1e-6)
        ux, uz = dx / n, dz / n
        ca, sa = np.cos(ang) * wob, np.sin(ang) * wob
        xs = (tx + ym * dx)[:, None] + a_along * ca * ux + a_across * sa * px
        zs = (tz + ym * dz)[:, None] + a_along * ca * uz + a_across * sa * pz
        _fill(leafy, ground_polys(xs, zs), 255)
    for e, (z0, z1) in [(e, r) for e in rs.linears for r in _ranges(max(e.z0, Z_NEAR), min(e.z1, zmax), gaps)]:
        if z1 <= z0 + 0.1:
            continue
        z = _distances(z0, z1, 1.03)
        if len(z) < 2:
            continue
        if e.kind == "guardrail":
            polys.append(along(e.offset, z, e.height - 0.32, e.height))
        elif e.kind == "railing":
            for y in (0.05, e.height - 0.06):
                polys.append(along(e.offset, z, y, y + 0.06))
            soft.append(along(e.offset, z, 0.05, e.height))
        elif e.kind == "mesh":
            soft.append(along(e.offset, z, 0.0, e.height))
        elif e.kind in ("wall", "barrier", "jersey", "hedge", "kerb"):
            polys.append(along(e.offset, z, 0.0, e.height))
        elif e.kind == "canopy":
            p = along(e.offset, z, e.base, e.height * 0.9)
            if len(p) >= 3:
                _fill(leafy, p, 255)
    for b, (z0, z1) in [(b, r) for b in rs.buildings for r in _ranges(max(b.z0, Z_NEAR), min(b.z1, zmax), gaps)]:
        if z1 <= z0:
            continue
        xa = float(road.lateral(b.offset, np.array(z0)))
        xb = float(road.lateral(b.offset, np.array(z1)))
        fx = np.array([xa, xb, xb + b.side * b.depth, xa + b.side * b.depth])
        fz = np.array([z0, z1, z1, z0])
        hull = np.concatenate([np.stack([fx, fz], 1), np.stack([fx + b.height * dx, fz + b.height * dz], 1)]).astype(np.float32)
        hull = cv2.convexHull(hull)[:, 0].astype(np.float64)
        polys.append(_ground_poly(cam, hull[:, 0], hull[:, 1], znear) - off)
    for br in rs.bridges:
        fx = np.array([-120.0, 120.0, 120.0, -120.0])
        fz = np.array([br.z, br.z, br.z + br.depth, br.z + br.depth])
        pts = np.concatenate([np.stack([fx + y * dx, fz + y * dz], 1) for y in (br.clearance, br.clearance + br.thickness + br.parapet)])
        hull = cv2.convexHull(pts.astype(np.float32))[:, 0].astype(np.float64)
        polys.append(_ground_poly(cam, hull[:, 0], hull[:, 1], znear) - off)
        for p in br.piers:
            vertical(float(road.lateral(p, np.array(br.z))), br.z + 0.6, 0.0, br.clearance, br.pier_width / 2)
    if vx:
        x, z, y0, y1, h = (np.array(v)[:, None] for v in (vx, vz, vy0, vy1, vh))
        sx = np.array([-1.0, 1.0, 1.0, -1.0])[None, :]
        yy = np.concatenate([y0, y0, y1, y1], 1)
        polys += ground_polys(x + h * sx * px + yy * dx, z + h * sx * pz + yy * dz)
    _fill(hard, [p for p in polys if len(p) >= 3], 255)
    if soft:
        sm = np.zeros_like(hard)
        _fill(sm, [p for p in soft if len(p) >= 3], 110)
        np.maximum(hard, sm, out=hard)
    x, y, w, h = cv2.boundingRect(leafy)
    if w and h:
        # dapple: holes where perspective-correct noise is low (sun flecks through the foliage); the
        # noise is computed at half resolution
        rng = np.random.default_rng(rs.seed + 4)
        q = 2
        small = Camera(width=(W + q - 1) // q, height_px=(H + q - 1) // q, focal=cam.focal / q,
                       cx=(cam.cx + 0.5) / q - 0.5, horizon=(cam.horizon + 0.5) / q - 0.5, height=cam.height)
        m1, m2, row0 = _ground_maps(small, 12.0)
        if len(m1):
            src = window(bank()[1], rng, (1024, 2048))
            n = cv2.remap(src, m1, m2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
            thr = np.float32(_u(rng, -0.15, 0.12))
            holes = np.clip((n - thr) * np.float32(8.0 * 255.0), 0, 255).astype(np.uint8)
            holes = cv2.resize(holes, (W, holes.shape[0] * q), interpolation=cv2.INTER_LINEAR)
            top = hz - row0 * q
            if top < 0:
                holes = np.concatenate([np.repeat(holes[:1], -top, 0), holes])
                top = 0
            holes = holes[top : top + gh]
            if holes.shape[0] < gh:
                holes = np.concatenate([holes, np.repeat(holes[-1:], gh - holes.shape[0], 0)])
            roi = leafy[y : y + h, x : x + w]
            cv2.multiply(roi, holes[y : y + h, x : x + w], dst=roi, scale=1 / 255.0)
        np.maximum(hard, leafy, out=hard)
    sigma = max(cam.focal / 500.0 * 0.7, 0.4)
    hard = cv2.GaussianBlur(hard, (0, 0), sigma)
    roi = mask[hz:]
    np.maximum(roi, hard, out=roi)
