import hashlib
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from runtime.culane import CATEGORIES, CulaneDataset, split_list_name
from runtime.lines import read_lines_file
from lanedata.synthetic.dataset import generate_dataset
from lanedata.synthetic.render import render_scene
from lanedata.synthetic.scene import sample_scene
from lanedata.synthetic.video import generate_video


def digest(root) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "synthetic.json"
    }


def test_same_seed_same_bytes_whatever_the_workers(tmp_path):
    a = generate_dataset(tmp_path / "a", 6, 2, 1, seed=5, workers=1, progress=False)
    generate_dataset(tmp_path / "b", 6, 2, 1, seed=5, workers=2, progress=False)
    generate_dataset(tmp_path / "c", 6, 2, 1, seed=6, workers=2, progress=False)
    da, db, dc = digest(tmp_path / "a"), digest(tmp_path / "b"), digest(tmp_path / "c")
    assert da == db
    images = [k for k in da if k.endswith(".jpg")]
    assert len(images) == 6 + 2 + 9
    assert all(da[k] != dc[k] for k in images)
    assert a["counts"] == {"train": 6, "val": 2, "test": 9}


def test_annotations_lie_on_their_label_and_flags_match(tiny_dataset):
    ds = CulaneDataset(tiny_dataset)
    samples = ds.read_list("train_gt.txt").samples + ds.read_list("val_gt.txt").samples
    on_label = total = 0
    for s in samples:
        label = ds.read_label(s)
        lanes = ds.read_lanes(s)
        present = {int(v) for v in np.unique(label)} - {0}
        assert present == {i + 1 for i, e in enumerate(s.exist) if e}, s.image
        ids = [i + 1 for i, e in enumerate(s.exist) if e]
        for lane_id, pts in zip(ids, lanes):
            ys = pts[:, 1]
            assert ys[0] <= 590 and np.all(np.diff(ys) == -10), "points every 10 px upward"
            inside = (pts[:, 0] >= 0) & (pts[:, 0] < 1640) & (ys < 590)
            xi, yi = np.rint(pts[inside]).astype(int).T
            hits = label[yi, xi] == lane_id
            # lanes converge towards the horizon, where a later lane may paint over an earlier one
            assert hits[yi > 400].all(), s.image
            on_label += int(hits.sum())
            total += len(hits)
    assert on_label / total > 0.97


def test_cross_has_no_lanes_and_test_splits_are_complete(tiny_dataset):
    ds = CulaneDataset(tiny_dataset)
    for category in CATEGORIES:
        samples = ds.read_list(f"test_split/{split_list_name(category)}").samples
        assert len(samples) == 3
        assert all(category in s.image for s in samples)
        if category == "cross":
            assert all(ds.read_lanes(s) == [] for s in samples)
        elif category != "noline":
            assert all(len(ds.read_lanes(s)) >= 2 for s in samples)
    text = (tiny_dataset / "list" / "test_split" / "test0_normal.txt").read_text()
    assert not text.startswith("/")  # CULane's split lists have no leading slash
    assert (tiny_dataset / "list" / "test.txt").read_text().startswith("/")
    manifest = json.loads((tiny_dataset / "synthetic.json").read_text())
    assert manifest["synthetic"] is True and manifest["counts"]["test"] == 27


def mean_of(category: str, n: int, fn) -> float:
    return float(np.mean([fn(render_scene(sample_scene(np.random.default_rng(i), category))) for i in range(n)]))


def test_categories_look_different():
    def brightness(frame):
        return frame.image[240:].mean()  # what the network sees

    def saturated(frame):
        return (frame.image.max(axis=2) >= 250).mean()

    assert mean_of("night", 6, brightness) < 0.5 * mean_of("normal", 6, brightness)
    assert mean_of("hlight", 6, saturated) > 5 * mean_of("normal", 6, saturated) + 0.01

    def paint_contrast(frame):  # brightness on the annotated lanes relative to the road around them
        on = frame.label > 0
        near = cv2.dilate(on.astype(np.uint8), np.ones((41, 41), np.uint8)).astype(bool) & ~on
        grey = frame.image.mean(axis=2)
        return grey[on].mean() - grey[near].mean() if on.any() else 0.0

    assert mean_of("noline", 6, paint_contrast) < 0.5 * mean_of("normal", 6, paint_contrast)
    crowd = [sample_scene(np.random.default_rng(i), "crowd") for i in range(6)]
    assert all(len(s.vehicles) >= 3 for s in crowd)
    assert all(s.decals for s in (sample_scene(np.random.default_rng(i), "arrow") for i in range(6)))
    curv = [abs(sample_scene(np.random.default_rng(i), c).road.curvature) for i in range(6) for c in ("curve",)]
    assert min(curv) > 3e-3


def test_resume_skips_written_files_and_refuses_other_parameters(tmp_path):
    root = tmp_path / "d"
    generate_dataset(root, 4, 1, 1, seed=2, workers=1, progress=False)
    before = digest(root)
    victim = root / "driver_synth_train/clip_0000.MP4/00002.jpg"
    victim.unlink()
    (root / "synthetic.json").rename(root / "synthetic.partial.json")  # as if killed before the end
    manifest = generate_dataset(root, 4, 1, 1, seed=2, workers=1, progress=False)
    assert digest(root) == before
    assert manifest["generated"] == 1 and manifest["resumed_skipped"] == 4 + 1 + 9 - 1
    again = generate_dataset(root, 4, 1, 1, seed=2, workers=1, progress=False)
    assert again == manifest  # up to date: nothing redone
    with pytest.raises(FileExistsError, match="other parameters"):
        generate_dataset(root, 4, 1, 1, seed=3, workers=1, progress=False)
    generate_dataset(root, 2, 1, 1, seed=3, workers=1, force=True, progress=False)
    assert len(CulaneDataset(root).read_list("train_gt.txt").samples) == 2
    assert not (root / "driver_synth_train/clip_0000.MP4/00003.jpg").exists()


def read_frames(path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            return frames
        frames.append(frame)


def test_video_is_continuous_and_scored(tmp_path):
    path = tmp_path / "v" / "drive.mp4"
    sidecar = generate_video(path, frames=40, seed=1, progress=False)
    frames = read_frames(path)
    cap = cv2.VideoCapture(str(path))
    assert len(frames) == 40 and frames[0].shape == (590, 1640, 3)
    assert cap.get(cv2.CAP_PROP_FPS) == 30
    gt = path.with_name("drive_gt")
    assert (gt / "list.txt").read_text().splitlines() == [f"{n:05d}.jpg" for n in range(40)]
    lanes = [read_lines_file(gt / f"{n:05d}.lines.txt") for n in range(40)]
    assert all(len(l) >= 2 for l in lanes)
    # continuity: consecutive frames are close, lanes move little from frame to frame
    diffs = [np.abs(frames[i + 1].astype(int) - frames[i]).mean() for i in range(39)]
    assert max(diffs) < 12
    def x_at(lane, y=450.0):
        return np.interp(y, lane[::-1, 1], lane[::-1, 0])

    steps = [
        max(abs(x_at(a) - x_at(b)) for a, b in zip(lanes[i], lanes[i + 1]))
        for i in range(39)
        if len(lanes[i]) == len(lanes[i + 1])
    ]
    assert len(steps) > 30 and max(steps) < 15
    assert sidecar["frames"] == 40 and len(sidecar["conditions"]) == 40


def test_video_has_a_night_stretch(tmp_path):
    path = tmp_path / "drive.mp4"
    sidecar = generate_video(path, frames=150, seed=4, progress=False)
    a, b = sidecar["night_frames"]
    brightness = [frame.mean() for frame in read_frames(path)]
    assert np.mean(brightness[a:b]) < 0.5 * np.mean(brightness[:a - 45])
    assert "night" in sidecar["conditions"]


def test_cli(tmp_path):
    out = tmp_path / "cli"
    cmd = [sys.executable, "-m", "lanedata.synthetic", "--out", str(out), "--train", "2", "--val", "1", "--test-per-category", "1", "--no-progress"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "synthetic CULane at" in r.stdout
    r = subprocess.run(cmd[:-1] + ["--seed", "9", "--no-progress"], capture_output=True, text=True)
    assert r.returncode == 2 and "other parameters" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run(cmd + ["--train", "-1"], capture_output=True, text=True)
    assert r.returncode == 2 and "--train: expected an integer >= 0, got -1" in r.stderr and r.stderr.count("\n") == 1


def test_never_writes_into_or_deletes_a_foreign_dataset(tmp_path):
    real = tmp_path / "culane"
    (real / "list").mkdir(parents=True)
    (real / "list" / "train_gt.txt").write_text("/driver_23/a.jpg /laneseg_label_w16/driver_23/a.png 1 1 1 1\n")
    with pytest.raises(FileExistsError, match="not a synthetic dataset"):
        generate_dataset(real, 2, 0, 0, workers=1, progress=False)
    with pytest.raises(FileExistsError):
        generate_dataset(real, 2, 0, 0, workers=1, force=True, progress=False)
    assert (real / "list" / "train_gt.txt").read_text().startswith("/driver_23/")
    # --force on our own dataset removes only what the generator owns
    own = tmp_path / "synth"
    generate_dataset(own, 2, 1, 1, seed=1, workers=1, progress=False)
    (own / "video").mkdir()
    (own / "video" / "keep.txt").write_text("user file")
    generate_dataset(own, 3, 1, 1, seed=2, workers=1, force=True, progress=False)
    assert (own / "video" / "keep.txt").exists()
    assert len(CulaneDataset(own).read_list("train_gt.txt").samples) == 3


def test_written_files_get_normal_permissions(tiny_dataset):
    import os
    import stat

    umask = os.umask(0)
    os.umask(umask)
    mode = stat.S_IMODE((tiny_dataset / "list" / "test.txt").stat().st_mode)
    assert mode == 0o666 & ~umask


def test_video_rerender_replaces_ground_truth_as_a_set(tmp_path):
    path = tmp_path / "drive.mp4"
    generate_video(path, frames=6, seed=1, progress=False)
    generate_video(path, frames=3, seed=2, progress=False)
    gt = sorted(p.name for p in (tmp_path / "drive_gt").iterdir())
    assert gt == ["00000.lines.txt", "00001.lines.txt", "00002.lines.txt", "list.txt"]
    assert json.loads((tmp_path / "drive.json").read_text())["seed"] == 2
    assert len(read_frames(path)) == 3
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no partial leftovers
