import cv2
import numpy as np
import pytest

from runtime.preprocess import IMAGENET_MEAN_RGB, IMAGENET_STD_RGB, Preprocess

PRE = Preprocess()  # CULane recipe: 1640x590, crop 240, 976x208


def test_coordinate_round_trip_is_exact():
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-50, 1700, 1000), rng.uniform(240, 600, 1000)
    xn, yn = PRE.image_to_net(x, y)
    xb, yb = PRE.net_to_image(xn, yn)
    np.testing.assert_allclose(xb, x, atol=1e-9)
    np.testing.assert_allclose(yb, y, atol=1e-9)
    # the crop line and the last row land where the resize puts them
    assert PRE.image_to_net(0, 240)[1] == pytest.approx(0.5 * 208 / 350 - 0.5)
    assert PRE.image_to_net(1639.5, 589.5)[0] == pytest.approx(975.5)


def test_mapping_agrees_with_where_the_pixels_go():
    """A bright blob drawn at known original coordinates peaks where image_to_net says."""
    for x, y in [(300.0, 400.0), (1200.0, 560.0), (820.0, 260.0)]:
        image = np.zeros((590, 1640, 3), np.uint8)
        cv2.circle(image, (int(x), int(y)), 12, (255, 255, 255), -1)
        blob = PRE.resize_image(image)[:, :, 0].astype(np.float64)
        ys, xs = np.mgrid[: blob.shape[0], : blob.shape[1]]
        cx, cy = (blob * xs).sum() / blob.sum(), (blob * ys).sum() / blob.sum()
        ex, ey = PRE.image_to_net(x, y)
        assert abs(cx - ex) < 0.25 and abs(cy - ey) < 0.25


def test_output_layout_and_normalisation():
    bgr = np.zeros((590, 1640, 3), np.uint8)
    bgr[..., 0], bgr[..., 1], bgr[..., 2] = 10, 20, 30  # B, G, R
    out = PRE([bgr, bgr])
    assert out.shape == (2, 3, 208, 976) and out.dtype == np.float32
    expected_rgb = [(30 - IMAGENET_MEAN_RGB[0]) / IMAGENET_STD_RGB[0], (20 - IMAGENET_MEAN_RGB[1]) / IMAGENET_STD_RGB[1], (10 - IMAGENET_MEAN_RGB[2]) / IMAGENET_STD_RGB[2]]
    np.testing.assert_allclose(out[1, :, 100, 100], expected_rgb, rtol=1e-6)
    bgr_pre = Preprocess(rgb=False, mean=(0, 0, 0), std=(1, 1, 1))
    np.testing.assert_allclose(bgr_pre(bgr)[0, :, 5, 5], [10, 20, 30])


def test_batch_equals_single_images():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (3, 590, 1640, 3), dtype=np.uint8)
    batch = PRE(images)
    for i, image in enumerate(images):
        np.testing.assert_array_equal(batch[i], PRE(image)[0])


def test_label_keeps_class_ids():
    label = np.zeros((590, 1640), np.uint8)
    cv2.line(label, (100, 589), (800, 260), 2, 16)
    cv2.line(label, (1500, 589), (900, 260), 3, 16)
    small = PRE.label(label)
    assert small.shape == (208, 976)
    assert set(np.unique(small)) == {0, 2, 3}


def test_sizes_are_checked():
    with pytest.raises(ValueError, match="960x540, preprocessing expects 1640x590"):
        PRE(np.zeros((540, 960, 3), np.uint8))
    with pytest.raises(ValueError, match="crop_top"):
        Preprocess(crop_top=600)


def test_parameters_round_trip_as_data():
    pre = Preprocess(net_width=488, net_height=104, interpolation="area")
    assert Preprocess.from_dict(pre.to_dict()) == pre
    with pytest.raises(ValueError, match="unknown preprocessing keys"):
        Preprocess.from_dict({**pre.to_dict(), "flip": True})
