"""The video loop end to end: real OpenCV videos, the real tiny ERFNet on ONNX Runtime."""
from __future__ import annotations

import csv
import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from runtime import infer_video
from runtime.decode import DecodedLane
from runtime.draw import LANE_COLORS, draw_hud, draw_lanes, lane_thickness
from runtime.frame_policy import DEFAULT_MODE, MODES, FramePolicy
from runtime.lines import read_lines_file
from runtime.preprocess import Preprocess
from runtime.video_io import FrameReader, FrameWriter

ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def make_video(path: Path, frames: int, size: tuple[int, int], fps: float = 30.0) -> Path:
    """An mp4v video of a road-like pattern whose line moves each frame; ``size`` is (w, h)."""
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened()
    for i in range(frames):
        image = np.full((h, w, 3), 70, np.uint8)
        cv2.line(image, (w // 3 + i % 20, h - 1), (w // 2, h // 2), (255, 255, 255), max(1, w // 100))
        cv2.putText(image, str(i), (5, h // 4), cv2.FONT_HERSHEY_SIMPLEX, h / 200, (0, 0, 255), 1)
        writer.write(image)
    writer.release()
    return path


def faststart(data: bytes) -> bytes:
    """Move an MP4's index (moov) before its media (mdat), patching chunk offsets, as players'
    "fast start" files have it: a file cut short then still opens and decodes up to the cut."""

    def boxes(buf: bytes | bytearray, start: int, end: int):
        i = start
        while i < end:
            (size,) = struct.unpack(">I", buf[i : i + 4])
            yield bytes(buf[i + 4 : i + 8]), i, size
            i += size

    top = {kind: (i, size) for kind, i, size in boxes(data, 0, len(data))}
    mi, msize = top[b"moov"]
    moov = bytearray(data[mi : mi + msize])

    def patch(start: int, end: int) -> None:
        for kind, i, size in boxes(moov, start, end):
            if kind in (b"trak", b"mdia", b"minf", b"stbl"):
                patch(i + 8, i + size)
            elif kind == b"stco":
                (count,) = struct.unpack(">I", moov[i + 12 : i + 16])
                for j in range(count):
                    (offset,) = struct.unpack_from(">I", moov, i + 16 + 4 * j)
                    struct.pack_into(">I", moov, i + 16 + 4 * j, offset + msize)

    patch(8, msize)
    rest = data[:mi] + data[mi + msize :]
    fi, fsize = top[b"ftyp"]
    return rest[: fi + fsize] + bytes(moov) + rest[fi + fsize :]


def video_frames(path: Path) -> tuple[int, tuple[int, int]]:
    """(frames decoded, (w, h)) of a video, read back with OpenCV."""
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), f"{path} does not open"
    count, size = 0, (0, 0)
    while True:
        ok, image = cap.read()
        if not ok:
            break
        count, size = count + 1, (image.shape[1], image.shape[0])
    cap.release()
    return count, size


def cli(*args: str, module: bool = False) -> list[str]:
    entry = ["-m", "runtime.infer_video"] if module else [str(ROOT / "runtime" / "infer_video.py")]
    return [sys.executable, *entry, *args]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def outputs(tmp_path: Path, name: str) -> tuple[Path, Path]:
    return tmp_path / f"{name}.mp4", tmp_path / f"{name}.json"


# --------------------------------------------------------------------------------------------
# frame policy
# --------------------------------------------------------------------------------------------
SIZES = [(320, 180), (960, 540), (1640, 590), (720, 1280), (1640, 1000), (3280, 590)]
CASES = [(size, mode) for mode in MODES for size in SIZES]


@pytest.mark.parametrize("size, mode", CASES)
def test_frame_policy_points_round_trip_exactly(size, mode):
    pre = Preprocess(net_width=128, net_height=32)
    policy = FramePolicy(pre, *size, mode=mode)
    rng = np.random.default_rng(0)
    frame_pts = rng.uniform([-5, -5], [size[0] + 5, size[1] + 5], size=(50, 2))
    np.testing.assert_allclose(policy.points_to_frame(policy.points_to_source(frame_pts)), frame_pts, rtol=0, atol=1e-9)
    src_pts = rng.uniform([0, 0], [pre.src_width, pre.src_height], size=(50, 2))
    np.testing.assert_allclose(policy.points_to_source(policy.points_to_frame(src_pts)), src_pts, rtol=0, atol=1e-9)
    corners = policy.points_to_source(np.array([[-0.5, -0.5], [size[0] - 0.5, size[1] - 0.5]]))
    if mode == "bottom":  # the frame's bottom edge lands on the source's bottom edge, its full width on the source's width
        np.testing.assert_allclose(corners[1], [pre.src_width - 0.5, pre.src_height - 0.5], atol=1e-9)
        np.testing.assert_allclose(corners[0, 0], -0.5, atol=1e-9)
        assert policy.sy == pytest.approx(policy.sx, rel=0.5 / policy.kept_h + 1e-12)  # aspect kept up to rounding
    else:  # the whole frame inside the source, touching two opposite edges, centred within a pixel
        lo, hi = corners + 0.5
        assert lo.min() >= -1e-9 and hi[0] <= pre.src_width + 1e-9 and hi[1] <= pre.src_height + 1e-9
        assert (lo[0] == 0 and hi[0] == pytest.approx(pre.src_width)) or (lo[1] == 0 and hi[1] == pytest.approx(pre.src_height))
        assert abs(lo[0] - (pre.src_width - hi[0])) <= 1 and abs(lo[1] - (pre.src_height - hi[1])) <= 1
        assert policy.sy == pytest.approx(policy.sx, rel=1.0 / min(policy.scaled_w, policy.scaled_h) + 1e-12)


@pytest.mark.parametrize("size, mode", CASES)
def test_frame_policy_image_follows_the_point_mapping(size, mode):
    pre = Preprocess()
    policy = FramePolicy(pre, *size, mode=mode)
    w, h = size
    frame = np.zeros((h, w, 3), np.uint8)
    kept = policy.kept_h if mode == "bottom" else h
    point = np.array([[0.37 * w, h - 0.2 * kept]])  # inside the part of the frame that is kept
    x, y = np.round(point[0]).astype(int)
    r = max(2, int(round(4 / min(policy.sx, policy.sy))))
    frame[y - r : y + r + 1, x - r : x + r + 1] = 255
    src = policy.to_source(frame)
    assert src.shape == (pre.src_height, pre.src_width, 3) and src.dtype == np.uint8
    ys, xs = np.nonzero(src[:, :, 0] > 127)
    expected = policy.points_to_source(np.array([[x, y]], dtype=np.float64))[0]
    assert abs(xs.mean() - expected[0]) < 1.0 and abs(ys.mean() - expected[1]) < 1.0
    if policy.identity:
        assert src is frame
    if mode == "bottom" and policy.pad_rows:
        assert not src[: int(policy.pad_rows * policy.sy) - 1].any()  # black padding on top
    if mode == "letterbox":  # black bars outside the scaled frame
        assert not src[: policy.upper].any() and not src[:, : policy.left].any()
        assert not src[policy.upper + policy.scaled_h :].any() and not src[:, policy.left + policy.scaled_w :].any()


@pytest.mark.parametrize("size, mode", CASES)
def test_one_warp_to_the_network_input_is_the_composed_mapping(size, mode):
    """On a linear ramp (which bilinear sampling reproduces exactly) every network pixel of the one
    warp holds the ramp at the frame point that the policy and the preprocessing compose to, and
    equals the two-resize path up to its second resampling."""
    pre = Preprocess(net_width=160, net_height=48)
    policy = FramePolicy(pre, *size, mode=mode)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    ramp = lambda x, y: np.stack([20 + 200 * x / w, 20 + 200 * y / h, 20 + 100 * (x / w + y / h)], -1)  # noqa: E731
    frame = np.rint(ramp(xx, yy)).astype(np.uint8)
    net = policy.to_net(frame)
    assert net.shape == (pre.net_height, pre.net_width, 3) and net.dtype == np.uint8
    ny, nx = np.mgrid[0 : pre.net_height, 0 : pre.net_width].astype(np.float64)
    # network pixel -> source pixel (preprocessing's inverse) -> frame pixel (the policy's inverse)
    sx, sy = pre.net_to_image(nx.ravel(), ny.ravel())
    fx, fy = policy.points_to_frame(np.stack([sx, sy], 1)).T
    inside = (fx >= 0) & (fx <= w - 1) & (fy >= 0) & (fy <= h - 1)
    expected = ramp(fx, fy).reshape(-1, 3)
    got = net.reshape(-1, 3).astype(np.float64)
    assert inside.any()
    assert np.abs(got[inside] - expected[inside]).max() <= 1.5  # uint8 rounding + OpenCV's 1/32 px sub-pixel grid
    assert not got[(fy < -1) | (fy > h) | (fx < -1) | (fx > w)].any()  # outside the frame: black
    two_step = pre.resize_image(policy.to_source(frame)).astype(int).reshape(-1, 3)
    away = (fy >= 2) & (fy <= h - 3) & (fx >= 2) & (fx <= w - 3)  # away from a padding edge, which two resamplings blur differently
    assert np.abs(got[away] - two_step[away]).max() <= (0 if policy.identity else 2)


def test_frame_policy_geometry_of_common_frames():
    pre = Preprocess()
    wide = FramePolicy(pre, 960, 540, mode="bottom")
    assert (wide.kept_h, wide.top) == (345, 195)
    assert "bottom 345 rows" in wide.describe()
    tall = FramePolicy(pre, 720, 1280, mode="bottom")
    assert tall.kept_h == 259 and tall.drop_rows == 1021
    assert FramePolicy(pre, 3280, 590, mode="bottom").pad_rows == 590
    with pytest.raises(ValueError):
        wide.to_source(np.zeros((10, 10, 3), np.uint8))
    box = FramePolicy(pre, 960, 540)  # the default: letterbox
    assert box.mode == DEFAULT_MODE == "letterbox" and (box.scaled_w, box.scaled_h, box.left, box.upper) == (1049, 590, 295, 0)
    assert "295/296 black columns" in box.describe()
    flat = FramePolicy(pre, 3280, 590)
    assert (flat.scaled_w, flat.scaled_h, flat.upper) == (1640, 295, 147) and flat.pad_rows == 147
    with pytest.raises(ValueError, match="letterbox, bottom"):
        FramePolicy(pre, 960, 540, mode="stretch")


# --------------------------------------------------------------------------------------------
# drawing and video I/O
# --------------------------------------------------------------------------------------------
def test_lanes_are_drawn_in_their_colour_and_hud_darkens_the_corner():
    frame = np.full((180, 320, 3), 100, np.uint8)
    lane = DecodedLane(2, np.array([[100.0, 179.0], [160.0, 90.0]]))
    draw_lanes(frame, [lane], thickness=5)
    assert (frame[135, 130] == LANE_COLORS[2]).all()
    assert lane_thickness(320) == 2 and lane_thickness(1640) == 7
    draw_hud(frame, ["infer 1.0 ms", "99 FPS"])
    assert frame[1, 1].max() < 100


def test_writer_releases_a_playable_video_when_the_producer_fails(tmp_path):
    out = tmp_path / "partial.mp4"
    with pytest.raises(RuntimeError, match="boom"):
        with FrameWriter(out, 30, (64, 48)) as writer:
            for _ in range(3):
                writer.write(np.zeros((48, 64, 3), np.uint8))
            raise RuntimeError("boom")
    assert video_frames(out) == (3, (64, 48))
    assert [p.name for p in tmp_path.iterdir()] == ["partial.mp4"]  # no temporary left behind


def test_reader_times_every_frame_and_stops_at_max_frames(tmp_path):
    video = make_video(tmp_path / "v.mp4", 12, (96, 54))
    with FrameReader(video, max_frames=5) as reader:
        frames = list(reader)
    assert [f.index for f in frames] == list(range(5)) and all(f.decode_ms > 0 for f in frames)
    assert reader.stopped_reason == "max-frames" and reader.frames_read == 5
    with FrameReader(video) as reader:
        assert len(list(reader)) == 12 and reader.stopped_reason is None


def test_the_decoder_runs_on_the_threads_asked_for(tmp_path):
    video = make_video(tmp_path / "v.mp4", 4, (96, 54))
    with FrameReader(video) as reader:  # default: one decoder thread, beside the model
        assert reader.cap.get(cv2.CAP_PROP_N_THREADS) == 1 and len(list(reader)) == 4
    with FrameReader(video, decode_threads=0) as reader:  # OpenCV's default (one per core)
        assert reader.cap.get(cv2.CAP_PROP_N_THREADS) >= 1 and len(list(reader)) == 4


# --------------------------------------------------------------------------------------------
# the loop
# --------------------------------------------------------------------------------------------
def test_round_trip_keeps_frames_and_size_and_reports_every_timed_frame(tiny_onnx, tmp_path, capsys):
    video = make_video(tmp_path / "in.mp4", 30, (320, 180))
    out, report_path = outputs(tmp_path, "out")
    rc = infer_video.main(["--model", str(tiny_onnx), "--video", str(video), "--out", str(out), "--report", str(report_path),
                           "--warmup", "5", "--threads", "1"])
    assert rc == 0
    assert video_frames(out) == (30, (320, 180))
    report = json.loads(report_path.read_text())
    meta = report["meta"]
    assert report["kind"] == "video" and report["latency_key"] == "infer_host"
    assert meta["complete"] is True and meta["stopped_reason"] is None
    assert (meta["frames_read"], meta["frames_processed"], meta["warmup"]) == (30, 30, 5)
    assert meta["frame_size"] == [320, 180] and meta["input_shape"] == [1, 3, 32, 128]
    assert meta["backend"] == "onnxruntime" and meta["device"] == "cpu" and meta["threads"] == 1
    assert meta["format"] == "onnx" and meta["precision"] == "fp32" and meta["model_bytes"] == tiny_onnx.stat().st_size
    assert "letterboxed" in meta["policy"] and meta["versions"]["onnxruntime"] and meta["decode_threads"] == 1
    records = report["records"]
    assert [r["frame"] for r in records] == list(range(5, 30))
    columns = ["decode", "preprocess", "infer_host", "postprocess", "total", "wall"]
    assert all(list(r) == ["frame", *columns] for r in records)  # no infer_device on a CPU
    for r in records:
        assert r["total"] == pytest.approx(r["preprocess"] + r["infer_host"] + r["postprocess"])
    summary = report["summary"]
    assert set(summary) == {*columns, "loop_fps"}
    for key in columns:
        values = np.array([r[key] for r in records])
        assert summary[key]["count"] == 25
        for q in (50, 90, 95, 99):
            assert summary[key][f"p{q}"] == pytest.approx(np.percentile(values, q), rel=1e-12)
        assert summary[key]["mean"] == pytest.approx(values.mean())
    assert summary["loop_fps"] == pytest.approx(25 / (sum(r["wall"] for r in records) / 1000))
    with open(report_path.with_suffix(".csv"), newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 25 and float(rows[3]["infer_host"]) == records[3]["infer_host"]
    assert "FPS" in capsys.readouterr().out


def test_source_geometry_video_as_a_script_with_max_frames(tiny_onnx, tmp_path):
    video = make_video(tmp_path / "src.mp4", 12, (1640, 590))
    out, report_path = outputs(tmp_path, "src_out")
    proc = subprocess.run(cli("--model", str(tiny_onnx), "--video", str(video), "--out", str(out), "--report", str(report_path),
                              "--max-frames", "6", "--warmup", "2", "--threads", "1"),
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    meta = json.loads(report_path.read_text())["meta"]
    assert (meta["frames_processed"], meta["complete"], meta["stopped_reason"]) == (6, False, "max-frames")
    assert "used as is" in meta["policy"]
    assert video_frames(out) == (6, (1640, 590))
    assert "infer p50" in proc.stdout and "Traceback" not in proc.stderr


def test_truncated_video_gives_a_partial_report_and_a_playable_video(tiny_onnx, tmp_path, capsys):
    whole = make_video(tmp_path / "whole.mp4", 40, (320, 180))
    data = faststart(whole.read_bytes())
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    out, report_path = outputs(tmp_path, "cut_out")
    rc = infer_video.main(["--model", str(tiny_onnx), "--video", str(cut), "--out", str(out), "--report", str(report_path),
                           "--warmup", "2", "--threads", "1"])
    assert rc == 0
    err = capsys.readouterr().err
    assert "warning: corrupt or truncated video at frame" in err
    meta = json.loads(report_path.read_text())["meta"]
    assert meta["complete"] is False and meta["stopped_reason"].startswith("corrupt or truncated video at frame ")
    good = int(meta["stopped_reason"].split("at frame ")[1].split()[0])
    assert 0 < good < 40 and meta["frames_processed"] == meta["frames_read"] == good
    assert video_frames(out) == (good, (320, 180))


def test_sigint_stops_cleanly_with_a_partial_report(tiny_onnx, tmp_path):
    video = make_video(tmp_path / "long.mp4", 2000, (160, 90))
    out, report_path = outputs(tmp_path, "long_out")
    proc = subprocess.Popen(cli("--model", str(tiny_onnx), "--video", str(video), "--out", str(out), "--report", str(report_path),
                                "--warmup", "2", "--threads", "1", module=True),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env())
    try:
        started = proc.stderr.readline()  # printed once the model is loaded and the loop starts
        assert "long.mp4" in started, started
        time.sleep(1.0)
        assert proc.poll() is None, "the run finished before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "interrupted after" in stderr and "Traceback" not in stderr
    report = json.loads(report_path.read_text())
    meta = report["meta"]
    assert meta["complete"] is False and meta["stopped_reason"] == "interrupted"
    assert 2 < meta["frames_processed"] < 2000
    assert len(report["records"]) == meta["frames_processed"] - 2
    assert video_frames(out) == (meta["frames_processed"], (160, 90))


@pytest.mark.parametrize("case", ["missing", "text", "no_frames", "no_sidecar"])
def test_bad_inputs_give_one_error_line(case, tiny_onnx, tmp_path):
    model, video = tiny_onnx, tmp_path / "in.mp4"
    if case == "text":
        video.write_text("not a video\n")
    elif case == "no_frames":
        video = tmp_path / "empty.avi"
        cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 48)).release()
    elif case == "no_sidecar":
        make_video(video, 3, (64, 48))
        model = tmp_path / "bare.onnx"
        model.write_bytes(tiny_onnx.read_bytes())
    out, report_path = outputs(tmp_path, "out")
    proc = subprocess.run(cli("--model", str(model), "--video", str(video), "--out", str(out), "--report", str(report_path)),
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    assert ("sidecar" in lines[0]) == (case == "no_sidecar")
    assert not report_path.exists() and not out.exists()


# --------------------------------------------------------------------------------------------
# accuracy against the synthetic drive's ground truth
# --------------------------------------------------------------------------------------------
def test_gt_scores_the_synthetic_drive(tiny_onnx, tmp_path, capsys):
    from lanedata.synthetic.video import generate_video  # test-side only: runtime never imports training

    video = tmp_path / "drive" / "drive.mp4"
    generate_video(video, 8, seed=5, progress=False)
    gt_dir = video.with_name("drive_gt")
    out, report_path = outputs(tmp_path, "drive_out")
    rc = infer_video.main(["--model", str(tiny_onnx), "--video", str(video), "--out", str(out), "--report", str(report_path),
                           "--gt", str(gt_dir), "--warmup", "2", "--threads", "1"])
    assert rc == 0
    report = json.loads(report_path.read_text())
    acc = report["accuracy"]
    assert set(acc) == {"f1", "precision", "recall", "tp", "fp", "fn", "frames"}
    assert acc["frames"] == report["meta"]["frames_processed"] == 8
    gt_lanes = sum(len(read_lines_file(gt_dir / f"{n:05d}.lines.txt")) for n in range(8))
    assert gt_lanes > 0 and acc["tp"] + acc["fn"] == gt_lanes
    assert acc["f1"] == pytest.approx(2 * acc["tp"] / (2 * acc["tp"] + acc["fp"] + acc["fn"]))
    assert "F1 " in capsys.readouterr().out


@pytest.mark.parametrize("size", [(1640, 590), (960, 540)])
def test_scoring_maps_frame_ground_truth_into_the_source_geometry(size):
    pre = Preprocess(net_width=128, net_height=32)
    policy = FramePolicy(pre, *size)
    w, h = size
    gt = [[np.array([[0.3 * w, h - 1.0], [0.45 * w, 0.6 * h]]), np.array([[0.7 * w, h - 1.0], [0.55 * w, 0.6 * h]])]]
    perfect = [[DecodedLane(i + 1, policy.points_to_source(lane)) for i, lane in enumerate(gt[0])]]
    acc = infer_video.score(gt, perfect, [0], policy)
    assert (acc["tp"], acc["fp"], acc["fn"], acc["f1"], acc["frames"]) == (2, 0, 0, 1.0, 1)
    shifted = [[DecodedLane(lane.lane_id, lane.points + [200.0, 0.0]) for lane in perfect[0]]]
    assert infer_video.score(gt, shifted, [0], policy)["tp"] == 0


def test_gt_that_does_not_cover_the_video_is_an_error(tiny_onnx, tmp_path, capsys):
    video = make_video(tmp_path / "in.mp4", 6, (320, 180))
    gt_dir = tmp_path / "gt"
    gt_dir.mkdir()
    (gt_dir / "00000.lines.txt").write_text("10 170 20 100 \n")
    out, report_path = outputs(tmp_path, "out")
    rc = infer_video.main(["--model", str(tiny_onnx), "--video", str(video), "--no-video", "--report", str(report_path),
                           "--gt", str(gt_dir)])
    assert rc == 2 and "ground truth covers 1 frames" in capsys.readouterr().err
