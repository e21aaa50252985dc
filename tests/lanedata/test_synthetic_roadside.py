"""Roadside scenery of the synthetic scenes: sampling, drawing, shadows."""
import pickle

import cv2
import numpy as np
import pytest

from lanedata.synthetic.geometry import Camera, Road
from lanedata.synthetic.roadside import Linear, Pole, Roadside, sample_roadside
from lanedata.synthetic.roadside_draw import (
    _distances,
    _flat,
    _noise_top,
    draw_far_scenery,
    draw_offroad_ground,
    draw_roadside_objects,
    draw_roadside_shadows,
    street_lights,
)

CAM = Camera(focal=1000, cx=800, horizon=275, height=1.35).scaled(0.5)
SKY = ((230.0, 150.0, 60.0), (240.0, 215.0, 190.0))


def _road_and_edges(rng: np.random.Generator, straight: bool = False) -> tuple[Road, float, float]:
    lw = rng.uniform(3.0, 3.8)
    if straight:
        road = Road(lane_width=lw, ego_offset=rng.uniform(-0.3, 0.3) * lw)
    else:
        road = Road(lane_width=lw, ego_offset=rng.uniform(-0.3, 0.3) * lw, heading=rng.uniform(-0.02, 0.02),
                    curvature=rng.uniform(-5e-3, 5e-3))
    left = -(int(rng.integers(1, 3)) - 0.5) * lw - rng.uniform(0.12, 0.6)
    right = (int(rng.integers(1, 3)) - 0.5) * lw + rng.uniform(0.12, 0.6)
    return road, left, right


def _sample(seed: int, urban: float | None = None, night: bool | None = None, straight: bool = False):
    rng = np.random.default_rng(seed)
    road, left, right = _road_and_edges(rng, straight)
    night = bool(rng.random() < 0.2) if night is None else night
    urban = float(rng.random()) if urban is None else urban
    return road, sample_roadside(rng, road, left, right, night, urban)


def _render(cam: Camera, road: Road, rs: Roadside, sun=(1.0, 0.6)) -> tuple[np.ndarray, np.ndarray]:
    img = np.zeros((cam.height_px, cam.width, 3), np.float32)
    draw_far_scenery(img, cam, road, rs, *SKY)
    draw_offroad_ground(img, cam, road, rs)
    draw_roadside_objects(img, cam, road, rs)
    mask = np.zeros((cam.height_px, cam.width), np.uint8)
    draw_roadside_shadows(mask, cam, road, rs, sun)
    return img, mask


def _road_mask(cam: Camera, road: Road, rs: Roadside, erode: int = 2) -> np.ndarray:
    """Pixels of the tarmac strip below the horizon (eroded a little: edges are anti-aliased)."""
    mask = np.zeros((cam.height_px, cam.width), np.uint8)
    z = _distances(0.5, 400.0)
    pts = np.rint(np.clip(_flat(cam, road, rs.road_left, rs.road_right, z), -1e4, 1e4) * 16).astype(np.int32)
    cv2.fillPoly(mask, [pts.reshape(-1, 1, 2)], 255, cv2.LINE_8, 4)
    mask = cv2.erode(mask, np.ones((2 * erode + 1, 2 * erode + 1), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    mask[: int(np.ceil(cam.horizon)) + 3] = 0
    return mask > 0


def test_sampling_is_deterministic_and_seed_dependent():
    a = pickle.dumps(_sample(11)[1])
    assert a == pickle.dumps(_sample(11)[1])
    assert a != pickle.dumps(_sample(12)[1])
    road, rs = _sample(11)
    img1, m1 = _render(CAM, road, rs)
    img2, m2 = _render(CAM, road, pickle.loads(a))
    assert np.array_equal(img1, img2) and np.array_equal(m1, m2)


def test_nothing_stands_on_the_tarmac():
    for seed in range(150):
        _, rs = _sample(seed, urban=float(seed % 5) / 4)
        for kind, lo, hi in rs.footprints():
            assert hi <= rs.road_left + 1e-6 or lo >= rs.road_right - 1e-6, (seed, kind, lo, hi, rs.road_left, rs.road_right)


def test_urban_gives_buildings_and_open_road_gives_trees():
    city = [_sample(s, urban=1.0)[1] for s in range(40)]
    country = [_sample(s, urban=0.0)[1] for s in range(40)]
    assert np.mean([len(rs.buildings) > 0 for rs in city]) >= 0.8
    assert np.mean([len(rs.buildings) > 0 for rs in country]) <= 0.25
    green = [len(rs.trees) + sum(e.kind in ("canopy", "hedge") for e in rs.linears) for rs in country]
    assert np.mean([g > 0 for g in green]) >= 0.85
    assert np.mean([len(rs.buildings) for rs in city]) > 5 * np.mean([len(rs.buildings) for rs in country])
    assert np.mean([sum(e.kind == "guardrail" for e in rs.linears) for rs in country]) > \
        np.mean([sum(e.kind == "guardrail" for e in rs.linears) for rs in city])


def test_objects_never_paint_the_tarmac_of_a_straight_road():
    sentinel = np.float32(-7.0)
    for seed in range(40):
        road, rs = _sample(seed, urban=float(seed % 3) / 2, night=seed % 4 == 0, straight=True)
        img = np.full((CAM.height_px, CAM.width, 3), sentinel, np.float32)
        draw_roadside_objects(img, CAM, road, rs)
        on_road = _road_mask(CAM, road, rs)
        changed = (img != sentinel).any(2)
        assert changed.any(), seed  # something was drawn
        assert not (changed & on_road).any(), (seed, np.argwhere(changed & on_road)[:5])


def test_guardrail_is_a_long_line_converging_to_the_vanishing_point():
    road = Road(lane_width=3.5)
    left, right = -5.6, 2.0
    rail = Linear("guardrail", -1, left - 0.6, 1.0, 200.0, 0.75, (200.0, 200.0, 200.0), (150.0, 150.0, 150.0),
                  width=0.35, spacing=4.0)
    rs = Roadside(left, right, False, 0.0, 1, 200.0, linears=[rail])
    img = np.zeros((CAM.height_px, CAM.width, 3), np.float32)
    draw_roadside_objects(img, CAM, road, rs)
    painted = img.max(2) > 100
    rows = np.arange(CAM.height_px)
    ok = rows > CAM.horizon + 3
    centres = np.array([np.flatnonzero(painted[r]).mean() if painted[r].any() else np.nan for r in rows])
    good = ok & np.isfinite(centres)
    # long: from near the horizon out through the left border of the image
    assert rows[good].min() < CAM.horizon + 6
    assert painted[:, 0].any()
    assert rows[good].max() - rows[good].min() > 40
    assert np.all(centres[good] < CAM.cx)  # on the left
    # the beam (bright, not the posts) away from the image border lies on a line through the vanishing point
    beam = img.max(2) > 180
    beam[painted[:, :2].any(1)] = False
    ys, xs = np.nonzero(beam)
    slope, intercept = np.polyfit(ys - CAM.horizon, xs, 1)
    assert slope < 0  # further left lower down
    assert abs(intercept - CAM.cx) < 10  # (a parallel or mis-projected rail would be off by hundreds)


def test_gaps_keep_a_crossing_road_clear():
    road = Road(lane_width=3.5)
    rail = Linear("guardrail", 1, 3.0, 1.0, 200.0, 0.75, (200.0, 200.0, 200.0), (150.0, 150.0, 150.0), width=0.35, spacing=4.0)
    pole = Pole(3.5, 30.0, 9.0, 0.25, (150.0, 150.0, 150.0), "plain")
    rs = Roadside(-2.5, 2.5, False, 0.0, 1, 200.0, linears=[rail], poles=[pole])
    u, v_base = CAM.project(np.array(3.0), np.array(30.0))
    window = (slice(int(CAM.horizon + 2), int(v_base) + 3), slice(int(u) - 3, int(u) + 4))  # the rail and pole at 30 m
    for gaps, expect in (([], True), ([(25.0, 35.0)], False)):
        rs.gaps = gaps
        img = np.zeros((CAM.height_px, CAM.width, 3), np.float32)
        draw_roadside_objects(img, CAM, road, rs)
        assert (img[window].max() > 100) == expect
        assert (img.max(2) > 100).any()  # the rest is still drawn
        mask = np.zeros((CAM.height_px, CAM.width), np.uint8)
        draw_roadside_shadows(mask, CAM, road, rs, (np.pi / 2, 0.6))
        rows = slice(int(v_base) - 1, int(v_base) + 2)
        assert (mask[rows, : int(u)].max() > 128) == expect  # the pole's shadow across the road


@pytest.mark.parametrize("azimuth, expect_left", [(np.pi / 2, True), (-np.pi / 2, False)])
def test_pole_shadows_fall_away_from_the_sun(azimuth, expect_left):
    road = Road(lane_width=3.5)
    left, right = -5.4, 5.4
    offset = right + 1.0 if expect_left else left - 1.0
    pole = Pole(offset, 15.0, 9.0, 0.25, (150.0, 150.0, 150.0), "plain")
    rs = Roadside(left, right, False, 0.0, 1, 200.0, poles=[pole])
    mask = np.zeros((CAM.height_px, CAM.width), np.uint8)
    draw_roadside_shadows(mask, CAM, road, rs, (azimuth, 0.6))
    u_base, _ = CAM.project(np.array(offset), np.array(15.0))
    shadow = (mask > 128) & _road_mask(CAM, road, rs)
    assert shadow.sum() > 20  # a long thin dark line across the road
    cols = np.nonzero(shadow)[1]
    if expect_left:
        assert np.all(cols < u_base)
    else:
        assert np.all(cols > u_base)
    # thin: a few pixels tall per column, i.e. it lies across the road
    ys, xs = np.nonzero(shadow)
    assert np.ptp(xs) > 5 * max(1, np.ptp(ys) // 3)


def test_sun_behind_casts_shadows_forward_and_sun_ahead_towards_the_camera():
    road = Road(lane_width=3.5)
    rs = Roadside(-5.4, 5.4, False, 0.0, 1, 200.0, poles=[Pole(6.4, 20.0, 9.0, 0.25, (150.0, 150.0, 150.0), "plain")])
    v_base = CAM.horizon + CAM.focal * CAM.height / 20.0
    for azimuth, further in ((np.pi, True), (0.0, False)):
        mask = np.zeros((CAM.height_px, CAM.width), np.uint8)
        draw_roadside_shadows(mask, CAM, road, rs, (azimuth, 0.5))
        rows = np.nonzero(mask > 128)[0]
        assert len(rows)
        assert (rows.mean() < v_base) == further  # further away = closer to the horizon


EXTREME_CAMERAS = [
    Camera(width=64, height_px=32, focal=40.0, cx=30.0, horizon=10.0, height=1.5),
    Camera(width=200, height_px=80, focal=3000.0, cx=100.0, horizon=-20.0, height=1.2),
    Camera(width=200, height_px=80, focal=300.0, cx=-50.0, horizon=79.5, height=0.4),
    Camera(width=160, height_px=60, focal=200.0, cx=80.0, horizon=200.0, height=5.0),
    Camera(width=160, height_px=60, focal=200.0, cx=80.0, horizon=0.0, height=2.0),
    Camera().scaled(1.0),
]
EXTREME_ROADS = [
    Road(curvature=0.05, heading=0.3, dcurvature=1e-3),
    Road(curvature=-0.03, heading=-0.2, ego_offset=1.5),
    Road(profile=(np.array([0.0, 50.0, 300.0]), np.array([0.0, 5.0, -40.0]))),
]


@pytest.mark.parametrize("cam", EXTREME_CAMERAS, ids=range(len(EXTREME_CAMERAS)))
def test_drawing_survives_extreme_cameras_and_curves(cam):
    for i, road in enumerate(EXTREME_ROADS):
        rng = np.random.default_rng(100 + i)
        rs = sample_roadside(rng, road, -5.5, 5.5, bool(i % 2), [0.0, 0.5, 1.0][i])
        if cam.width > 1000 and i:
            continue  # the full-size camera once is enough (time)
        img, mask = _render(cam, road, rs, sun=(float(rng.uniform(-np.pi, np.pi)), float(rng.uniform(0.05, 1.5))))
        assert np.isfinite(img).all()
        assert img.min() >= -1e-3 and img.max() <= 255 * 1.6
        assert mask.dtype == np.uint8
        lights = street_lights(cam, road, rs)
        assert lights.shape[1] == 3 and np.isfinite(lights).all()


def test_night_is_dark_with_lit_windows_and_lamps():
    means, bright = [], []
    for seed in range(12):
        road, rs = _sample(seed, urban=1.0, night=True)
        img = np.zeros((CAM.height_px, CAM.width, 3), np.float32)
        draw_far_scenery(img, CAM, road, rs, (20.0, 12.0, 8.0), (40.0, 40.0, 45.0))
        draw_offroad_ground(img, CAM, road, rs)
        draw_roadside_objects(img, CAM, road, rs)
        means.append(img.mean())
        bright.append((img.max(2) > 180).sum())
    assert np.mean(means) < 45
    assert np.mean([b > 0 for b in bright]) >= 0.75


def test_emissive_marks_lights_at_night_only():
    lit_fraction = []
    for seed in range(8):
        for night in (False, True):
            road, rs = _sample(seed, urban=1.0, night=night)
            img = np.zeros((CAM.height_px, CAM.width, 3), np.float32)
            emissive = np.full((CAM.height_px, CAM.width), 77, np.uint8)
            draw_far_scenery(img, CAM, road, rs, *SKY, emissive=emissive)
            draw_offroad_ground(img, CAM, road, rs)
            draw_roadside_objects(img, CAM, road, rs, emissive=emissive)
            above = emissive[: int(np.ceil(CAM.horizon)) + 1]
            assert set(np.unique(above)) <= {0, 255}
            if not night:
                assert not (emissive == 255).any()
            else:
                on = emissive == 255
                lit_fraction.append(on.mean())
                if on.any():  # lights are bright
                    assert np.median(img[on].max(1)) > 150
    assert np.mean([f > 0 for f in lit_fraction]) >= 0.75


def test_advancing_brings_everything_closer():
    _, rs = _sample(3, urban=0.5)
    moved = rs.advanced(10.0)
    assert [t.z - 10.0 for t in rs.trees] == pytest.approx([t.z for t in moved.trees])
    assert [e.z0 - 10.0 for e in rs.linears] == pytest.approx([e.z0 for e in moved.linears])
    assert moved.travelled == pytest.approx(rs.travelled + 10.0)
    # hedge and canopy crowns stay put on the ground (video frames agree)
    for e, m in zip(rs.linears, moved.linears):
        z = np.linspace(20.0, 80.0, 61)
        assert _noise_top(e, z) == pytest.approx(_noise_top(m, z - 10.0))
