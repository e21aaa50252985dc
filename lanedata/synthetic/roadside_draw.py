"""Drawing a :class:`~lanedata.synthetic.roadside.Roadside`: sky and skyline, off-road ground,
3-D roadside objects and their cast shadows.

The draw functions project the roadside's road coordinates (metres; see
:mod:`lanedata.synthetic.roadside`) through the pinhole :class:`~lanedata.synthetic.geometry.Camera`
with

    u = cx + focal X / Z,    v = horizon + focal (height - Y) / Z,    X = road.lateral(offset, Z),

so every element follows the road's curve. Far scenery (above the horizon) uses angles instead:
``u = cx + focal a``, ``v = horizon - focal e``. Images are (H, W, 3) float32 BGR 0..255 at the
render camera's size, masks (H, W) uint8. Drawing is deterministic for a given ``Roadside`` (its
``seed`` picks the texture windows; it draws nothing from the scene sampler's generator).

Extras beyond the four draw functions: ``emissive`` masks (lights to keep bright at night) and
:func:`street_lights` (lamp positions for glow halos); patterns and hashed details stay attached to
the ground when the roadside is advanced (video).

Cost: about 10 ms per scene at 820x295 for sampling and all four draw functions together (one
core, OpenCV single-threaded, measured on a busy machine).
"""
from __future__ import annotations

import threading
from functools import lru_cache

import cv2
import numpy as np

from lanedata.synthetic.geometry import Camera, Road
from lanedata.synthetic.roadside import (
    CROWN_VARIANTS, N_CROWN_KINDS, Z_NEAR, Bridge, Building, Color, Linear, Pole, Roadside, Sign, Tree, _mix,
    _scale, _u,
)
from lanedata.synthetic.textures import bank, window

SHIFT = 4  # sub-pixel bits of the fixed-point coordinates passed to OpenCV drawing
ONE = 1 << SHIFT
Z_NEAR_OBJECT = 2.0  # m: point objects nearer than this are skipped


# ------------------------------------------------------------------------------------------------
# Precomputed textures and sprites
# ------------------------------------------------------------------------------------------------
SPRITE = 96  # px: side of a crown sprite


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
