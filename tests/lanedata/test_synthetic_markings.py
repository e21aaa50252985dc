"""The synthetic ApolloScape-style marking set: class labels of what is painted and visible, the
official layout (read back by the official-table reader and converted by the ApolloScape converter),
determinism and resume."""
import hashlib
from dataclasses import replace

import cv2
import numpy as np
import pytest

from lanedata.apolloscape import labels as apolloscape
from runtime import marking_classes
from runtime.culane import read_list
from lanedata.apolloscape.convert import convert
from lanedata.synthetic.marking_labels import DECAL_CLASSES, train_id
from lanedata.apolloscape.synthetic import generate, main, marking_scene
from lanedata.synthetic.render import render_scene
from lanedata.synthetic.rig import hood_mask
from lanedata.synthetic.scene import WHITE, Decal, Light, sample_scene


def plain_scene(seed: int = 3):
    """A scene in plain daylight, seen through a bare camera (no hood, lens or margins), with no
    vehicles, decals or crossing: its lines only."""
    scene = sample_scene(np.random.default_rng(seed), "normal")
    scene.vehicles, scene.decals, scene.crossing, scene.shadows, scene.rig, scene.light = [], [], None, [], None, Light()
    return scene


def test_the_class_layer_leaves_the_picture_as_it_was():
    for seed in range(3):
        scene = marking_scene(np.random.default_rng(seed))
        plain, labelled = render_scene(scene), render_scene(scene, classes=True)
        assert plain.classes is None and np.array_equal(plain.image, labelled.image)
        assert labelled.classes.shape == labelled.image.shape[:2] and labelled.classes.dtype == np.uint8
        assert labelled.classes.max() < marking_classes.NUM_CLASSES


def test_lines_are_labelled_by_colour_and_dash_and_faded_paint_is_not():
    scene = plain_scene()
    for m in scene.markings:
        m.painted, m.wear, m.color, m.double = True, 0.0, WHITE, False
    scene.markings[0].dashed = False
    scene.markings[1].dashed = True
    for m in scene.markings[2:]:
        m.painted = False
    ids = render_scene(scene, classes=True).classes
    assert {train_id("s_w_d"), train_id("b_w_g")} <= set(np.unique(ids)) <= {0, train_id("s_w_d"), train_id("b_w_g")}
    scene.markings[1].wear = 0.9  # alpha 25 of 255: too faint to label
    ids = render_scene(scene, classes=True).classes
    assert train_id("b_w_g") not in ids and train_id("s_w_d") in ids


@pytest.mark.parametrize("kind", sorted(DECAL_CLASSES))
def test_each_decal_is_labelled_with_its_class_where_it_is_painted(kind):
    scene = plain_scene(4)
    for m in scene.markings:
        m.painted = False
    scene.decals = [Decal(kind=kind, lateral=0.0, distance=8.0, length=5.0, width=1.6, text="BUS")]
    frame = render_scene(scene, classes=True)
    mask = frame.classes == train_id(DECAL_CLASSES[kind])
    assert set(np.unique(frame.classes)) == {0, train_id(DECAL_CLASSES[kind])}
    assert mask.sum() > 500
    grey = cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY).astype(float)
    near = cv2.dilate(mask.astype(np.uint8), np.ones((25, 25), np.uint8)).astype(bool)
    ring = near & ~cv2.dilate(mask.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    assert grey[mask].mean() > grey[ring].mean() + 10  # the labelled pixels are the paint, brighter than the tarmac around


def test_nothing_is_labelled_under_the_hood_or_a_vehicle():
    rng = np.random.default_rng(0)
    for _ in range(40):  # a scene whose rig has a hood and that has a vehicle in front
        scene = marking_scene(rng)
        if scene.rig is not None and scene.rig.hood is not None and scene.vehicles:
            break
    frame = render_scene(scene, classes=True)
    hood = cv2.resize(hood_mask(scene.rig.hood, (590, 1640), 1.0).astype(np.float32), (1640, 590)) > 0.99
    assert hood.any() and not frame.classes[hood].any()
    unoccluded = replace(scene, vehicles=[])
    assert render_scene(unoccluded, classes=True).classes.astype(bool).sum() >= frame.classes.astype(bool).sum()


def digest(root) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "synthetic.json"}


def test_the_set_is_in_the_official_layout_and_converts(tmp_path):
    manifest = generate(tmp_path / "src", 6, 2, 2, seed=1, workers=2, progress=False)
    src = tmp_path / "src"
    samples = read_list(src / "lists" / "train.txt").samples
    assert len(samples) == 6 and all(s.image.startswith("ColorImage_road01/ColorImage/Record001/Camera 5/") for s in samples)
    total = np.zeros(marking_classes.NUM_CLASSES, np.int64)
    for s in samples:
        ids = apolloscape.read_label(src / s.label)  # colour-coded, official table; refuses any other colour
        assert ids.shape == (590, 1640) and str(apolloscape.label_path(s.image)) == s.label
        total += np.bincount(ids.ravel(), minlength=marking_classes.NUM_CLASSES)
    recorded = manifest["pixels_per_class"]["train"]
    assert recorded == {marking_classes.CLASS_NAMES[k]: int(n) for k, n in enumerate(total) if n}
    counts = convert(src, {split: src / "lists" / f"{split}.txt" for split in ("train", "val", "test")}, tmp_path / "root", workers=2)
    assert counts == {"train": 6, "val": 2, "test": 2}
    converted = read_list(tmp_path / "root" / "list" / "test_gt.txt").samples
    first = cv2.imread(str(tmp_path / "root" / converted[0].label), cv2.IMREAD_UNCHANGED)
    source = read_list(src / "lists" / "test.txt").samples[0]
    assert np.array_equal(first, apolloscape.read_label(src / source.label))


def test_same_seed_same_bytes_and_a_killed_run_resumes(tmp_path):
    generate(tmp_path / "a", 4, 1, 1, seed=2, workers=1, progress=False)
    generate(tmp_path / "b", 4, 1, 1, seed=2, workers=2, progress=False)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    victim = next((tmp_path / "b").rglob("*_bin.png"))
    victim.unlink()
    (tmp_path / "b" / "synthetic.json").rename(tmp_path / "b" / "synthetic.partial.json")  # as a killed run leaves it
    manifest = generate(tmp_path / "b", 4, 1, 1, seed=2, workers=1, progress=False)
    assert manifest["generated"] == 1 and manifest["resumed_skipped"] == 5
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    with pytest.raises(FileExistsError, match="other parameters"):
        generate(tmp_path / "b", 5, 1, 1, seed=2, workers=1, progress=False)


def test_the_command_line_refuses_a_foreign_folder(tmp_path, capsys):
    (tmp_path / "mine.txt").write_text("not a dataset")
    assert main(["--out", str(tmp_path), "--train", "1", "--val", "0", "--test", "0", "--no-progress"]) != 0
    assert "not empty and not a synthetic dataset" in capsys.readouterr().err
