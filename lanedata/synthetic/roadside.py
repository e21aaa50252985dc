"""Roadside scenery of the synthetic scenes as data: what lies and stands beside and above the
road (ground bands, kerbs, barriers, fences, hedges, trees, poles, signs, buildings, bridges, the far
skyline), and its random sampling.

A :class:`Roadside` is sampled once per scene (:func:`sample_roadside`) in road coordinates:
lateral offsets are metres from the ego-lane centre (like ``road_left``/``road_right``; negative to
the left), distances are metres ahead along the road, heights are metres above the road plane;
colours are BGR 0..255. Elements are placed relative to the road's curve (an offset stays an offset
at every distance). The far :class:`Skyline` uses angles instead (tangent units: ``a`` across,
``e`` above the horizon).

Things a lane detector confuses with lanes are the point of this module: guardrail beams, kerb
edges, fence rails, hedge and wall bases, building plinths, pole shadows across the road,
far-carriageway paint behind a median. Structure and colours are domain-randomized per scene.
:meth:`Roadside.advanced` gives the same roadside after driving on (video).

Drawing it is :mod:`lanedata.synthetic.roadside_draw`'s job.
"""
from __future__ import annotations

import colorsys
from dataclasses import dataclass, field, replace

import numpy as np

from lanedata.synthetic.geometry import Road

Color = tuple[float, float, float]
"""BGR in 0..255."""

Z_NEAR = 1.0  # m: nearest distance anything is drawn at (long elements reach the bottom row)


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
# Tree crown shapes (indices of the sprites roadside_draw renders)
# ------------------------------------------------------------------------------------------------
N_CROWN_KINDS = 5  # round, poplar (tall), conifer, bush, sparse
CROWN_KIND_P = (0.35, 0.25, 0.12, 0.03, 0.25)
CROWN_VARIANTS = 4


def _crown_index(rng: np.random.Generator, kind: int) -> int:
    return kind * CROWN_VARIANTS + int(rng.integers(0, CROWN_VARIANTS))


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
