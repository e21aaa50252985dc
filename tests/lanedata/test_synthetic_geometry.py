"""The synthetic dashcam: cameras drawn from physics and specs (lanedata.synthetic.mount), the
geometry of their annotations, the hood, the lens, overlays.

The camera statistics are checked against the ranges documented in lanedata/synthetic/mount.py
and docs/datasets.md (vehicle dimensions, camera specs, video formats, lane standards), never
against a statistic of the real dev frames: those only measure (DESIGN.md).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from lanedata.synthetic import mount as M
from lanedata.synthetic.render import annotate, render_scene
from lanedata.synthetic.rig import HOOD_ROWS, HOOD_SHARE, Lens, Rig
from lanedata.synthetic.scene import LANE_WIDTH_M, sample_scene


def spans(values: np.ndarray, lo: float, hi: float, slack: float = 0.08) -> bool:
    """All values within [lo, hi], and both ends reached to within ``slack`` of the range."""
    reach = slack * (hi - lo)
    return bool(values.min() >= lo - 1e-9 and values.max() <= hi + 1e-9 and values.min() < lo + reach and values.max() > hi - reach)


def test_a_batch_of_rigs_spans_the_documented_ranges():
    scenes = [sample_scene(np.random.default_rng(2000 + i), "normal") for i in range(400)]
    mounts = [s.mount for s in scenes]
    for name, (share, (lo, hi)) in M.VEHICLES.items():
        heights = np.array([m.height for m in mounts if m.vehicle == name])
        assert abs(len(heights) / len(mounts) - share) < 0.07 and spans(heights, lo, hi, 0.15), name
    assert spans(np.array([m.hfov for m in mounts]), *M.HFOV_DEG)
    assert spans(np.array([m.pitch for m in mounts]), *M.PITCH_DEG)
    assert spans(np.array([m.yaw for m in mounts]), *M.YAW_DEG)
    assert spans(np.array([m.dx for m in mounts]), -M.PRINCIPAL_OFFSET, M.PRINCIPAL_OFFSET)
    assert spans(np.array([m.band_shift for m in mounts if m.frame == "band"]), *M.BAND_SHIFT, 0.15)
    for name, share, _ in M.FRAMES:
        assert abs(sum(m.frame == name for m in mounts) / len(mounts) - share) < 0.07, name
    assert spans(np.array([s.road.lane_width for s in scenes]), *LANE_WIDTH_M)
    hoods = [s.rig for s in scenes if s.rig.hood is not None]
    assert abs(len(hoods) / len(scenes) - HOOD_SHARE) < 0.07
    win = lambda rig: rig.window or M.Window(0, 0, 1640, 590)  # noqa: E731
    rows = np.array([(win(r).bottom - r.hood.top) / win(r).height for r in hoods])
    assert spans(rows, *HOOD_ROWS, 0.1)
    # what the model sees varies as widely as the cameras: the horizon row and the focal length in source pixels
    horizons = np.array([s.camera.horizon for s in scenes])
    focals = np.array([s.camera.focal for s in scenes])
    assert np.percentile(horizons, 95) - np.percentile(horizons, 5) > 150 and focals.max() / focals.min() > 4


def test_the_window_is_the_letterbox_the_runtime_makes():
    from runtime.frame_policy import FramePolicy
    from runtime.preprocess import Preprocess

    for w, h in [(1920, 1080), (1280, 720), (640, 480), (1920, 1280), (2000, 1000), (3280, 590)]:
        policy, window = FramePolicy(Preprocess(), w, h), M.window_of(w / h)
        assert (window.left, window.top, window.width, window.height) == (policy.left, policy.upper, policy.scaled_w, policy.scaled_h)


def test_lanes_converge_on_the_cameras_vanishing_point():
    """Straight roads: the ego lines' extensions meet at the camera's (cx, horizon) (the lens' mild
    distortion aside), whatever the mount."""
    checked = 0
    for i in range(60):
        scene = sample_scene(np.random.default_rng(3000 + i), "normal")
        scene.road = replace(scene.road, curvature=0.0, dcurvature=0.0, heading=0.0)
        scene.rig = replace(scene.rig, k1=0.0, roll=0.0)
        lanes = annotate(scene)
        if 2 not in lanes or 3 not in lanes or len(lanes[2]) < 4 or len(lanes[3]) < 4:
            continue
        (b2, a2), (b3, a3) = (np.polyfit(lanes[k][:, 1], lanes[k][:, 0], 1) for k in (2, 3))
        v = (a3 - a2) / (b2 - b3)
        assert abs(v - scene.camera.horizon) < 1.0 and abs(a2 + b2 * v - scene.camera.cx) < 1.0
        checked += 1
    assert checked > 30


def test_hoods_sit_at_the_frame_bottom_and_lanes_run_through_them():
    checked = 0
    for i in range(60):
        scene = sample_scene(np.random.default_rng(i), "normal")
        if scene.rig is None or scene.rig.hood is None:
            continue
        frame = render_scene(scene)
        hood, win = scene.rig.hood, scene.rig.window or M.Window(0, 0, 1640, 590)
        for lane_id, pts in frame.lanes.items():
            # an annotated point below the hood edge is still annotated, and its label pixel set
            under = [(x, y) for x, y in pts if win.left <= x < win.right and hood.edge(np.array([x]))[0] + 5 < y < win.bottom]
            for x, y in under:
                assert frame.label[int(round(y)), int(round(x))] == lane_id
            checked += len(under)
        ego = [frame.lanes[k] for k in (2, 3) if k in frame.lanes]
        assert all(p[0, 1] == win.bottom or p[0, 0] < win.left + 40 or p[0, 0] > win.right - 40 for p in ego), "ego lines start at the frame's bottom row"
        outside = np.ones((590, 1640), bool)
        outside[win.top : win.bottom, win.left : win.right] = False
        assert not frame.image[outside].any() and not frame.label[outside].any()  # black bars, no labels there
    assert checked > 100


def test_overlay_and_margins_never_erase_labels():
    for i in range(12):
        scene = sample_scene(np.random.default_rng(50 + i), "normal")
        bare = sample_scene(np.random.default_rng(50 + i), "normal")
        bare.rig = Rig(hood=None, margins=None, overlay=None, k1=scene.rig.k1, roll=scene.rig.roll, window=scene.rig.window) if scene.rig else None
        assert np.array_equal(render_scene(scene).label, render_scene(bare).label)


def test_lens_round_trip_and_warp_agree_with_the_points():
    lens = Lens(k1=0.15, roll=1.5, focal=1000.0, cu=819.5, cv=294.5)
    u, v = np.meshgrid(np.linspace(-40, 1680, 30), np.linspace(0, 700, 20))
    fu, fv = lens.forward(*lens.inverse(u, v))
    assert np.abs(fu - u).max() < 1e-6 and np.abs(fv - v).max() < 1e-6
    # barrel: a point near the corner moves towards the centre
    du, dv = lens.forward(np.array([1600.0]), np.array([580.0]))
    assert du[0] < 1600 and dv[0] < 580
    # the image warp moves a bright dot to where forward() sends its coordinates
    img = np.zeros((295, 820, 3), np.float32)
    small = Lens(k1=0.15, roll=1.5, focal=500.0, cu=409.5, cv=147.0)
    img[240:243, 700:703] = 255.0
    out = small.warp(img)
    ys, xs = np.nonzero(out[:, :, 0] > 60)
    eu, ev = small.forward(np.array([701.0]), np.array([241.0]))
    assert abs(xs.mean() - eu[0]) < 1.0 and abs(ys.mean() - ev[0]) < 1.0


@pytest.mark.parametrize("seed", range(4))
def test_annotated_points_lie_on_painted_lines_through_the_lens(seed):
    """Solid, unworn lines on a bare road: wherever the image shows road (not hood, not margin),
    the annotated points are brighter than the road beside them."""
    scene = sample_scene(np.random.default_rng(seed), "normal")
    scene.vehicles, scene.decals, scene.shadows, scene.seams = [], [], [], []
    scene.surface = None
    scene.light.glare, scene.light.motion_blur, scene.light.banding, scene.light.sun = None, 0, 0.0, None
    scene.light.night = False  # daylight (a dusk draw dims yellow paint below the contrast test)
    for m in scene.markings:
        m.dashed, m.wear, m.painted, m.double = False, 0.0, True, False
        m.paint_width = 0.2
    scene.rig.hood, scene.rig.margins, scene.rig.overlay = None, None, None
    scene.rig.k1, scene.rig.roll = 0.15, 1.5
    frame = render_scene(scene)
    grey = frame.image.astype(np.float32).mean(axis=2)
    hits = total = 0
    for pts in frame.lanes.values():
        for x, y in pts:
            xi, yi = int(round(x)), int(round(y))
            win = scene.rig.window or M.Window(0, 0, 1640, 590)
            if not (max(330, win.top + 10) < y < win.bottom - 10 and win.left + 30 < x < win.right - 30):
                continue
            total += 1
            d = int(max(25, 2 * 0.2 * (y - scene.camera.horizon) / scene.camera.height))  # beside the 0.2 m paint at that row
            hits += grey[yi, xi] > grey[yi, np.clip([xi - d, xi + d], 0, 1639)].mean() + 20
    assert total > 20 and hits / total > 0.9
