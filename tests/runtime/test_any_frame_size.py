"""Scoring frames of any size (issue "Any camera", part 3): a root whose frames are not the model's
1640x590 goes through the frame policy, its lanes come back into the frame, and the metric runs at
the frame's own size with the lane width scaled to it. Drawn case: the same frames resized by hand
to half size score exactly as the full-size ones, image by image.

The model is hand-made (a real ONNX file through real ONNX Runtime) whose outputs ignore the image:
two lanes at fixed network positions, so both roots get the same lanes in source pixels and the
test isolates the mapping back and the metric. One annotation sits 6 px (full size) off a
predicted lane (IoU ~0.8: a true positive at either size), the other 22 px off (IoU 0.40 at full
size, 0.44 at half size with the scaled 15 px width: a miss at both; with the unscaled 30 px it
would be 0.64, a hit, so a metric that forgot to scale the width fails here)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from runtime.artifacts import Sidecar
from runtime.culane_metric import frame_metric
from runtime.decode import DecodeParams, LaneDecoder
from runtime.frame_policy import FramePolicy
from runtime.lines import read_lines_file, write_lines_file
from runtime.preprocess import Preprocess

ROOT = Path(__file__).resolve().parents[2]
PRE = Preprocess(net_width=244, net_height=52)  # CULane geometry (1640x590, crop 240), a small network
NEAR, FAR = 6.0, 22.0  # annotation offsets (full-size px) from the two predicted lanes


def constant_lanes() -> tuple[np.ndarray, np.ndarray]:
    """(5, h, w) probabilities with lanes 2 and 3 as 3-px-wide diagonals, and (4,) existence."""
    seg = np.zeros((5, PRE.net_height, PRE.net_width), np.float32)
    seg[0] = 1.0
    rows = np.arange(PRE.net_height)
    for lane_id, (c0, c1) in {2: (110, 40), 3: (130, 200)}.items():
        cols = np.rint(c0 + (c1 - c0) * rows / (PRE.net_height - 1)).astype(int)
        for d in (-1, 0, 1):
            seg[lane_id, rows, cols + d], seg[0, rows, cols + d] = 1.0, 0.0
    return seg, np.array([0.0, 0.9, 0.9, 0.0], np.float32)


def constant_model(path: Path) -> Path:
    """The hand-made lane model: outputs = constants + 0 x the image's mean, with its sidecar."""
    seg, exist = constant_lanes()
    shape = [1, 3, PRE.net_height, PRE.net_width]
    nodes = [helper.make_node("ReduceMean", ["image"], ["mean"], keepdims=0), helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
             helper.make_node("Add", ["seg", "nothing"], ["seg_prob"]), helper.make_node("Add", ["exist", "nothing"], ["exist_prob"])]
    graph = helper.make_graph(nodes, "lanes", [helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("seg_prob", TensorProto.FLOAT, [1, *seg.shape]),
                               helper.make_tensor_value_info("exist_prob", TensorProto.FLOAT, [1, 4])],
                              [numpy_helper.from_array(seg[None], "seg"), numpy_helper.from_array(exist[None], "exist"),
                               numpy_helper.from_array(np.zeros((), np.float32), "zero")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    Sidecar(format="onnx", precision="fp32", model={"name": "constant", "arch": "none"},
            input={"name": "image", "shape": shape, "dtype": "float32", "dynamic_batch": False},
            outputs=[{"name": "seg_prob", "shape": [1, *seg.shape], "dtype": "float32", "kind": "seg_prob"},
                     {"name": "exist_prob", "shape": [1, 4], "dtype": "float32", "kind": "exist_prob"}],
            preprocess=PRE.to_dict(), decode=DecodeParams().to_dict(), source={}).write(path)
    return path


def to_half(points: np.ndarray) -> np.ndarray:
    """Full-size pixels -> pixels of the frame resized to half (pixel-centre convention)."""
    return (np.asarray(points, np.float64) + 0.5) / 2.0 - 0.5


def write_root(root: Path, frames: list[np.ndarray], lanes: list[list[np.ndarray]]) -> Path:
    names = []
    for i, (frame, annotation) in enumerate(zip(frames, lanes)):
        name = f"drive_x/clip/{i:05d}.jpg"
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / name), frame)
        write_lines_file(root / name.replace(".jpg", ".lines.txt"), annotation)
        names.append(f"/{name}\n")
    (root / "list").mkdir(parents=True, exist_ok=True)
    (root / "list" / "test.txt").write_text("".join(names))
    return root


def evaluate(model: Path, root: Path, out: Path) -> dict:
    report, pred = out / "report.json", out / "pred"
    proc = subprocess.run([sys.executable, "-m", "runtime.evaluate", "--model", str(model), "--data-root", str(root),
                           "--list", "test.txt", "--report", str(report), "--pred-dir", str(pred)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(report.read_text())


@pytest.fixture(scope="module")
def predicted() -> list[np.ndarray]:
    """The model's two lanes in 1640x590 source pixels (what the decoder makes of the constants)."""
    lanes = LaneDecoder(PRE, DecodeParams())(*constant_lanes())
    assert [lane.lane_id for lane in lanes] == [2, 3] and all(len(lane.points) == 18 for lane in lanes)
    return [lane.points for lane in lanes]


def test_a_root_of_half_size_frames_scores_as_the_full_size_frames(predicted, tmp_path):
    model = constant_model(tmp_path / "constant.onnx")
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (590, 1640, 3), dtype=np.uint8) for _ in range(3)]
    # image 0: one near, one far annotation; image 1: only the near one; image 2: no lanes at all
    annotations = [[predicted[0] + [NEAR, 0], predicted[1] + [FAR, 0]], [predicted[1] - [NEAR, 0]], []]
    full = write_root(tmp_path / "full", frames, annotations)
    half = write_root(tmp_path / "half", [cv2.resize(f, (820, 295), interpolation=cv2.INTER_AREA) for f in frames],
                      [[to_half(lane) for lane in lanes] for lanes in annotations])

    a, b = evaluate(model, full, tmp_path / "a"), evaluate(model, half, tmp_path / "b")
    assert a["per_image"] == b["per_image"]
    assert list(a["per_image"].values()) == [[1, 1, 1], [1, 1, 0], [0, 2, 0]]  # tp, fp, fn
    assert frame_metric(820, 295).width == 15 and frame_metric(1640, 590).width == 30

    # the predictions written for the half-size root are the full-size ones, in the half frame's pixels
    name = "drive_x/clip/00000.lines.txt"
    for in_full, in_half in zip(read_lines_file(tmp_path / "a" / "pred" / name), read_lines_file(tmp_path / "b" / "pred" / name)):
        np.testing.assert_allclose(in_half, to_half(in_full), atol=2e-3)  # the files keep 3 decimals


def test_a_16_9_frame_maps_lanes_back_through_the_letterbox(predicted, tmp_path):
    """A 16:9 frame (1280x720) is letterboxed (scaled to 1049x590, 295 black columns each side);
    an annotation written in the frame's own pixels is found where the model put its lanes, and one
    off by 22 source px (17 frame px, scored with the frame's 23 px lane) is missed."""
    model = constant_model(tmp_path / "constant.onnx")
    policy = FramePolicy(PRE, 1280, 720)
    assert (policy.scaled_w, policy.left, policy.upper) == (1049, 295, 0) and frame_metric(1280, 720).width == 23
    in_frame = [policy.points_to_frame(lane) for lane in predicted]
    frame = np.full((720, 1280, 3), 90, np.uint8)
    root = write_root(tmp_path / "tall", [frame], [[in_frame[0], in_frame[1] + [FAR * 1280 / 1640, 0]]])
    record = evaluate(model, root, tmp_path / "out")
    assert list(record["per_image"].values()) == [[1, 1, 1]]
    assert record["lists"]["test"]["images"] == 1
