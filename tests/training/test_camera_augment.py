"""Another camera's view as augmentation (issue "Any camera", part 2): the homography of a change
of pitch, yaw, height and focal length moves the image, its label and its ``.lines.txt`` lanes
together, and is the physics it claims to be (checked against the generator's own cameras)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from lanedata.labels.lane_label import draw_label
from lanedata.synthetic.render import annotate
from lanedata.synthetic.scene import sample_scene
from runtime.camera_geometry import camera_homography, warp_points
from runtime.preprocess import Preprocess
from training.config import ConfigError, load_config
from training.data.augment import lanes_present, random_camera, scaled_crop


def x_at(lane: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """x of a lane (N, 2), bottom first, interpolated at ``rows``."""
    return np.interp(rows, lane[::-1, 1], lane[::-1, 0])


@pytest.mark.parametrize("height, focal", [(1.25, 1.0), (0.8, 1.15), (1.1, 0.85)])
def test_height_and_focal_change_maps_lanes_onto_the_other_cameras_lanes(height, focal):
    """A generator scene seen by a pinhole camera, and the same road seen by that camera raised by
    ``height`` with its focal length scaled by ``focal``: the homography maps the first camera's
    annotated lanes onto the second camera's, to a tenth of a pixel (the annotations keep 3 decimals
    and are compared between their 10-row samples)."""
    scene = sample_scene(np.random.default_rng(3), "normal")
    scene = replace(scene, rig=None)  # a bare pinhole camera: no lens warp
    cam = scene.camera
    other = replace(scene, camera=replace(cam, height=cam.height * height, focal=cam.focal * focal))
    h = camera_homography(height=height, focal=focal, f=cam.focal, cx=cam.cx, cy=cam.horizon)
    before, after = annotate(scene), annotate(other)
    assert before.keys() == after.keys() and len(before) >= 2
    for lane_id, lane in before.items():
        moved = warp_points(lane, h)
        target = after[lane_id]
        rows = target[:, 1][(target[:, 1] <= moved[:, 1].max()) & (target[:, 1] >= moved[:, 1].min())]
        assert len(rows) >= 5
        np.testing.assert_allclose(x_at(moved, rows), x_at(target, rows), atol=0.1)


def test_pitch_and_yaw_move_the_vanishing_point_as_the_generator_places_it():
    """A level camera's horizon (cx, cy) goes to (cx + f tan(yaw), cy + f tan(pitch)): the
    convention of lanedata.synthetic.mount (pitch > 0 tilted up: horizon lower)."""
    f, cx, cy = 900.0, 800.0, 300.0
    for pitch, yaw in [(3.0, 0.0), (0.0, -2.5), (-2.0, 1.5)]:
        h = camera_homography(pitch=pitch, yaw=yaw, f=f, cx=cx, cy=cy)
        (x, y), = warp_points(np.array([[cx, cy]]), h)
        assert x == pytest.approx(cx + f * np.tan(np.radians(yaw)), abs=1e-6)
        if yaw == 0:
            assert y == pytest.approx(cy + f * np.tan(np.radians(pitch)), abs=1e-6)
    np.testing.assert_allclose(camera_homography(f=f, cx=cx, cy=cy), np.eye(3), atol=1e-12)


def test_the_warped_label_and_the_warped_lines_agree_with_the_warped_image():
    """A drawn frame (white lanes on grey) with its label and lanes: after the one perspective warp
    (camera change + crop + resize) the label's lane pixels are the image's bright pixels, and the
    label drawn from the warped ``.lines.txt`` points covers the warped label's lanes."""
    pre = Preprocess(net_width=410, net_height=88)
    lanes = {2: np.array([[500.0, 589.0], [700.0, 420.0], [790.0, 300.0]]), 3: np.array([[1200.0, 589.0], [980.0, 420.0], [860.0, 300.0]])}
    label = draw_label(lanes, (590, 1640))
    image = np.full((590, 1640, 3), 90, np.uint8)
    image[label > 0] = 250
    h = camera_homography(pitch=2.0, yaw=-2.0, height=1.2, focal=1.1, cx=819.5, cy=294.5)
    net_image, net_label = scaled_crop(pre, image, label, 1.0, np.random.default_rng(0), h)
    lane_px = net_label.astype(bool) & (net_label != 255)
    assert lane_px.sum() > 500
    assert (net_image[lane_px][:, 0] > 200).mean() > 0.95 and (net_image[(net_label == 0)][:, 0] < 140).mean() > 0.95
    # the lines, warped and taken to network pixels, drawn as a label at network size
    to_net = lambda pts: np.stack(pre.image_to_net(pts[:, 0], pts[:, 1]), 1)  # noqa: E731
    redrawn = draw_label({k: to_net(warp_points(v, h)) for k, v in lanes.items()}, net_label.shape)
    for k in lanes:
        a, b = net_label == k, redrawn == k
        assert (a & b).sum() / a.sum() > 0.9  # the thin network-size redraw lies inside the warped 16 px label


def test_a_lane_that_leaves_the_view_loses_its_flag_and_nothing_is_drawn_at_zero_probability():
    label = np.zeros((10, 20), np.uint8)
    label[2, 3] = 2
    assert lanes_present((1, 1, 0, 1), label) == (0, 1, 0, 0)
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    assert random_camera({"camera_p": 0.0}, rng, Preprocess()) is None and rng.bit_generator.state == state


def test_camera_settings_are_checked(tmp_path):
    for bad in ("camera_p: 1.5", "camera_height: [1.2, 0.8]", "camera_pitch: -1"):
        path = tmp_path / "bad.yaml"
        path.write_text(f"name: x\naugment:\n  {bad}\n")
        with pytest.raises(ConfigError, match="augment.camera_"):
            load_config(path)
