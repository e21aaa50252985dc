"""Training augmentation: mirror with lane IDs and flags swapped, camera degradations, configs."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from runtime.preprocess import Preprocess
from tests.helpers import small_run
from training.checkpoint import load_checkpoint
from training.config import DEFAULTS, ConfigError, load_config
from training.data.augment import augment, gaussian_noise, hflip, mirror_exist, photometric, rotate, scaled_crop
from training.data.culane_dataset import CulaneSegmentation

SYNTH = "training/configs/synthetic/erfnet.yaml"
NEW_OPS = ("flip", "shift", "blur_p", "noise_std", "jpeg_p")  # 0 = off
PRE = Preprocess(src_width=160, src_height=60, crop_top=12, net_width=64, net_height=16)  # 160x48 after the crop
SWAP = {0: 0, 1: 4, 2: 3, 3: 2, 4: 1, 255: 255}


def neutral(**changes) -> dict:
    """Augment parameters that change nothing (scale 1, no rotation, jitter or degradation)."""
    params = {**DEFAULTS["augment"], "scale": [1.0, 1.0], "rotation": 0.0, "brightness": 0.0, "contrast": 0.0,
              "saturation": 0.0, "hue": 0.0}
    return {**params, **changes}


def asymmetric_pair() -> tuple[np.ndarray, np.ndarray]:
    """A 160x60 frame, bright left half and dark right half; label: lane 1 left, lane 2 centre-left, 255 top-right."""
    image = np.full((60, 160, 3), 30, np.uint8)
    image[:, :80] = 200
    image[:, :10, 2] = 255  # a red edge at the far left: no symmetry at all
    label = np.zeros((60, 160), np.uint8)
    label[12:, 20:30] = 1
    label[12:, 60:70] = 2
    label[12:30, 120:160] = 255
    return image, label


def test_hflip_mirrors_pixels_and_swaps_lane_ids_exactly():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (16, 64, 3), dtype=np.uint8)
    label = rng.choice(np.array([0, 1, 2, 3, 4, 255], np.uint8), size=(16, 64))
    img, lab = hflip(image, label)
    assert np.array_equal(img, image[:, ::-1])
    expected = np.vectorize(SWAP.get)(label[:, ::-1]).astype(np.uint8)
    assert np.array_equal(lab, expected) and lab.dtype == np.uint8
    assert mirror_exist((1, 1, 0, 0)) == (0, 0, 1, 1) and mirror_exist((0, 1, 0, 1)) == (1, 0, 1, 0)


def test_augment_flip_probability_one_always_zero_never():
    image, label = asymmetric_pair()
    plain_img, plain_lab = PRE.resize_image(image), PRE.label(label)
    for seed in range(20):
        img, lab, flipped = augment(PRE, image, label, neutral(flip=1.0), np.random.default_rng(seed))
        assert flipped and np.array_equal(img, plain_img[:, ::-1])
        assert np.array_equal(lab, np.vectorize(SWAP.get)(plain_lab[:, ::-1]).astype(np.uint8))
        assert set(np.unique(lab)) == {0, 3, 4, 255} and (lab[:, 48:] == 4).any()  # lane 1 now at the right
        img, lab, flipped = augment(PRE, image, label, neutral(flip=0.0), np.random.default_rng(seed))
        assert not flipped and np.array_equal(img, plain_img) and np.array_equal(lab, plain_lab)
    draws = [augment(PRE, image, label, neutral(flip=0.5), np.random.default_rng(s))[2] for s in range(200)]
    assert 70 < sum(draws) < 130


def test_all_zero_params_equal_the_plain_preprocessing():
    image, label = asymmetric_pair()
    img, lab, flipped = augment(PRE, image, label, neutral(), np.random.default_rng(5))
    assert not flipped and np.array_equal(img, PRE.resize_image(image)) and np.array_equal(lab, PRE.label(label))


def test_new_ops_off_reproduce_the_previous_augmentation_draw_for_draw():
    # the paper recipe (new keys 0) must give the samples it gave before they existed: the old
    # pipeline was scaled_crop -> rotate -> photometric on one generator
    image, label = asymmetric_pair()
    params = load_config("training/configs/culane/erfnet.yaml")["augment"]
    for seed in range(5):
        img, lab, flipped = augment(PRE, image, label, params, np.random.default_rng(seed))
        rng = np.random.default_rng(seed)
        old_img, old_lab = scaled_crop(PRE, image, label, float(rng.uniform(*params["scale"])), rng)
        old_img, old_lab = rotate(old_img, old_lab, float(rng.uniform(-params["rotation"], params["rotation"])))
        old_img = photometric(old_img, params, rng)
        assert not flipped and np.array_equal(img, old_img) and np.array_equal(lab, old_lab)


def test_each_degradation_changes_the_image_only_when_on():
    image, label = asymmetric_pair()
    plain = PRE.resize_image(image)
    for key, value in (("blur_p", 1.0), ("noise_std", 6.0), ("jpeg_p", 1.0), ("shift", 0.2)):
        changed = [not np.array_equal(augment(PRE, image, label, neutral(**{key: value}), np.random.default_rng(s))[0], plain)
                   for s in range(4)]
        assert any(changed), key
    shifted = [augment(PRE, image, label, neutral(shift=0.2), np.random.default_rng(s))[1] for s in range(8)]
    assert any((lab == 255).all(axis=0).any() for lab in shifted)  # columns moved in from outside are ignored


def test_noise_std_and_chroma_fraction():
    flat = np.full((128, 128, 3), 128, np.uint8)
    for chroma in (0.0, 1.0):
        noise = gaussian_noise(flat, 6.0, chroma, np.random.default_rng(1)).astype(np.float64) - 128
        assert noise.std() == pytest.approx(6.0, rel=0.05)
        corr = np.corrcoef(noise[..., 0].ravel(), noise[..., 1].ravel())[0, 1]
        assert corr == pytest.approx(1.0 - chroma, abs=0.05)
    assert np.array_equal(gaussian_noise(flat, 0.0, 0.5, np.random.default_rng(1)), flat)


def write_dataset(root: Path, exist: str = "1 0 0 0") -> Path:
    image, label = asymmetric_pair()
    (root / "img").mkdir(parents=True)
    (root / "lab").mkdir()
    (root / "list").mkdir()
    for i in range(3):
        cv2.imwrite(str(root / "img" / f"{i}.png"), image)
        cv2.imwrite(str(root / "lab" / f"{i}.png"), label)
    (root / "list" / "train_gt.txt").write_text("".join(f"/img/{i}.png /lab/{i}.png {exist}\n" for i in range(3)))
    return root


def test_dataset_reverses_existence_flags_exactly_when_the_image_was_mirrored(tmp_path):
    recipe = load_config(SYNTH)["augment"]  # the synthetic recipe: flip 0.5 with jitter, noise, blur, JPEG, another camera
    params = {**recipe, "camera_p": 0.0}  # here: the flip alone (the camera check follows)
    ds = CulaneSegmentation(write_dataset(tmp_path), "train_gt.txt", PRE, params, seed=0)
    seen = set()
    for epoch in range(12):
        for index in range(3):
            x, y, e = ds[(index, epoch)]
            mirrored = x[:, :, :24].mean() < x[:, :, -24:].mean()  # the bright half is on the right
            lanes = set(y.unique().tolist()) - {0, 255}
            assert e.tolist() == ([0.0, 0.0, 0.0, 1.0] if mirrored else [1.0, 0.0, 0.0, 0.0])
            assert lanes <= ({3, 4} if mirrored else {1, 2}) and lanes
            seen.add(bool(mirrored))
    assert seen == {True, False}
    # with another camera's view (the recipe's camera_p), a lane that leaves the view loses its flag, and only then
    assert recipe["camera_p"] > 0
    cam = CulaneSegmentation(write_dataset(tmp_path / "cam"), "train_gt.txt", PRE, recipe, seed=0)
    for epoch in range(12):
        for index in range(3):
            _, y, e = cam[(index, epoch)]
            lanes = set(y.unique().tolist()) - {0, 255}
            flagged = {k for k, v in zip((1, 2, 3, 4), e.tolist()) if v}
            assert flagged <= lanes and flagged <= {1, 4}  # a flag only where its lane is in view; never one added


def test_samples_are_a_pure_function_of_seed_epoch_index(tmp_path):
    root = write_dataset(tmp_path)
    params = load_config(SYNTH)["augment"]
    a = CulaneSegmentation(root, "train_gt.txt", PRE, params, seed=4)
    b = CulaneSegmentation(root, "train_gt.txt", PRE, params, seed=4)
    for item in ((0, 0), (2, 7), (1, 3)):
        for u, v in zip(a[item], b[item]):
            assert u.equal(v)
    assert not a[(0, 0)][0].equal(a[(0, 1)][0]) and not a[(0, 0)][0].equal(CulaneSegmentation(root, "train_gt.txt", PRE, params, seed=5)[(0, 0)][0])


@pytest.mark.parametrize("override, key", [
    ("augment.flip=1.5", "augment.flip"), ("augment.blur_p=-0.1", "augment.blur_p"), ("augment.jpeg_p=true", "augment.jpeg_p"),
    ("augment.noise_std=-1", "augment.noise_std"), ("augment.shift=0.9", "augment.shift"), ("augment.blur_sigma=0", "augment.blur_sigma"),
    ("augment.jpeg_quality=[90, 40]", "augment.jpeg_quality"), ("augment.jpeg_quality=[0, 50]", "augment.jpeg_quality"),
    ("augment.jpeg_quality=60", "augment.jpeg_quality"), ("augment.scale=[1.1, 0.9]", "augment.scale"),
    ("augment.rotation=-2", "augment.rotation"), ("augment.brightness=1.5", "augment.brightness"), ("augment.enabled=2", "augment.enabled"),
])
def test_validation_rejects_bad_augment_values_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=rf"^{key}: ") as err:
        load_config(SYNTH, [override])
    assert "\n" not in str(err.value)


def test_paper_configs_keep_the_new_ops_off_and_synthetic_ones_turn_them_on():
    for path in sorted(Path("training/configs/culane").glob("*.yaml")):
        aug = load_config(path)["augment"]
        assert all(aug[k] == 0 for k in NEW_OPS), path
    for name in ("erfnet", "resnet_psp", "erfnet_intra_kd"):
        aug = load_config(f"training/configs/synthetic/{name}.yaml")["augment"]
        assert aug["flip"] == 0.5 and all(aug[k] > 0 for k in NEW_OPS), name
    lgad = load_config("training/configs/synthetic/lgad_teacher.yaml")["augment"]  # reads labels: geometry only
    assert lgad["flip"] == 0.5 and lgad["blur_p"] == lgad["noise_std"] == lgad["jpeg_p"] == 0


def test_a_run_records_its_augmentation_in_config_yaml_and_checkpoints(tiny_dataset, tmp_path):
    from training.distributed import Dist
    from training.train import Trainer

    cfg = load_config(SYNTH, small_run(tiny_dataset, tmp_path / "run", "train.iterations=1", "train.val_every=1", "train.max_val_images=1"))
    Trainer(cfg, Dist()).run()
    written = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["augment"]
    assert written == cfg["augment"] and written["flip"] == 0.5 and written["jpeg_quality"] == [60, 95]
    assert load_checkpoint(tmp_path / "run" / "last.pt")["config"]["augment"] == written
