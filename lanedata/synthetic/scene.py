"""Scene descriptions and the random samplers that make one per CULane test category.

A :class:`Scene` holds every random choice behind one frame (camera, road, markings, objects,
light); :func:`lanedata.synthetic.render.render_scene` turns it into pixels and labels
deterministically. Samplers draw only from the ``numpy.random.Generator`` they are given.

What makes each category hard (as in CULane):

- ``normal``: daytime, clear paint; the baseline.
- ``crowd``: vehicles ahead and alongside occlude the lanes (which stay annotated).
- ``hlight``: sun or lights in view: glare, veiling, over-exposure washing out the paint.
- ``shadow``: tree and building shadows across the road.
- ``noline``: paint faded or gone; the lanes stay annotated.
- ``arrow``: road arrows and text, painted like lanes but not lanes.
- ``curve``: strong curvature.
- ``cross``: an intersection: zebra crossing, stop line, transverse lines; no lane annotated.
- ``night``: dark, headlight cone, lights, sensor noise.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from runtime.culane import CATEGORIES
from lanedata.synthetic.geometry import Camera, Road
from lanedata.synthetic.mount import Mount, Window, sample_mount, source_camera
from lanedata.synthetic.rig import Rig, sample_rig
from lanedata.synthetic.roadside import Roadside, sample_roadside
from lanedata.synthetic.surface import Surface, sample_surface
from lanedata.synthetic.vehicles import Vehicle, sample_vehicles

Color = tuple[float, float, float]
"""BGR in 0..255."""

WHITE: Color = (226.0, 230.0, 232.0)
YELLOW: Color = (40.0, 186.0, 228.0)

TRAIN_MIX = {
    "normal": 0.27, "crowd": 0.22, "hlight": 0.04, "shadow": 0.05, "noline": 0.11,
    "arrow": 0.04, "curve": 0.04, "cross": 0.06, "night": 0.17,
}
"""Category mix of the training and validation splits: CULane's test mix, rare ones raised to >= 4 %."""


@dataclass
class Marking:
    """A painted longitudinal line. ``lane_id`` is its CULane ID when it is annotated, else None."""

    index: float
    lane_id: int | None
    dashed: bool
    color: Color
    paint_width: float
    dash_length: float = 3.0
    dash_period: float = 12.0
    dash_phase: float = 0.0
    double: bool = False
    wear: float = 0.0
    painted: bool = True
    start: float = 0.0
    end: float = 80.0


@dataclass
class Decal:
    """Paint on the road that is not a lane: an arrow or a word, on a ground rectangle."""

    kind: str  # "straight", "left", "right", "text"
    lateral: float
    distance: float
    length: float
    width: float
    text: str = ""
    wear: float = 0.0


@dataclass
class ShadowBlob:
    """A shadow on the ground: an ellipse (tree) or a band across the road (building)."""

    lateral: float
    distance: float
    size_x: float
    size_z: float
    band: bool = False


@dataclass
class Crossing:
    """An intersection ahead/around: zebra crossing, stop line, open tarmac of the crossing road."""

    distance: float
    zebra_depth: float
    stripe_width: float
    stop_line: bool
    crossing_road_depth: float
    far_lanes_from: float


@dataclass
class Light:
    """Illumination of the frame."""

    night: bool = False
    ambient: float = 1.0
    gain: float = 1.0
    tint: Color = (1.0, 1.0, 1.0)
    glare: tuple[float, float, float, float] | None = None  # u, v, radius px, strength 0..1
    veil: float = 0.0
    headlight_range: float = 35.0
    headlight_power: float = 0.8  # brightness of the headlight cone's centre, 0..1 of daylight
    street_lights: list[tuple[float, float]] = field(default_factory=list)  # (u, v)
    noise: float = 3.0
    blur: float = 0.0
    motion_blur: int = 0
    jpeg_quality: int = 90
    vignette: float = 0.0
    banding: float = 0.0  # rolling-exposure flicker: amplitude of a row-wise gain ripple (0..1)
    chroma: float = 0.0  # low-frequency colour noise amplitude (0..255 units)
    sun: tuple[float, float] | None = None  # azimuth (rad, 0 = ahead, +pi/2 = right), elevation (rad)
    shadow_depth: float = 0.55  # how dark full shadow is (0..1)


@dataclass
class Scene:
    """Everything needed to render one frame."""

    category: str
    camera: Camera
    road: Road
    markings: list[Marking]
    road_left: float  # lateral offsets (m, from ego-lane centre) of the tarmac edges
    road_right: float
    asphalt: Color
    offroad: Color
    sky_top: Color
    sky_horizon: Color
    light: Light
    annotate_until: float = 70.0
    vehicles: list[Vehicle] = field(default_factory=list)
    decals: list[Decal] = field(default_factory=list)
    shadows: list[ShadowBlob] = field(default_factory=list)
    crossing: Crossing | None = None
    curb: bool = False
    seams: list[float] = field(default_factory=list)  # lateral offsets of tar seams (dark lines)
    scenery_seed: int = 0  # static randomness: scenery, textures, paint wear
    noise_seed: int = 0  # per-frame randomness: sensor noise
    travelled: float = 0.0  # metres driven (video: scrolls dashes)
    rig: Rig | None = None  # the dashcam: hood, margins, overlay, lens (None: a bare pinhole camera)
    surface: Surface | None = None  # tarmac texture details
    urban: float = 0.5  # 0 open road .. 1 city street (roadside scenery)
    mount: Mount | None = None  # where the camera sits and what it frames (None: a scene built by hand)
    roadside: Roadside | None = None  # trees, buildings, guardrails, fences, poles, signs, bridges (None: flat scenery)


# ------------------------------------------------------------------------------------------------
def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _grey(rng: np.random.Generator, lo: float, hi: float, tint: float = 4.0) -> Color:
    g = _u(rng, lo, hi)
    return (g + _u(rng, -tint, tint), g + _u(rng, -tint, tint), g + _u(rng, -tint, tint))


LANE_WIDTH_M = (2.8, 3.9)
"""Lane width in metres: urban lanes of 2.75-3.25 m (EU and Chinese urban design guides) up to
motorway lanes of 3.5-3.75 m (China JTG B01 3.75 m, US Interstate 12 ft = 3.66 m, EU 3.5-3.75 m)."""

NEIGHBOUR_WIDTH = (0.85, 1.15)
"""A neighbouring lane's width as a multiple of the ego lane's: one carriageway's lanes differ by a
few tenths of a metre at most (e.g. 3.5 next to 3.75 m)."""


def sample_camera(rng: np.random.Generator, frame: str | None = None) -> tuple[Camera, Mount, Window]:
    """A dashcam drawn from physics and specs (:mod:`lanedata.synthetic.mount`): the pinhole camera in
    source pixels, its mount, and the recorded frame's window (``frame``: force one frame kind)."""
    mount = sample_mount(rng, frame)
    camera, window = source_camera(mount)
    return camera, mount, window


def sample_road(rng: np.random.Generator, category: str) -> Road:
    width = _u(rng, *LANE_WIDTH_M)
    if category == "curve":
        curvature = float(rng.choice([-1, 1])) * _u(rng, 3.5e-3, 1.1e-2)
        dcurv = _u(rng, -1e-4, 1e-4)
    else:
        curvature = _u(rng, -1.2e-3, 1.2e-3)
        dcurv = _u(rng, -2e-5, 2e-5)
    # Mostly centred in the lane; sometimes drifting towards a line, as in a lane change.
    ego = _u(rng, -0.3, 0.3) * width if rng.random() < 0.85 else _u(rng, -0.46, 0.46) * width
    return Road(lane_width=width, ego_offset=ego, heading=_u(rng, -0.025, 0.025), curvature=curvature, dcurvature=dcurv)


def sample_markings(rng: np.random.Generator) -> tuple[list[Marking], float, float]:
    """Lines of the road and its tarmac edges (lateral offsets in lane widths)."""
    left_lanes = 2 if rng.random() < 0.72 else 1  # lanes 1 and 2, or only 2
    right_lanes = 2 if rng.random() < 0.72 else 1
    extra_left = left_lanes == 2 and rng.random() < 0.25  # a 5th/6th line, never annotated
    extra_right = right_lanes == 2 and rng.random() < 0.25
    wl, wr = _u(rng, *NEIGHBOUR_WIDTH), _u(rng, *NEIGHBOUR_WIDTH)
    indices: list[tuple[float, int | None]] = []
    if extra_left:
        indices.append((-1.5 - wl, None))
    if left_lanes == 2:
        indices.append((-0.5 - wl, 1))
    indices += [(-0.5, 2), (0.5, 3)]
    if right_lanes == 2:
        indices.append((0.5 + wr, 4))
    if extra_right:
        indices.append((0.5 + wr + _u(rng, 0.8, 1.2), None))
    lo, hi = indices[0][0], indices[-1][0]
    yellow_left = rng.random() < 0.2
    base_wear = _u(rng, 0.0, 0.45) if rng.random() < 0.6 else _u(rng, 0.3, 0.7)
    period = _u(rng, 6.0, 15.0)  # urban 2 m dashes / 4 m gaps up to highway 6 / 9 m
    dash = _u(rng, 2.0, min(6.0, period * 0.5))
    end = _u(rng, 45, 110)
    markings = []
    for index, lane_id in indices:
        edge = index in (lo, hi)
        dashed = not edge and rng.random() < 0.85
        color = YELLOW if (yellow_left and index == lo) else WHITE
        markings.append(
            Marking(
                index=index,
                lane_id=lane_id,
                dashed=dashed,
                color=color,
                paint_width=_u(rng, 0.10, 0.20),
                dash_length=dash,
                dash_period=period,
                dash_phase=_u(rng, 0, period),
                double=(color == YELLOW and rng.random() < 0.5),
                wear=float(np.clip(base_wear + _u(rng, -0.1, 0.15), 0, 0.95)),
                painted=rng.random() > 0.03,
                end=end + _u(rng, -5, 10),
            )
        )
    road_left = lo - _u(rng, 0.12, 0.6)
    road_right = hi + _u(rng, 0.12, 0.6)
    return markings, road_left, road_right


def sample_light(rng: np.random.Generator, category: str, camera: Camera) -> Light:
    light = Light(
        gain=_u(rng, 0.8, 1.2),
        tint=(_u(rng, 0.9, 1.1), _u(rng, 0.94, 1.06), _u(rng, 0.9, 1.1)),
        noise=_u(rng, 1.5, 6.0),
        blur=_u(rng, 0.3, 1.6),
        motion_blur=int(rng.integers(5, 15)) if rng.random() < 0.15 else 0,
        jpeg_quality=int(rng.integers(45, 93)),
        vignette=_u(rng, 0.0, 0.35),
        banding=_u(rng, 0.01, 0.05) if rng.random() < 0.15 else 0.0,
        chroma=_u(rng, 1.0, 6.0),
    )
    if category != "night" and rng.random() < 0.6:
        light.sun = (_u(rng, -np.pi, np.pi), _u(rng, 0.25, 1.1))
        light.shadow_depth = _u(rng, 0.4, 0.7)
    if category == "shadow" and light.sun is None:
        light.sun = (_u(rng, -np.pi, np.pi), _u(rng, 0.3, 1.0))
    if category == "night":
        light.night = True
        light.ambient = _u(rng, 0.04, 0.22)
        light.gain = _u(rng, 0.9, 1.4)
        light.tint = (_u(rng, 0.85, 1.25), _u(rng, 0.9, 1.05), _u(rng, 0.8, 1.15))
        light.noise = _u(rng, 5.0, 12.0)
        light.chroma = _u(rng, 3.0, 10.0)
        light.headlight_range = _u(rng, 18, 50)
        light.headlight_power = _u(rng, 0.45, 0.95)
        light.street_lights = [
            (_u(rng, 0, camera.width), _u(rng, camera.horizon - 120, camera.horizon - 10))
            for _ in range(int(rng.integers(0, 8)))
        ]
        if rng.random() < 0.35:  # oncoming headlights
            light.glare = (_u(rng, 200, 1000), camera.horizon + _u(rng, 5, 40), _u(rng, 30, 110), _u(rng, 0.5, 0.9))
    elif rng.random() < 0.08:  # dusk: dim, warm, headlights on
        light.night = True
        light.ambient = _u(rng, 0.3, 0.6)
        light.tint = (_u(rng, 0.8, 0.95), _u(rng, 0.9, 1.0), _u(rng, 1.0, 1.2))
        light.headlight_range = _u(rng, 18, 40)
        light.headlight_power = _u(rng, 0.4, 0.8)
        light.noise = _u(rng, 3.0, 8.0)
    elif category == "hlight":
        light.gain = _u(rng, 1.15, 1.7)
        light.veil = _u(rng, 0.15, 0.45)
        u = _u(rng, 250, 1400)
        v = camera.horizon + _u(rng, -80, 60)
        light.glare = (u, v, _u(rng, 120, 420), _u(rng, 0.75, 1.0))
    elif rng.random() < 0.1:  # over-exposed: bright frame, clipped sky and paint
        light.gain = _u(rng, 1.2, 1.5)
    elif rng.random() < 0.08:  # mild glare elsewhere
        light.glare = (_u(rng, 0, camera.width), camera.horizon - _u(rng, 0, 80), _u(rng, 60, 200), _u(rng, 0.2, 0.5))
    return light


def sample_scene(rng: np.random.Generator, category: str) -> Scene:
    """One random scene of a CULane test category."""
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}; expected one of {CATEGORIES}")
    road = sample_road(rng, category)
    camera, mount, window = sample_camera(rng)
    markings, road_left, road_right = sample_markings(rng)
    concrete = rng.random() < 0.15
    asphalt = _grey(rng, 140, 175, 5) if concrete else _grey(rng, 65, 125, 4)
    offroad = (_u(rng, 40, 90), _u(rng, 70, 130), _u(rng, 50, 110)) if rng.random() < 0.6 else _grey(rng, 90, 150, 8)
    overcast = rng.random() < 0.4
    sky_top = _grey(rng, 170, 220, 5) if overcast else (_u(rng, 170, 230), _u(rng, 120, 170), _u(rng, 60, 110))
    sky_horizon = _grey(rng, 190, 240, 5)
    light = sample_light(rng, category, camera)
    scene = Scene(
        category=category,
        camera=camera,
        road=road,
        markings=markings,
        road_left=road_left,
        road_right=road_right,
        asphalt=asphalt,
        offroad=offroad,
        sky_top=sky_top,
        sky_horizon=sky_horizon,
        light=light,
        annotate_until=min(m.end for m in markings),
        curb=rng.random() < 0.4,
        seams=[_u(rng, road_left, road_right) for _ in range(int(rng.integers(0, 3)))] if rng.random() < 0.3 else [],
        scenery_seed=int(rng.integers(0, 2**31)),
        noise_seed=int(rng.integers(0, 2**31)),
        rig=sample_rig(rng, camera, window),
        mount=mount,
        urban=float(rng.beta(1.2, 1.2)),
    )
    lanes = sorted(m.index for m in markings)
    scene.surface = sample_surface(
        rng, road.lane_width, [(a + b) / 2 * road.lane_width for a, b in zip(lanes[:-1], lanes[1:])],
        road_left * road.lane_width, road_right * road.lane_width, light.night,
    )
    scene.roadside = sample_roadside(rng, road, road_left * road.lane_width, road_right * road.lane_width, light.night, scene.urban)
    n_vehicles = int(rng.integers(0, 3)) if rng.random() < 0.35 else 0
    if category == "crowd":
        n_vehicles = int(rng.integers(3, 8))
    if category == "night" and rng.random() < 0.5:
        n_vehicles = int(rng.integers(1, 5))
    centres = [(a + b) / 2 * road.lane_width for a, b in zip(lanes[:-1], lanes[1:])]
    scene.vehicles = sample_vehicles(rng, road, centres, n_vehicles)
    if category == "noline":
        lines = [m for m in markings if m.lane_id is not None]
        for m in lines:
            m.wear = _u(rng, 0.75, 1.0)
        for m in rng.choice(lines, size=int(rng.integers(1, len(lines) + 1)), replace=False):
            m.painted = False
    if category == "shadow":
        scene.shadows = [
            ShadowBlob(
                lateral=_u(rng, road_left * road.lane_width - 6, road_right * road.lane_width + 6),
                distance=_u(rng, 5, 60),
                size_x=_u(rng, 1.5, 9.0),
                size_z=_u(rng, 1.5, 12.0),
            )
            for _ in range(int(rng.integers(4, 14)))
        ]
        for _ in range(int(rng.integers(0, 3))):
            scene.shadows.append(ShadowBlob(0.0, _u(rng, 6, 50), 0.0, _u(rng, 3, 20), band=True))
    if category == "arrow" or (category in ("normal", "crowd", "night") and rng.random() < 0.12):
        for _ in range(int(rng.integers(1, 4))):
            centre = float(rng.choice([-1, 0, 0, 1])) * road.lane_width
            kind = str(rng.choice(["straight", "left", "right", "text"], p=[0.35, 0.2, 0.2, 0.25]))
            scene.decals.append(
                Decal(
                    kind=kind,
                    lateral=centre + _u(rng, -0.2, 0.2),
                    distance=_u(rng, 7, 40),
                    length=_u(rng, 3.5, 6.0),
                    width=_u(rng, 1.0, 1.8),
                    text=str(rng.choice(["STOP", "SLOW", "BUS", "KEEP", "30", "50", "XING"])),
                    wear=_u(rng, 0.0, 0.4),
                )
            )
    if category == "cross":
        distance = _u(rng, 4.0, 18.0)
        scene.crossing = Crossing(
            distance=distance,
            zebra_depth=_u(rng, 3.0, 5.0),
            stripe_width=_u(rng, 0.4, 0.6),
            stop_line=rng.random() < 0.7,
            crossing_road_depth=_u(rng, 10.0, 25.0),
            far_lanes_from=distance + _u(rng, 25.0, 45.0),
        )
        for m in markings:
            m.lane_id = None  # CULane annotates no lanes at crossings
            m.start = scene.crossing.far_lanes_from
        c = scene.crossing
        scene.roadside.gaps = [(c.distance - 2.5, c.distance + c.zebra_depth + c.crossing_road_depth + 2)]
    return scene
