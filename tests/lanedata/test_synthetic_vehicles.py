"""Vehicles of the synthetic scenes: sampling (lanes, mix, sizes, spacing) and drawing (size and
place in the image, lamps, clipping, shadows)."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from lanedata.synthetic.geometry import Camera, Road
from lanedata.synthetic.vehicles import (
    DIMENSIONS, TWO_WHEELERS, Vehicle, draw_vehicle, draw_vehicle_shadow, sample_vehicles,
)

CAM = Camera(focal=1000, cx=800, horizon=275, height=1.3).scaled(0.5)
GREEN = (0.0, 255.0, 0.0)  # a background no vehicle part has
LANES, ONCOMING = [0.0, 3.6], [-3.6, -7.2]


def canvas(value=GREEN) -> np.ndarray:
    img = np.empty((CAM.height_px, CAM.width, 3), np.float32)
    img[:] = value
    return img


def changed(img: np.ndarray, value=GREEN) -> np.ndarray:
    return np.abs(img - np.float32(value)).max(2) > 1.0


def car(distance: float, lateral: float = 0.0, **kw) -> Vehicle:
    args = dict(kind="car", lateral=lateral, distance=distance, width=1.8, height=1.45, length=4.6,
                color=(235.0, 235.0, 235.0), seed=3)
    args.update(kw)
    return Vehicle(**args)


def row(distance: float, y: float = 0.0) -> float:
    return CAM.horizon + CAM.focal * (CAM.height - y) / distance


def random_vehicles(seed: int, n: int) -> list[Vehicle]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        kind = list(DIMENSIONS)[int(rng.integers(len(DIMENSIONS)))]
        (w0, w1), (h0, h1), (l0, l1) = DIMENSIONS[kind]
        out.append(Vehicle(kind, float(rng.uniform(-9, 9)), float(rng.uniform(3.2, 80)), float(rng.uniform(w0, w1)),
                           float(rng.uniform(h0, h1)), float(rng.uniform(l0, l1)), (float(rng.uniform(0, 255)),) * 3,
                           1 if kind in TWO_WHEELERS or rng.random() < 0.7 else -1, int(rng.integers(1 << 30))))
    return out


# ------------------------------------------------------------------------------------------------
# sampling
# ------------------------------------------------------------------------------------------------
def draws(n: int, count: int = 5, **kw) -> list[list[Vehicle]]:
    road = Road()
    return [sample_vehicles(np.random.default_rng(s), road, LANES, count, oncoming_centres=ONCOMING, **kw) for s in range(n)]


def test_sampling_is_deterministic_and_in_range():
    a, b = draws(30, min_distance=8.0, max_distance=60.0), draws(30, min_distance=8.0, max_distance=60.0)
    assert a == b
    for scene in a:
        assert 1 <= len(scene) <= 5
        for v in scene:
            assert 8.0 <= v.distance <= 60.0
            assert v.facing in (1, -1) and all(0 <= c <= 255 for c in v.color)
    assert len({v.seed for scene in a for v in scene}) > 100


def test_no_two_vehicles_overlap():
    for scene in draws(200, count=8):
        for i, p in enumerate(scene):
            for q in scene[i + 1 :]:
                if abs(p.lateral - q.lateral) < (p.width + q.width) / 2 + 0.2:  # sharing a lane
                    near, far = (p, q) if p.distance <= q.distance else (q, p)
                    assert far.distance - near.distance >= near.length + 3.0, (p, q)


def test_kind_mix_sizes_and_lanes():
    vs = [v for scene in draws(600, count=3) for v in scene]
    n = Counter(v.kind for v in vs)
    share = {k: n[k] / len(vs) for k in DIMENSIONS}
    assert 0.52 < share["car"] < 0.68
    assert 0.10 < share["suv"] + share["van"] < 0.20
    assert 0.05 < share["truck"] < 0.11 and 0.03 < share["bus"] < 0.08
    assert 0.08 < share["motorbike"] + share["bicycle"] < 0.16
    half = Road().lane_width / 2
    for v in vs:
        (w0, w1), (h0, h1), (l0, l1) = DIMENSIONS[v.kind]
        assert (1.9 if v.kind == "truck" else w0) - 1e-9 <= v.width <= w1 and h0 <= v.height <= h1
        assert (5.5 if v.kind == "truck" else l0) - 1e-9 <= v.length <= l1
        if v.kind in TWO_WHEELERS:
            assert v.facing == 1 and min(LANES) - half <= v.lateral <= max(LANES) + half
        lanes = LANES if v.facing == 1 else ONCOMING
        assert min(abs(v.lateral - c) for c in lanes) <= half
    riders = [v for v in vs if v.kind in TWO_WHEELERS]
    assert np.mean([v.lateral > max(LANES) + 0.5 for v in riders]) > 0.5  # mostly near the right edge
    assert 0.1 < np.mean([v.facing == -1 for v in vs]) < 0.5
    solo = [v for s in range(40) for v in sample_vehicles(np.random.default_rng(s), Road(), LANES, 4)]
    assert all(v.facing == 1 for v in solo)


# ------------------------------------------------------------------------------------------------
# drawing
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("distance", [7.0, 12.0, 25.0, 50.0])
def test_car_size_and_place(distance):
    img = canvas()
    draw_vehicle(img, CAM, Road(), car(distance), False, (0.8, 0.6), [])
    m = changed(img)
    r = int(round(row(distance, 0.5)))  # bumper height: below the mirrors
    cols = np.flatnonzero(m[r])
    expected = CAM.focal * 1.8 / distance
    assert abs(len(cols) - expected) <= 0.2 * expected + 1
    assert abs(0.5 * (cols[0] + cols[-1]) - CAM.cx) <= 1.5
    bottom = np.flatnonzero(m.any(1))[-1]
    assert row(distance + 1.0) - 1 <= bottom <= row(distance) + 1.5
    top = np.flatnonzero(m.any(1))[0]
    assert abs((row(distance) - top) - CAM.focal * 1.45 / distance) <= 0.15 * CAM.focal * 1.45 / distance + 2


def test_farther_is_smaller():
    areas = []
    for d in (6.0, 12.0, 24.0, 48.0):
        img = canvas()
        draw_vehicle(img, CAM, Road(), car(d, 3.0), False, None, [])
        areas.append(changed(img).sum())
    assert areas[0] > areas[1] > areas[2] > areas[3] > 0


def test_side_faces_show_towards_the_camera():
    half = CAM.focal * 0.9 / 6.0
    for lateral, sign in ((3.6, -1), (-3.6, 1), (0.0, 0)):
        img = canvas()
        draw_vehicle(img, CAM, Road(), car(6.0, lateral), False, None, [])
        cols = np.flatnonzero(changed(img)[int(row(6.0, 0.4)) - 8])  # a row above the rear bottom edge
        u = CAM.cx + CAM.focal * lateral / 6.0
        if sign < 0:
            assert cols[0] < u - half - 10  # the side reaches towards the lane on the left
        elif sign > 0:
            assert cols[-1] > u + half + 10
        else:
            assert cols[0] >= u - half - 2 and cols[-1] <= u + half + 2


def test_lamps_at_night_only():
    for v, n in ((car(15.0), 2), (car(15.0, -3.6, facing=-1), 2), (Vehicle("bus", 3.6, 20.0, 2.5, 3.2, 11.0, (200.0,) * 3), 2),
                 (Vehicle("motorbike", 4.5, 12.0, 0.75, 1.65, 1.9, (60.0,) * 3), 1)):
        day, night = [], []
        draw_vehicle(canvas(), CAM, Road(), v, False, None, day)
        draw_vehicle(canvas(), CAM, Road(), v, True, None, night)
        assert day == [] and len(night) == n
        for u, y, r in night:
            assert row(v.distance) - CAM.focal * v.height / v.distance <= y <= row(v.distance) and r >= 1.0
            assert abs(u - (CAM.cx + CAM.focal * v.lateral / v.distance)) <= CAM.focal * v.width / v.distance / 2 + 1
    lights = []  # the lamps of one on the canvas edge still count, those far outside do not
    draw_vehicle(canvas(), CAM, Road(), car(6.0, 30.0), True, None, lights)
    assert lights == []


def test_near_and_off_canvas_vehicles_do_not_crash():
    road = Road(curvature=0.002)
    for kind in DIMENSIONS:
        (w0, w1), (h0, h1), (l0, l1) = DIMENSIONS[kind]
        for lateral in (-12.0, -4.0, 0.0, 3.6, 12.0):
            for facing in (1, -1):
                img = canvas()
                draw_vehicle(img, CAM, road, Vehicle(kind, lateral, 3.5, w1, h1, l1, (128.0,) * 3, facing, 1), True, (0.3, 0.2), [])
                mask = np.zeros(img.shape[:2], np.uint8)
                draw_vehicle_shadow(mask, CAM, road, Vehicle(kind, lateral, 3.5, w1, h1, l1, (128.0,) * 3, facing, 1), (0.3, 0.2))
    img = canvas()
    draw_vehicle(img, CAM, Road(), car(3.5), False, None, [])
    assert changed(img).mean() > 0.12  # fills much of the view
    img = canvas()
    draw_vehicle(img, CAM, Road(), car(2.5), False, None, [])  # too near: skipped
    assert not changed(img).any()


def test_nothing_changes_outside_the_vehicle_box():
    road = Road(curvature=0.001)
    for v in random_vehicles(0, 60):
        img = canvas()
        draw_vehicle(img, CAM, road, v, v.seed % 2 == 0, (1.0, 0.5), [])
        hw = v.width / 2 + 0.25
        xs, ys, zs = np.meshgrid([-hw, hw], [0.0, v.height], [v.distance - 0.1, v.distance + v.length], indexing="ij")
        x = road.lateral(v.lateral, zs.ravel()) + xs.ravel()
        u = CAM.cx + CAM.focal * x / zs.ravel()
        y = CAM.horizon + CAM.focal * (CAM.height - ys.ravel()) / zs.ravel()
        inside = np.zeros(img.shape[:2], bool)
        inside[max(int(y.min()) - 2, 0) : int(y.max()) + 3, max(int(u.min()) - 2, 0) : int(u.max()) + 3] = True
        assert not (changed(img) & ~inside).any(), v


def opaque(v: Vehicle, road: Road) -> np.ndarray:
    """Pixels the vehicle covers fully (the same on two backgrounds)."""
    a, b = canvas((0.0, 0.0, 0.0)), canvas((255.0, 255.0, 255.0))
    draw_vehicle(a, CAM, road, v, False, None, [])
    draw_vehicle(b, CAM, road, v, False, None, [])
    return np.abs(a - b).max(2) < 1.0


@pytest.mark.parametrize("sun", [None, (0.0, 0.5), (np.pi, 0.5)])
def test_shadow_below_a_vehicle_ahead(sun):
    """Straight ahead with the sun ahead, behind or hidden, shadow shows at or below the vehicle's
    bottom row, or on the ground seen under its body (within its columns, below its underside)."""
    for v, under in ((car(10.0), 0.35), (Vehicle("truck", 0.0, 15.0, 2.5, 3.5, 9.0, (200.0,) * 3), 1.0),
                     (Vehicle("motorbike", 0.0, 9.0, 0.8, 1.65, 2.0, (60.0,) * 3), 0.6)):
        img, mask = canvas(), np.zeros((CAM.height_px, CAM.width), np.uint8)
        draw_vehicle(img, CAM, Road(), v, False, sun, [])
        draw_vehicle_shadow(mask, CAM, Road(), v, sun)
        m = changed(img)
        bottom = np.flatnonzero(m.any(1))[-1]
        cols = np.flatnonzero(m.any(0))
        ys, xs = np.nonzero(mask)
        assert len(ys) and (ys >= bottom - 1).any()
        high = ys < bottom - 1
        assert (ys[high] >= row(v.distance, under)).all(), v.kind
        assert (xs[high] >= cols[0] - 3).all() and (xs[high] <= cols[-1] + 3).all(), v.kind


def test_cast_shadow_falls_away_from_the_sun_and_off_the_body():
    road = Road()
    for v in (car(12.0, 3.6), Vehicle("bus", -3.6, 20.0, 2.5, 3.2, 11.0, (200.0,) * 3), Vehicle("bicycle", 4.5, 9.0, 0.6, 1.7, 1.8, (60.0,) * 3)):
        u_v = CAM.cx + CAM.focal * v.lateral / v.distance
        for az, side in ((np.pi / 2, -1), (-np.pi / 2, 1)):
            mask = np.zeros((CAM.height_px, CAM.width), np.uint8)
            draw_vehicle_shadow(mask, CAM, road, v, (az, 0.5))
            ys, xs = np.nonzero(mask)
            u_s = np.average(xs, weights=mask[ys, xs])
            assert side * (u_s - u_v) > 2, (v.kind, az, u_s, u_v)
            assert ys.min() > CAM.horizon
            assert not (mask[opaque(v, road)] > 0).any()
        plain = np.zeros_like(mask)
        draw_vehicle_shadow(plain, CAM, road, v, None)
        assert 0 < (plain > 0).sum() < (mask > 0).sum()
