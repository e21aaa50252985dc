"""CULane labels from ``.lines.txt``: lane IDs as CULane's generator names them, label maps and
existence flags identical to the synthetic generator's own, resumable runs, one-line errors."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from runtime.culane import read_list
from runtime.lines import format_lines
from lanedata.labels.lane_ids import assign_ids
from lanedata.labels.label_maps import make_labels

ROOT = Path(__file__).resolve().parents[2]
W, H = 1640, 590


def straight(bottom_x: float, top_x: float, top_y: float = 300.0, step: float = 10.0) -> np.ndarray:
    """A lane from the bottom row up to ``top_y``, points every ``step`` rows (bottom first)."""
    ys = np.arange(H - 1, top_y - 1e-9, -step)
    return np.stack([bottom_x + (top_x - bottom_x) * (H - 1 - ys) / (H - 1 - top_y), ys], 1)


# four lanes converging on (820, 300): IDs 1..4 from left to right
LEFT2, LEFT1, RIGHT1, RIGHT2 = straight(-300, 760), straight(450, 800), straight(1200, 840), straight(1900, 880)


def ids_of(lanes: list[np.ndarray]) -> dict[int, float]:
    """ID -> bottom x of each named lane."""
    return {i: float(p[0, 0]) for i, p in assign_ids(lanes, W, H).items()}


def test_ids_follow_position_not_file_order():
    expected = {1: -300.0, 2: 450.0, 3: 1200.0, 4: 1900.0}
    for order in ([0, 1, 2, 3], [3, 1, 0, 2], [2, 3, 1, 0]):
        lanes = [[LEFT2, LEFT1, RIGHT1, RIGHT2][i] for i in order]
        assert ids_of(lanes) == expected
    # points listed top first name the same lanes
    assert ids_of([LEFT1[::-1], RIGHT1[::-1]]) == {2: 450.0, 3: 1200.0}


def test_one_and_two_lanes_and_lanes_beyond_four():
    assert ids_of([LEFT1]) == {2: 450.0}  # leans right going up: left of the ego vehicle
    assert ids_of([RIGHT1]) == {3: 1200.0}
    assert ids_of([LEFT2, LEFT1]) == {2: -300.0, 3: 450.0}  # two lanes are always 2 and 3 (CULane's rule)
    far_right = straight(2600, 920)
    assert ids_of([far_right, LEFT2, LEFT1, RIGHT1, RIGHT2]) == {1: -300.0, 2: 450.0, 3: 1200.0, 4: 1900.0}
    # no slope change (all lean right going up): the split falls at the image centre
    assert ids_of([straight(100, 700), straight(500, 760), straight(1000, 1100)]) == {1: 100.0, 2: 500.0, 3: 1000.0}


def test_a_double_line_keeps_its_inner_line():
    inner_left, outer_left = straight(450, 800), straight(400, 795)
    assert ids_of([outer_left, inner_left, RIGHT1]) == {2: 450.0, 3: 1200.0}
    inner_right, outer_right = straight(1200, 840), straight(1260, 846)
    assert ids_of([LEFT1, inner_right, outer_right]) == {2: 450.0, 3: 1200.0}


def test_repeated_points_and_lanes_outside_the_image():
    doubled = np.repeat(LEFT1, 2, axis=0)  # every point twice: one lane, as CULane's tool keeps it
    assert ids_of([doubled, RIGHT1]) == {2: 450.0, 3: 1200.0}
    outside = straight(-900, -500)  # wholly left of the image: cannot be drawn, named nothing
    assert ids_of([outside, LEFT1, RIGHT1]) == {2: 450.0, 3: 1200.0}
    assert ids_of([np.array([[800.0, 400.0]])]) == {}  # one point is no lane


def strip_to_lines(source: Path, dest: Path) -> Path:
    """A copy of a CULane root with images and ``.lines.txt`` only (no labels, no ``*_gt`` lists)."""
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("laneseg_label_w16*", "*_gt.txt", "test_split"))
    return dest


def test_labels_and_flags_equal_the_synthetic_generators(tiny_dataset, tmp_path):
    root = strip_to_lines(tiny_dataset, tmp_path / "root")
    counts = make_labels(root, "train.txt", workers=2)
    made = read_list(root / "list" / "train_gt.txt").samples
    reference = read_list(tiny_dataset / "list" / "train_gt.txt").samples
    assert counts["frames"] == counts["drawn"] == len(reference) > 0
    assert [(s.image, s.label) for s in made] == [(s.image, s.label) for s in reference]
    full = 0
    for sample, truth in zip(made, reference):
        ours = cv2.imread(str(root / sample.label), cv2.IMREAD_UNCHANGED)
        theirs = cv2.imread(str(tiny_dataset / sample.label), cv2.IMREAD_UNCHANGED)
        assert ours.dtype == np.uint8 and ours.shape == theirs.shape == (H, W)
        image = cv2.imread(str(tiny_dataset / sample.image))
        if image[:, :8].max() > 40 and image[:8].max() > 40:  # the whole 1640x590 frame is the camera's: CULane's own case
            assert sample.exist == truth.exist, sample.image
            np.testing.assert_array_equal(ours, theirs)
            full += 1
        else:  # a letterboxed camera (generator v3): an outer lane entering the frame high up may fall under the official
            # double-line rule (two lanes under 120 px apart over the rows they share): the tool may drop a lane, never invent one
            assert all(m <= t for m, t in zip(sample.exist, truth.exist)), sample.image
            assert np.isin(ours[ours > 0], theirs[theirs > 0]).all()
    assert full >= 2  # the tiny set's full-frame cameras (30 % are bands of a 16:9 sensor)


def test_a_rerun_keeps_labels_and_redraws_what_changed(tiny_dataset, tmp_path):
    root = strip_to_lines(tiny_dataset, tmp_path / "root")
    make_labels(root, "val.txt", workers=2)
    samples = read_list(root / "list" / "val_gt.txt").samples
    assert make_labels(root, "val.txt")["kept"] == len(samples)
    # one frame's lanes edited (its first lane removed): only its label is redrawn, its flags follow
    target = samples[0]
    lines = root / target.lines_name
    lanes = [np.array(line.split(), float).reshape(-1, 2) for line in lines.read_text().splitlines()]
    lines.write_text(format_lines(lanes[1:]))
    later = (root / target.label).stat().st_mtime + 5
    os.utime(lines, (later, later))
    counts = make_labels(root, "val.txt")
    assert (counts["drawn"], counts["kept"]) == (1, len(samples) - 1)
    label = cv2.imread(str(root / target.label), cv2.IMREAD_UNCHANGED)
    expected = assign_ids(lanes[1:], W, H)
    assert set(np.unique(label)) - {0} == set(expected)
    assert read_list(root / "list" / "val_gt.txt").samples[0].exist == tuple(int(i in expected) for i in (1, 2, 3, 4))
    assert make_labels(root, "val.txt", force=True)["drawn"] == len(samples)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lanedata.labels.make_labels", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("case", ["bad lines", "missing lines", "missing image", "empty list", "gt list as input", "labels outside"])
def test_bad_input_is_one_line_and_nothing_is_written(tiny_dataset, tmp_path, case):
    root = strip_to_lines(tiny_dataset, tmp_path / "root")
    samples = read_list(root / "list" / "val.txt").samples
    args = ["--data-root", str(root), "--list", "val.txt"]
    named = {"bad lines": root / samples[-1].lines_name, "missing lines": root / samples[-1].lines_name,
             "missing image": root / samples[-1].image, "empty list": root / "list" / "val.txt"}.get(case)
    if case == "bad lines":
        named.write_text("100 590 120 580 140\n")  # an odd number of coordinates
    elif case in ("missing lines", "missing image"):
        named.unlink()
    elif case == "empty list":
        named.write_text("")
    elif case == "gt list as input":
        (root / "list" / "val_gt.txt").write_text("/" + samples[0].image + " /x.png 1 1 1 1\n")
        args = ["--data-root", str(root), "--list", "val_gt.txt"]
        named = root / "list" / "val_gt.txt"
    else:
        args += ["--labels-dir", str(tmp_path / "elsewhere")]
        named = tmp_path / "elsewhere"
    before = (root / "list" / "val_gt.txt").read_text() if case == "gt list as input" else None
    r = cli(*args)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"error: {named}"), r.stderr
    assert not (root / "laneseg_label_w16").exists()
    gt = root / "list" / "val_gt.txt"
    assert (gt.read_text() == before) if before is not None else not gt.exists()
