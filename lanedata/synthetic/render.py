"""Render a :class:`~lanedata.synthetic.scene.Scene` into an image, its lanes and its label.

The scene is drawn at ``RENDER_SCALE`` of the output size (sky and scenery, ground, tarmac,
paint, shadows, vehicles, light, glare, blur), upsampled with the pixel-centre convention, and
finished at full size with sensor noise: a soft dashcam-like picture at a quarter of the cost.

Lanes are annotated like CULane, on the full-size camera: points every 10 px upward from
y = 590 (the bottom edge), at the painted line's centre, through occlusions and worn or missing
paint, up to the scene's annotation distance; the label map draws the annotated lanes 16 px wide
(values 1..4) through the same spline the official evaluator uses.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from lanedata.labels.lane_label import draw_label
from lanedata.synthetic.geometry import Camera
from lanedata.synthetic.marking_labels import (
    DECAL_CLASSES, STOP_LINE, ZEBRA, clear_changed, fill_id, keep_visible, line_class, train_id,
)
from lanedata.synthetic.primitives import ONE, SHIFT, box, distances, fill, ground_quad, strip
from lanedata.synthetic.rig import Lens, draw_hood, draw_overlay, margin_mask
from lanedata.synthetic.roadside_draw import (
    draw_far_scenery, draw_offroad_ground, draw_roadside_objects, draw_roadside_shadows, street_lights,
)
from lanedata.synthetic.scene import WHITE, YELLOW, Crossing, Decal, Marking, Scene
from lanedata.synthetic.surface import draw_surface
from lanedata.synthetic.textures import bank, window
from lanedata.synthetic.vehicles import draw_vehicle, draw_vehicle_shadow

RENDER_SCALE = 0.5
ANNOTATION_STEP = 10
ANNOTATION_MARGIN = 40.0  # px outside the image that annotation points may reach, as in CULane


@dataclass
class Rendered:
    """A rendered frame: (H, W, 3) uint8 BGR image, lanes by CULane ID ((N, 2) x, y, bottom
    first), and the (H, W) uint8 label map (0 background, 1..4 lanes)."""

    image: np.ndarray
    lanes: dict[int, np.ndarray]
    label: np.ndarray
    classes: np.ndarray | None = None  # (H, W) uint8 ApolloScape train IDs of the visible markings (render_scene(classes=True))

    @property
    def exist(self) -> tuple[int, int, int, int]:
        return tuple(int(i in self.lanes) for i in (1, 2, 3, 4))  # type: ignore[return-value]


# ------------------------------------------------------------------------------------------------
# Drawing helpers
# ------------------------------------------------------------------------------------------------
# ------------------------------------------------------------------------------------------------
# Annotation and label (full-size camera)
# ------------------------------------------------------------------------------------------------
def annotate(scene: Scene) -> dict[int, np.ndarray]:
    """CULane-style annotation points of the scene's annotated lanes, through the rig's lens.

    The line's centre is traced densely on the pinhole camera (from below the frame, which the
    lens pulls into view, up to the annotation distance), warped by the lens (distortion and
    roll), and sampled on rows 590, 580, ... of the output image; the first run of rows whose
    points lie within ``ANNOTATION_MARGIN`` of the frame is kept, as CULane does."""
    cam, road = scene.camera, scene.road
    lens = Lens.of(scene.rig, cam) if scene.rig is not None else None
    win = scene.rig.window if scene.rig is not None else None
    left, right, bottom_row = (win.left, win.right, win.bottom) if win is not None else (0, cam.width, cam.height_px)
    bottom = cam.height_px * (1.6 if lens is not None and not lens.identity else 1.0)
    dense = np.arange(bottom, cam.horizon + 1.0, -2.0, dtype=np.float64)
    z = cam.row_to_distance(dense)
    dense, z = dense[z <= scene.annotate_until], z[z <= scene.annotate_until]
    rows = np.arange(bottom_row, cam.horizon + 2, -ANNOTATION_STEP, dtype=np.float64)
    if win is not None:
        rows = rows[rows >= win.top]
    lanes: dict[int, np.ndarray] = {}
    for m in scene.markings:
        if m.lane_id is None or len(z) < 2:
            continue
        u, v = cam.project(road.lateral(m.index * road.lane_width, z), z)
        if lens is not None and not lens.identity:
            pu, pv = u, v
            u, v = lens.forward(u, v)
            bu, bv = lens.inverse(u, v)  # points the lens cannot show (far outside the frame: no fixed point) are dropped
            mapped = (np.abs(bu - pu) < 0.01) & (np.abs(bv - pv) < 0.01)
            u, v = u[mapped], v[mapped]
        # keep the part that climbs monotonically up the image (v decreasing with distance)
        climbing = np.concatenate([[True], np.diff(v) < 0])
        n = len(v) if climbing.all() else int(np.argmin(climbing))
        u, v = u[:n], v[:n]
        if n < 2:
            continue
        within = (rows <= v.max()) & (rows >= v.min())
        ur = np.interp(rows[within], v[::-1], u[::-1])
        margin = ANNOTATION_MARGIN if win is None else 0.0  # a letterboxed frame's lanes stop at its edge (the bars are not road)
        ok = (ur >= left - margin) & (ur <= right + margin)
        if not ok.any():
            continue
        start = int(np.argmax(ok))  # the first run of points in range, from the bottom up
        stop = start + (len(ok) - start if ok[start:].all() else int(np.argmin(ok[start:])))
        pts = np.stack([ur[start:stop], rows[within][start:stop]], 1)
        inside = (pts[:, 0] >= left) & (pts[:, 0] < right) & (pts[:, 1] < bottom_row)
        if inside.sum() >= 2:
            lanes[m.lane_id] = np.round(pts, 3)
    return lanes


# ------------------------------------------------------------------------------------------------
# Background
# ------------------------------------------------------------------------------------------------
def draw_scenery(img: np.ndarray, scene: Scene, cam: Camera) -> None:
    """Sky gradient and a band of hills, trees and buildings along the horizon."""
    rng = np.random.default_rng(scene.scenery_seed)
    s = cam.focal / scene.camera.focal
    hz = int(np.clip(np.ceil(cam.horizon), 1, cam.height_px - 1))
    t = np.linspace(0.0, 1.0, hz, dtype=np.float32)[:, None, None]
    sky = np.array(scene.sky_top, np.float32) * (1 - t) + np.array(scene.sky_horizon, np.float32) * t
    img[:hz] = cv2.resize(sky, (cam.width, hz), interpolation=cv2.INTER_NEAREST)
    hill = np.array(scene.offroad, np.float32) * rng.uniform(0.5, 0.8)
    xs = np.linspace(-50 * s, cam.width + 50 * s, 12)
    ys = cam.horizon - rng.uniform(3, 35, size=12) * s
    tail = [[cam.width + 50 * s, cam.horizon + 2 * s], [-50 * s, cam.horizon + 2 * s]]
    fill(img, np.concatenate([np.stack([xs, ys], 1), tail]), hill)
    for _ in range(int(rng.integers(4, 16))):
        u = rng.uniform(-100, cam.width / s + 100) * s
        if rng.random() < 0.55:  # tree
            r = rng.uniform(8, 45) * s
            colour = (rng.uniform(20, 60), rng.uniform(50, 100), rng.uniform(25, 60))
            centre = (int(u * ONE), int((cam.horizon - r * 0.8) * ONE))
            cv2.ellipse(img, centre, (int(r * ONE), int(r * 1.2 * ONE)), 0, 0, 360, colour, -1, cv2.LINE_AA, SHIFT)
        else:  # building
            bw, bh, g = rng.uniform(30, 160) * s, rng.uniform(15, 110) * s, rng.uniform(80, 200)
            colour = (g, g * rng.uniform(0.9, 1.05), g * rng.uniform(0.9, 1.1))
            fill(img, box(u, cam.horizon - bh, u + bw, cam.horizon + s), colour)


def draw_ground(img: np.ndarray, scene: Scene, cam: Camera) -> np.ndarray:
    """Off-road ground, tarmac, curbs and (at crossings) the crossing road's tarmac; returns the
    tarmac's (h, w) float32 coverage."""
    road = scene.road
    hz = int(np.clip(np.floor(cam.horizon), 0, cam.height_px - 1))
    if scene.roadside is not None:
        draw_offroad_ground(img, cam, road, scene.roadside)
    else:
        img[hz:] = np.tile(np.array(scene.offroad, np.float32), (cam.width, 1))
    far = 300.0 if road.curvature == 0 else min(300.0, 0.9 / abs(road.curvature))
    z = distances(cam.nearest_visible * 0.9, far)
    lo, hi = scene.road_left * road.lane_width, scene.road_right * road.lane_width
    tarmac = np.zeros((cam.height_px, cam.width), np.float32)
    fill(tarmac, strip(cam, road, (lo + hi) / 2, (hi - lo) / 2, z), 1.0)
    if scene.crossing is not None:
        c = scene.crossing
        shift = float(road.lateral(0.0, np.array(c.distance)))
        z0, z1 = c.distance - 2.5, c.distance + c.zebra_depth + c.crossing_road_depth + 2
        fill(tarmac, ground_quad(cam, shift - 80, shift + 80, z0, z1), 1.0)
    asphalt = np.empty_like(img)
    asphalt[:] = np.array(scene.asphalt, np.float32)
    m = cv2.merge([tarmac, tarmac, tarmac])
    img += m * (asphalt - img)
    if scene.curb and scene.roadside is None:  # the roadside draws its own kerbs
        kerb = np.clip(np.array(scene.asphalt) * 1.5, 0, 235)
        for edge in (lo - 0.15, hi + 0.15):
            fill(img, strip(cam, road, edge, 0.15, z), kerb)
    return tarmac


# ------------------------------------------------------------------------------------------------
# Paint (alpha layers, 0..255)
# ------------------------------------------------------------------------------------------------
def painted_intervals(m: Marking, near: float, travelled: float) -> list[tuple[float, float]]:
    """Distance intervals (m) where a line has paint: one for solid lines, the dashes otherwise.
    ``travelled`` (m) moves the dash pattern towards the camera as the car drives."""
    start, end = max(near, m.start), m.end
    if end <= start:
        return []
    if not m.dashed:
        return [(start, end)]
    out = []
    k = int(np.floor((start + travelled - m.dash_phase) / m.dash_period)) - 1
    while (a := k * m.dash_period + m.dash_phase - travelled) <= end:
        if a + m.dash_length > start:
            out.append((max(a, start), min(a + m.dash_length, end)))
        k += 1
    return out


def paint_markings(scene: Scene, cam: Camera, white: np.ndarray, yellow: np.ndarray, classes: np.ndarray | None = None) -> None:
    """Longitudinal lines; the alpha of a line is 255 * (1 - wear). ``classes``: also their train IDs
    (:mod:`~lanedata.synthetic.marking_labels`)."""
    road = scene.road
    near = cam.nearest_visible * 0.97
    for m in scene.markings:
        if not m.painted:
            continue
        layer = yellow if m.color == YELLOW else white
        cid = train_id(line_class(m)) if classes is not None else 0
        offsets = [m.index * road.lane_width]
        if m.double:
            gap = m.paint_width + 0.12
            offsets = [offsets[0] - gap / 2, offsets[0] + gap / 2]
        for a, b in painted_intervals(m, near, scene.travelled):
            z = distances(a, b)
            for off in offsets if len(z) >= 2 else []:
                polygon = strip(cam, road, off, m.paint_width / 2, z)
                fill(layer, polygon, 255 * (1.0 - m.wear))
                if classes is not None:
                    fill_id(classes, polygon, cid)


def _arrow_outline(kind: str) -> np.ndarray:
    """Arrow outline in unit decal coordinates (x across 0..1, y along: 0 far .. 1 near)."""
    if kind == "straight":
        return np.array([[0.4, 1.0], [0.6, 1.0], [0.6, 0.38], [0.9, 0.4], [0.5, 0.0], [0.1, 0.4], [0.4, 0.38]])
    turn = np.array(
        [[0.55, 1.0], [0.72, 1.0], [0.72, 0.3], [0.3, 0.3], [0.3, 0.12], [0.02, 0.37], [0.3, 0.62], [0.3, 0.45], [0.55, 0.45]]
    )
    if kind == "right":
        turn[:, 0] = 1.0 - turn[:, 0]
    return turn


def _decal_canvas(decal: Decal, cw: int, ch: int) -> np.ndarray:
    """The decal drawn top-down on a (ch, cw) uint8 canvas (255 paint): an arrow (one direction or two,
    ``straight_left`` etc.), a word, a hollow diamond, or transverse speed-reduction bars."""
    canvas = np.zeros((ch, cw), dtype=np.uint8)
    scale = np.array([cw - 1, ch - 1])
    if decal.kind == "text":
        font, thick = cv2.FONT_HERSHEY_SIMPLEX, 3
        (tw, th), base = cv2.getTextSize(decal.text, font, 1.0, thick)
        small = np.zeros((th + base + 6, tw + 6), dtype=np.uint8)
        cv2.putText(small, decal.text, (3, th + 3), font, 1.0, 255, thick, cv2.LINE_AA)
        return cv2.resize(small, (cw, ch), interpolation=cv2.INTER_LINEAR)
    if decal.kind == "diamond":
        rhombus = np.array([[0.5, 0.0], [1.0, 0.5], [0.5, 1.0], [0.0, 0.5]])
        fill(canvas, rhombus * scale, 255)
        fill(canvas, (0.5 + (rhombus - 0.5) * 0.7) * scale, 0)
        return canvas
    if decal.kind == "reduction":
        for k in range(4):
            fill(canvas, box(0.0, k * 0.28, 1.0, k * 0.28 + 0.12) * scale, 255)
        return canvas
    for part in decal.kind.split("_"):
        fill(canvas, _arrow_outline(part) * scale, 255)
    return canvas


def paint_decal(scene: Scene, cam: Camera, white: np.ndarray, decal: Decal, classes: np.ndarray | None = None) -> None:
    """An arrow, a word, a diamond or bars drawn top-down, then warped onto its ground rectangle
    (``classes``: its train ID too, where the warped paint is at least half)."""
    z0, z1 = decal.distance, decal.distance + decal.length
    centre = float(scene.road.lateral(decal.lateral, np.array((z0 + z1) / 2)))
    quad = ground_quad(cam, centre - decal.width / 2, centre + decal.width / 2, z0, z1)
    cw, ch = max(8, int(decal.width * 40)), max(8, int(decal.length * 40))  # 40 px per metre
    canvas = _decal_canvas(decal, cw, ch)
    x_lo, y_lo = np.maximum(np.floor(quad.min(0)).astype(int), 0)
    x_hi = min(int(np.ceil(quad[:, 0].max())) + 1, white.shape[1])
    y_hi = min(int(np.ceil(quad[:, 1].max())) + 1, white.shape[0])
    if x_hi <= x_lo or y_hi <= y_lo:
        return
    src = np.float32([[0, ch - 1], [cw - 1, ch - 1], [cw - 1, 0], [0, 0]])
    warp = cv2.getPerspectiveTransform(src, (quad - [x_lo, y_lo]).astype(np.float32))
    patch = cv2.warpPerspective(canvas, warp, (x_hi - x_lo, y_hi - y_lo), flags=cv2.INTER_LINEAR)
    if classes is not None:
        roi = classes[y_lo:y_hi, x_lo:x_hi]
        roi[patch >= 128] = train_id(DECAL_CLASSES[decal.kind])
    if decal.wear:
        patch = (patch * (1.0 - decal.wear)).astype(np.uint8)
    roi = white[y_lo:y_hi, x_lo:x_hi]
    np.maximum(roi, patch, out=roi)


def paint_crossing(scene: Scene, cam: Camera, white: np.ndarray, c: Crossing, classes: np.ndarray | None = None) -> None:
    """Zebra stripes, a stop line, and the far side's stop line (straight-road model)."""
    road = scene.road
    lo, hi = scene.road_left * road.lane_width, scene.road_right * road.lane_width
    shift = float(road.lateral(0.0, np.array(c.distance)))
    shapes = []
    x = lo
    while x + c.stripe_width < hi:
        shapes.append((ground_quad(cam, shift + x, shift + x + c.stripe_width, c.distance, c.distance + c.zebra_depth), 235, ZEBRA))
        x += 2 * c.stripe_width
    if c.stop_line:
        shapes.append((ground_quad(cam, shift + lo, shift + hi, c.distance - 1.8, c.distance - 1.4), 235, STOP_LINE))
    far = c.distance + c.zebra_depth + c.crossing_road_depth
    shapes.append((ground_quad(cam, shift + lo, shift + hi, far, far + 0.4), 200, STOP_LINE))
    for polygon, alpha, name in shapes:
        fill(white, polygon, alpha)
        if classes is not None:
            fill_id(classes, polygon, train_id(name))


def paint_seams(scene: Scene, cam: Camera) -> np.ndarray:
    """Tar seams: thin dark lines along the road (lane-like distractors), alpha layer."""
    dark = np.zeros((cam.height_px, cam.width), np.uint8)
    z = distances(cam.nearest_visible * 0.97, 120.0)
    for offset in scene.seams:
        fill(dark, strip(cam, scene.road, offset * scene.road.lane_width, 0.04, z), 160)
    return dark


def _composite(ground: np.ndarray, layer: np.ndarray, colour: np.ndarray, wear: np.ndarray) -> None:
    """Blend ``colour`` into ``ground`` ((h, w, 3) float32) with alpha ``layer / 255 * wear``,
    inside the layer's bounding box."""
    x, y, w, h = cv2.boundingRect(layer)
    if w == 0 or h == 0:
        return
    alpha = cv2.multiply(layer[y : y + h, x : x + w], wear[y : y + h, x : x + w], dtype=cv2.CV_32F, scale=1 / 255)
    roi = ground[y : y + h, x : x + w]
    roi += cv2.merge([alpha, alpha, alpha]) * (colour - roi)


# ------------------------------------------------------------------------------------------------
# Objects
# ------------------------------------------------------------------------------------------------
def draw_shadows(scene: Scene, cam: Camera, rng: np.random.Generator) -> np.ndarray:
    """Soft shadow mask (uint8 0..255) of the scene's tree blobs (dappled: light through foliage)
    and building bands."""
    road = scene.road
    mask = np.zeros((cam.height_px, cam.width), np.uint8)
    t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    for s in scene.shadows:
        if s.band:
            fill(mask, ground_quad(cam, -60, 60, s.distance, s.distance + s.size_z), 255)
            continue
        jitter = 1 + 0.25 * np.sin(3 * t + s.distance)
        xs = road.lateral(s.lateral, np.array(s.distance)) + s.size_x / 2 * jitter * np.cos(t)
        zs = np.maximum(s.distance + s.size_z / 2 * jitter * np.sin(t), cam.nearest_visible * 0.5)
        u, v = cam.project(xs, zs)
        fill(mask, np.stack([u, v], 1), 255)
    holes = window(bank()[1], rng, mask.shape) > np.float32(rng.uniform(0.05, 0.3))
    mask[holes & (rng.random() < 0.7)] //= 4
    return cv2.GaussianBlur(mask, (0, 0), 2.0 * cam.focal / scene.camera.focal)


# ------------------------------------------------------------------------------------------------
# Light and camera
# ------------------------------------------------------------------------------------------------
def _radial(shape: tuple[int, int], u: float, v: float, radius: float) -> np.ndarray:
    """exp(-r^2 / 2 radius^2) around (u, v) (pixels), computed at 1/8 size and upsampled."""
    h, w = shape
    hs, ws = max(2, h // 8), max(2, w // 8)
    ys = (np.arange(hs, dtype=np.float32) + 0.5) * (h / hs) - v
    xs = (np.arange(ws, dtype=np.float32) + 0.5) * (w / ws) - u
    small = np.exp(-(ys[:, None] ** 2 + xs[None, :] ** 2) / np.float32(2 * radius**2))
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _add_glow(add: np.ndarray, u: float, v: float, radius: float, amplitude: float) -> None:
    """Add a small Gaussian glow (pixels) into ``add`` in place, within 3 radii of its centre."""
    r = 3 * radius
    x0, x1 = max(int(u - r), 0), min(int(u + r) + 1, add.shape[1])
    y0, y1 = max(int(v - r), 0), min(int(v + r) + 1, add.shape[0])
    if x1 <= x0 or y1 <= y0:
        return
    ys = np.arange(y0, y1, dtype=np.float32) - v
    xs = np.arange(x0, x1, dtype=np.float32) - u
    add[y0:y1, x0:x1] += amplitude * np.exp(-(ys[:, None] ** 2 + xs[None, :] ** 2) / np.float32(2 * radius**2))


def _headlights(scene: Scene, cam: Camera) -> np.ndarray:
    """Night illumination factor: ambient plus the ego headlights' cone on the road."""
    h, w = cam.height_px, cam.width
    hs, ws = max(2, h // 8), max(2, w // 8)
    v = (np.arange(hs, dtype=np.float32) + 0.5) * (h / hs)
    u = (np.arange(ws, dtype=np.float32) + 0.5) * (w / ws)
    z = cam.focal * cam.height / np.maximum(v - cam.horizon, 0.5)  # distance of each row's ground
    x = (u[None, :] - cam.cx) * z[:, None] / cam.focal
    cone = scene.light.headlight_power * np.exp(-((z[:, None] / scene.light.headlight_range) ** 2))
    cone = cone * np.exp(-((x / (1.8 + 0.12 * z[:, None])) ** 2))
    cone[v < cam.horizon] = 0
    light = scene.light.ambient + (1.0 - scene.light.ambient) * cone
    return cv2.resize(light.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)


def light_maps(scene: Scene, cam: Camera, shadow: np.ndarray | None, rng: np.random.Generator,
               emissive: np.ndarray | None = None, lamps: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """(multiplicative, additive) single-channel maps: ground texture, shadows, headlights,
    vignette, veiling glare; glare and street-light glows (0..255 units). ``emissive`` ((h, w)
    uint8, 255 = a light source: lit windows, lamps) keeps its own brightness at night; ``lamps``
    ((N, 3) u, v, radius at this canvas) get glows."""
    light = scene.light
    s = cam.focal / scene.camera.focal
    shape = (cam.height_px, cam.width)
    grain, blotch = bank()
    hz = int(np.clip(np.floor(cam.horizon), 0, cam.height_px - 1))
    ground = (cam.height_px - hz, cam.width)
    mul = np.ones(shape, np.float32)
    mul[hz:] = cv2.addWeighted(window(blotch, rng, ground), 0.10, window(grain, rng, ground)[:, :, 0], 0.04, 1.0)
    if shadow is not None:
        depth = light.shadow_depth
        mul *= cv2.convertScaleAbs(shadow).astype(np.float32) * np.float32(-depth / 255.0) + np.float32(1.0)
    if light.night:
        mul *= _headlights(scene, cam)
        if emissive is not None:
            e = emissive.astype(np.float32) * np.float32(1 / 255)
            mul += e * (1.0 - mul)
    if light.vignette:
        vig = _radial(shape, cam.width / 2, cam.height_px / 2, cam.width * 0.6)
        mul *= vig * np.float32(light.vignette) + np.float32(1 - light.vignette)
    has_lamps = lamps is not None and len(lamps) > 0
    if light.glare is None and not light.street_lights and not has_lamps:
        return mul, None
    add = np.zeros(shape, np.float32)
    # full-size positions -> this canvas (scaled, and shifted by any padding around the frame)
    ou = cam.cx - ((scene.camera.cx + 0.5) * s - 0.5)
    ov = cam.horizon - ((scene.camera.horizon + 0.5) * s - 0.5)
    for u, v in light.street_lights:
        _add_glow(add, u * s + ou, v * s + ov, float(rng.uniform(10, 30)) * s, 230.0)
    for u, v, r in lamps if has_lamps else ():
        _add_glow(add, float(u), float(v), 2.5 * float(r), 200.0)
    if light.glare is not None:
        u, v, radius, strength = light.glare
        g = _radial(shape, u * s + ou, v * s + ov, radius * s)
        add += (255.0 * strength) * g
        if light.veil:
            mul *= np.float32(1.0 - light.veil)
            add += np.float32(255.0 * light.veil) * (0.5 + 0.5 * g)
    return mul, add


def apply_light(img: np.ndarray, scene: Scene, mul: np.ndarray, add: np.ndarray | None,
                lamps: list[tuple[float, float, float, bool]]) -> np.ndarray:
    """Gain, tint, light maps, vehicle lamp glows at night (red tail lights, white headlights;
    ``lamps``: u, v, radius px, is a headlight), lens blur (in place on float32)."""
    light = scene.light
    gain = np.array(light.tint, np.float32) * np.float32(light.gain)
    cv2.multiply(img, cv2.merge([mul * gain[0], mul * gain[1], mul * gain[2]]), dst=img)
    if add is not None:
        cv2.add(img, cv2.merge([add, add, add]), dst=img)
    if light.night:
        for u, v, r, head in lamps:
            colour = (235, 245, 255) if head else (60, 60, 250)
            cv2.circle(img, (int(u * ONE), int(v * ONE)), int(r * 1.3 * ONE), colour, -1, cv2.LINE_AA, SHIFT)
    s = RENDER_SCALE
    if light.motion_blur:
        n = max(3, int(light.motion_blur * s))
        k = np.zeros((n, n), np.float32)
        k[n // 2, :] = 1.0 / n
        img = cv2.filter2D(img, -1, k)
    if light.blur * s > 0.4:
        img = cv2.GaussianBlur(img, (0, 0), light.blur * s)
    return img


def exposure(img: np.ndarray, scene: Scene, rng: np.random.Generator) -> None:
    """Low-frequency chromatic noise and a rolling-exposure row ripple, in place (any scale)."""
    _, blotch = bank()
    light = scene.light
    h, w = img.shape[:2]
    if light.chroma:
        small = (max(2, h // 2), max(2, w // 2))
        chroma = cv2.merge([window(blotch, rng, small) for _ in range(3)])
        cv2.scaleAdd(cv2.resize(chroma, (w, h), interpolation=cv2.INTER_LINEAR), float(light.chroma), img, dst=img)
    if light.banding:
        period = float(rng.uniform(10, 60))
        ripple = 1.0 + light.banding * np.sin(2 * np.pi * np.arange(h) / period + float(rng.uniform(0, 6.3)))
        img *= ripple.astype(np.float32)[:, None, None]


def sensor(img: np.ndarray, scene: Scene, rng: np.random.Generator) -> np.ndarray:
    """Full-size float32 image -> uint8 with per-pixel colour noise."""
    grain, _ = bank()
    cv2.scaleAdd(window(grain, rng, img.shape[:2]), float(scene.light.noise), img, dst=img)
    np.clip(img, 0, 255, out=img)
    return img.astype(np.uint8)


# ------------------------------------------------------------------------------------------------
def render_scene(scene: Scene, classes: bool = False) -> Rendered:
    """Render one frame (a pure function of the scene).

    The pinhole render is padded on every side by what the rig's lens pulls into view, warped
    through the lens to the output frame, and the hood, margins and sensor follow in output
    coordinates. ``classes``: also the class map of the visible markings
    (:mod:`~lanedata.synthetic.marking_labels`); the picture is the same either way."""
    full = scene.camera
    out_cam = full.scaled(RENDER_SCALE)
    rig = scene.rig
    lens = Lens.of(rig, out_cam) if rig is not None else None
    pad = lens.padding(out_cam.width, out_cam.height_px) if lens is not None else 0
    cam = Camera(width=out_cam.width + 2 * pad, height_px=out_cam.height_px + 2 * pad, focal=out_cam.focal,
                 cx=out_cam.cx + pad, horizon=out_cam.horizon + pad, height=out_cam.height)
    rng = np.random.default_rng(scene.scenery_seed ^ 0x5EED)
    img = np.empty((cam.height_px, cam.width, 3), np.float32)
    rs = scene.roadside
    emissive = np.zeros((cam.height_px, cam.width), np.uint8) if rs is not None and scene.light.night else None
    if rs is not None:
        draw_far_scenery(img, cam, scene.road, rs, scene.sky_top, scene.sky_horizon, emissive)
    else:
        draw_scenery(img, scene, cam)
    tarmac = draw_ground(img, scene, cam)
    near = cam.nearest_visible * 0.9
    if scene.surface is not None:
        draw_surface(img, cam, scene.road, scene.surface, tarmac, np.array(scene.sky_horizon, np.float32), near)

    white = np.zeros((cam.height_px, cam.width), np.uint8)
    yellow = np.zeros_like(white)
    ids = np.zeros_like(white) if classes else None
    paint_markings(scene, cam, white, yellow, ids)
    for decal in scene.decals:
        paint_decal(scene, cam, white, decal, ids)
    if scene.crossing is not None:
        paint_crossing(scene, cam, white, scene.crossing, ids)
    hz = int(np.clip(np.floor(cam.horizon), 0, cam.height_px - 1))
    ground = img[hz:]
    wear = np.clip(window(bank()[1], rng, ground.shape[:2]) * np.float32(0.9) + np.float32(1.0), 0.0, 1.0)
    _composite(ground, white[hz:], np.array(WHITE, np.float32), wear)
    _composite(ground, yellow[hz:], np.array(YELLOW, np.float32), wear)
    if scene.seams:
        _composite(ground, paint_seams(scene, cam)[hz:], np.array(scene.asphalt, np.float32) * 0.45, wear)
    if ids is not None:
        ids[:hz] = 0
        keep_visible(ids[hz:], np.maximum(white[hz:], yellow[hz:]) * wear)
        painted = img.copy()

    if rs is not None:
        draw_roadside_objects(img, cam, scene.road, rs, emissive=emissive)
    shadow = draw_shadows(scene, cam, rng) if scene.shadows else None
    sun = scene.light.sun
    if (rs is not None and sun is not None) or scene.vehicles:
        shadow = np.zeros((cam.height_px, cam.width), np.uint8) if shadow is None else shadow
    if rs is not None and sun is not None:
        draw_roadside_shadows(shadow, cam, scene.road, rs, sun)
    for v in scene.vehicles:
        draw_vehicle_shadow(shadow, cam, scene.road, v, sun)
    lamps: list[tuple[float, float, float, bool]] = []  # u, v, radius, is a headlight
    for v in sorted(scene.vehicles, key=lambda v: -v.distance):
        mine: list[tuple[float, float, float]] = []
        draw_vehicle(img, cam, scene.road, v, scene.light.night, sun, mine)
        lamps += [(u, y, r, v.facing < 0) for u, y, r in mine]
    if ids is not None:
        clear_changed(ids, painted, img)  # roadside objects and vehicles in front of the paint
    poles = street_lights(cam, scene.road, rs) if rs is not None and scene.light.night else None
    mul, add = light_maps(scene, cam, shadow, rng, emissive, poles)
    img = apply_light(img, scene, mul, add, lamps)
    if lens is not None:
        img = lens.warp(img, (out_cam.height_px, out_cam.width), pad)
        ids = None if ids is None else lens.warp(ids, (out_cam.height_px, out_cam.width), pad, cv2.INTER_NEAREST)
    if rig is not None and rig.hood is not None:
        before_hood = img.copy() if ids is not None else None
        draw_hood(img, rig.hood, RENDER_SCALE, out_cam.horizon, scene.light.night, rng)
        if ids is not None:
            clear_changed(ids, before_hood, img)
    if rig is not None and rig.margins is not None:
        mask = margin_mask(rig.margins, img.shape[:2], RENDER_SCALE)
        img *= mask[:, :, None]
        if ids is not None:
            ids[mask < 0.5] = 0
    noise = np.random.default_rng(scene.noise_seed)
    exposure(img, scene, noise)
    img = cv2.resize(img, (full.width, full.height_px), interpolation=cv2.INTER_LINEAR)
    image = sensor(img, scene, noise)
    if ids is not None:
        ids = cv2.resize(ids, (full.width, full.height_px), interpolation=cv2.INTER_NEAREST)
    if rig is not None and rig.overlay is not None:
        before_overlay = image.copy() if ids is not None else None
        draw_overlay(image, rig.overlay)
        if ids is not None:
            clear_changed(ids, before_overlay, image)

    lanes = annotate(scene)
    label = draw_label(lanes, (full.height_px, full.width))
    if rig is not None and rig.window is not None:  # the recorded frame letterboxed: black around it, no label there
        outside = np.ones(image.shape[:2], bool)
        w = rig.window
        outside[w.top : w.bottom, w.left : w.right] = False
        image[outside] = 0
        label[outside] = 0
        if ids is not None:
            ids[outside] = 0
    return Rendered(image=image, lanes=lanes, label=label, classes=ids)
