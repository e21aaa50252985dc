"""The synthetic dashcam: geometry statistics of its annotations, the hood, the lens, overlays.

Known breach of the rule "dev sets measure, they never tune" (inherited, moved here unchanged by the
one-house move): generator v2's camera ranges (vanishing point rows 263-281, columns 771-817, ego
lane 2.48-3.08 camera heights) were fitted to the annotations of the real dev frames, and these
tests check the generator's annotations against those ranges. The "any camera" issue replaces them
with ranges from camera specs and lane standards; until then these tests pin the current generator.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from lanedata.synthetic.render import annotate, render_scene
from lanedata.synthetic.rig import Lens, Rig, sample_rig
from lanedata.synthetic.scene import sample_scene


def fitted_lines(lanes: dict[int, np.ndarray]) -> dict[int, tuple[float, float]]:
    """Lane ID -> (a, b) of u = a + b v, fitted to the points below row 330 (as for the real set)."""
    out = {}
    for lane_id, pts in lanes.items():
        low = pts[pts[:, 1] > 330]
        if len(low) >= 3:
            b, a = np.polyfit(low[:, 1], low[:, 0], 1)
            out[lane_id] = (a, b)
    return out


def geometry_stats(n: int = 120) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    vp_u, vp_v, width = [], [], []
    for i in range(n):
        scene = sample_scene(np.random.default_rng(1000 + i), "normal")
        scene.road = replace(scene.road, curvature=0.0, dcurvature=0.0)  # straight roads, as the real statistics assume
        lines = fitted_lines(annotate(scene))
        if 2 in lines and 3 in lines:
            (a2, b2), (a3, b3) = lines[2], lines[3]
            v = (a3 - a2) / (b2 - b3)
            vp_u.append(a2 + b2 * v)
            vp_v.append(v)
            width.append(b3 - b2)
    return np.array(vp_u), np.array(vp_v), np.array(width)


def test_vanishing_point_and_lane_width_fall_where_culane_has_them():
    vp_u, vp_v, width = geometry_stats()
    assert len(width) > 100
    # real: rows 263-281, columns 771-817, width 2.48-3.08 (5-95 %); ours is wider but centred on them
    assert 268 < np.median(vp_v) < 282 and np.percentile(vp_v, 5) > 245 and np.percentile(vp_v, 95) < 305
    assert 770 < np.median(vp_u) < 835 and np.percentile(vp_u, 5) > 700 and np.percentile(vp_u, 95) < 900
    assert 2.55 < np.median(width) < 3.05 and np.percentile(width, 5) > 2.2 and np.percentile(width, 95) < 3.5


def test_most_frames_have_a_hood_and_lanes_run_through_it_to_the_bottom():
    rigs = [sample_rig(np.random.default_rng(i), sample_scene(np.random.default_rng(i), "normal").camera) for i in range(200)]
    tops = np.array([r.hood.top for r in rigs if r.hood is not None])
    assert 0.75 < len(tops) / len(rigs) < 0.95
    assert 390 <= tops.min() and tops.max() <= 485  # real: hood top near row 415 at the image centre

    checked = 0
    for i in range(40):
        scene = sample_scene(np.random.default_rng(i), "normal")
        if scene.rig is None or scene.rig.hood is None:
            continue
        frame = render_scene(scene)
        hood = scene.rig.hood
        for lane_id, pts in frame.lanes.items():
            # an annotated point below the hood edge is still annotated, and its label pixel set
            under = [(x, y) for x, y in pts if 0 <= x < 1640 and hood.edge(np.array([x]))[0] + 5 < y < 590]
            for x, y in under:
                assert frame.label[int(round(y)), int(round(x))] == lane_id
            checked += len(under)
        ego = [frame.lanes[k] for k in (2, 3) if k in frame.lanes]
        assert all(p[0, 1] == 590 or p[0, 0] < 40 or p[0, 0] > 1600 for p in ego), "ego lines start at the bottom row"
    assert checked > 100


def test_overlay_and_margins_never_erase_labels():
    for i in range(12):
        scene = sample_scene(np.random.default_rng(50 + i), "normal")
        bare = sample_scene(np.random.default_rng(50 + i), "normal")
        bare.rig = Rig(hood=None, margins=None, overlay=None, k1=scene.rig.k1, roll=scene.rig.roll) if scene.rig else None
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
            if not (330 < y < 580 and 30 < x < 1610):
                continue
            total += 1
            hits += grey[yi, xi] > grey[yi, [xi - 25, xi + 25]].mean() + 20
    assert total > 20 and hits / total > 0.9
