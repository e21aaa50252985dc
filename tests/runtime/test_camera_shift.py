"""The camera-shift report (issue "Any camera", part 5): frames and their lanes re-projected together,
then scored like any root."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from runtime.camera_shift import SHIFTS, Shift, shift_frame
from tests.runtime.test_any_frame_size import constant_model, write_root

ROOT = Path(__file__).resolve().parents[2]
LANES = [np.array([[500.0, 589.0], [700.0, 420.0], [790.0, 320.0]]), np.array([[1200.0, 589.0], [980.0, 420.0], [860.0, 320.0]])]


def dense(lane: np.ndarray, step: float = 0.05) -> np.ndarray:
    """Points along a polyline's segments (20 per segment)."""
    t = np.arange(0.0, 1.0, step)[:, None]
    return np.concatenate([a + t * (b - a) for a, b in zip(lane[:-1], lane[1:])] + [lane[-1:]])


def drawn_frame() -> np.ndarray:
    """Grey road, the two lanes painted white 16 px wide (the label drawing)."""
    label = np.zeros((590, 1640), np.uint8)
    for lane in LANES:  # straight segments, as the points below are spread
        cv2.polylines(label, [np.round(lane).astype(np.int32)], False, 1, thickness=16)
    frame = np.full((590, 1640, 3), 90, np.uint8)
    frame[label > 0] = 250
    return frame


@pytest.mark.parametrize("shift", SHIFTS, ids=lambda s: s.slug)
def test_the_lanes_move_with_the_image(shift):
    image, lanes = shift_frame(drawn_frame(), [dense(lane) for lane in LANES], shift)
    assert image.shape == (590 - int(round(shift.cut_bottom * 590)), 1640, 3) and len(lanes) == 2
    for lane in lanes:
        xs, ys = np.round(lane).astype(int).T
        inner = ys < image.shape[0] - 3  # the frame's last rows blend paint with the black beyond
        assert inner.sum() > 20 and (image[ys[inner], xs[inner], 0] > 200).mean() > 0.95  # the moved points lie on the moved paint
        assert lane[:, 0].min() >= 0 and lane[:, 1].max() <= image.shape[0] - 1


def test_pitch_moves_the_horizon_and_a_cut_keeps_the_top():
    image = drawn_frame()
    _, up = shift_frame(image, LANES, Shift("up", pitch=4.0))
    _, down = shift_frame(image, LANES, Shift("down", pitch=-4.0))
    top = lambda lanes: min(lane[:, 1].min() for lane in lanes)  # noqa: E731
    assert top(up) > 320 + 60 and top(down) < 320 - 60  # f tan(4 deg) = 70 px on a 1640-wide frame
    cut, kept = shift_frame(image, LANES, Shift("cut", cut_bottom=0.2))
    assert cut.shape[0] == 472 and np.array_equal(cut, image[:472])
    assert all(lane[:, 1].max() <= 471 for lane in kept)


def test_the_command_reports_every_shift(tmp_path):
    model = constant_model(tmp_path / "constant.onnx")
    root = write_root(tmp_path / "root", [drawn_frame(), drawn_frame()], [LANES, LANES[:1]])
    report = tmp_path / "shift.json"
    proc = subprocess.run([sys.executable, "-m", "runtime.evaluate_shifts", "--model", str(model), "--label", "constant",
                           "--data-root", str(root), "--list", "test.txt", "--report", str(report)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(report.read_text())
    entries = record["models"]["constant"]
    assert list(entries) == ["unshifted", *(s.name for s in SHIFTS)] and record["images"] == 2
    assert all(e["images"] == 2 for e in entries.values())
    assert "| camera | constant F1 % (x unshifted) |" in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "runtime.evaluate_shifts", "--model", str(model), "--data-root", str(tmp_path / "nowhere")],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
