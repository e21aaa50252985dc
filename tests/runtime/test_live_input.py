"""Live input: a real FFmpeg stream over loopback TCP read by runtime.infer_video (the tiny ERFNet on ONNX
Runtime), the newest-frame policy under a deliberately slow model, a stalled stream, Ctrl-C, a paced
file, and the sources that are refused in one line."""
from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from lanedata.loopback_stream import CLIP_FPS, FFMPEG_MISSING, ffmpeg, free_port, tcp_stream
from runtime import infer_video
from runtime.live_report import add_source_lag, lag_growth
from runtime.mailbox import Mailbox
from runtime.video_io import FrameReader
from runtime.video_source import opencv_has, parse_source

ROOT = Path(__file__).resolve().parents[2]
PERIOD_MS = 1000.0 / CLIP_FPS
needs_ffmpeg = pytest.mark.skipif(ffmpeg() is None, reason=FFMPEG_MISSING)


def command(model: Path, video: str, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "runtime.infer_video", "--model", str(model), "--video", video,
            "--out", str(out / "out.mp4"), "--report", str(out / "r.json"), "--threads", "1", "--warmup", "5", *extra]


def run(args: list[str], timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def video_frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    count = 0
    while cap.read()[0]:
        count += 1
    cap.release()
    return count


def write_clip(path: Path, frames: int, size: tuple[int, int], fps: float = 25.0) -> Path:
    """A small MP4 (mp4v) of ``frames`` flat frames of ``size`` (w, h), each a little brighter."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), (i * 5) % 256, np.uint8))
    writer.release()
    return path


# -- the hand-over and the report's arithmetic -------------------------------------------------
def test_mailbox_keeps_the_newest_item_and_counts_what_it_replaced():
    box = Mailbox()
    assert box.put(1) is False and box.put(2) is True and box.put(3) is True
    assert box.get(timeout=0) == 3
    with pytest.raises(queue.Empty):
        box.get(timeout=0.05)
    assert box.wait_taken(0)
    box.put(4)
    assert not box.wait_taken(0.05)
    taker = threading.Timer(0.05, box.get)
    taker.start()
    assert box.wait_taken(2.0)
    taker.join()


def test_source_lag_is_flat_for_a_reader_that_keeps_up_and_grows_for_one_that_does_not():
    keeping_up = [{"arrival": 40.0 * i + 3.0 * (i % 2), "pts": 40.0 * i} for i in range(30)]
    falling_behind = [{"arrival": 50.0 * i, "pts": 40.0 * i} for i in range(30)]
    for records in (keeping_up, falling_behind):
        add_source_lag(records)
        assert min(r["source_lag"] for r in records) == 0.0
    assert abs(lag_growth(keeping_up)) < 5.0
    assert lag_growth(falling_behind) == pytest.approx(10.0 * 20, rel=0.05)  # 10 ms a frame over 20 frames


def test_a_file_read_newest_first_drops_frames_for_a_slow_consumer(tmp_path):
    video = write_clip(tmp_path / "v.mp4", 60, (64, 48))
    with FrameReader(video, latest=True) as reader:
        indices = []
        for frame in reader:
            indices.append(frame.index)
            time.sleep(0.02)
    assert reader.frames_read == 60 and indices == sorted(indices) and indices[-1] == 59
    assert reader.frames_dropped == 60 - len(indices) > 0


# -- sources -------------------------------------------------------------------------------------
def test_sources_are_told_apart(tmp_path, monkeypatch):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    monkeypatch.chdir(tmp_path)
    for name in ("0", "a!b.mp4", "clip appsink!.mp4"):  # existing files, named like a camera or a pipeline
        Path(name).write_bytes(clip.read_bytes())
        assert parse_source(name).kind == "file"
    assert parse_source(str(clip)).kind == "file" and not parse_source(str(clip)).live
    assert parse_source(f"file://{clip}").kind == "file"
    for url in ("rtsp://10.0.0.2:8554/cam", "udp://0.0.0.0:5000", "tcp://127.0.0.1:9000", "https://example.org/a.m3u8"):
        source = parse_source(url)
        assert (source.kind, source.live) == ("stream", True)


def missing_camera() -> str:
    index = next(i for i in range(64) if not Path(f"/dev/video{i}").exists())
    return f"/dev/video{index}"


@pytest.mark.parametrize("spec, expected", [
    (missing_camera(), "camera not found"),
    (missing_camera().removeprefix("/dev/video"), "camera not found"),
    ("ftp://example.org/clip.ts", "unknown stream scheme ftp://"),
    ("videotestsrc ! fakesink", "must end in appsink"),
])
def test_a_source_that_cannot_be_read_is_one_line(spec, expected, tiny_onnx, tmp_path, capsys):
    code = infer_video.main(["--model", str(tiny_onnx), "--video", spec, "--report", str(tmp_path / "r.json"), "--no-video"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and expected in err and "\n" not in err
    assert not (tmp_path / "r.json").exists()


def test_a_gstreamer_pipeline_needs_an_opencv_built_with_it(tiny_onnx, tmp_path, capsys):
    if opencv_has("GStreamer"):
        pytest.skip("this OpenCV has GStreamer: the refusal does not apply")
    code = infer_video.main(["--model", str(tiny_onnx), "--video", "videotestsrc ! videoconvert ! appsink",
                             "--report", str(tmp_path / "r.json"), "--no-video"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "built without GStreamer" in err and "\n" not in err


@pytest.mark.parametrize("timeout", ["2", "3000000"])  # the second: beyond OpenCV's int32 milliseconds
def test_a_stream_that_does_not_answer_is_one_line_within_its_timeout(timeout, tiny_onnx, tmp_path, capsys):
    start = time.monotonic()
    code = infer_video.main(["--model", str(tiny_onnx), "--video", f"tcp://127.0.0.1:{free_port()}", "--stall-timeout", timeout,
                             "--report", str(tmp_path / "r.json"), "--no-video"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "cannot open the stream" in err and "\n" not in err
    assert time.monotonic() - start < 10 and not (tmp_path / "r.json").exists()


def test_frames_past_the_ground_truth_are_not_scored():
    from runtime.decode import DecodedLane
    from runtime.frame_policy import FramePolicy
    from runtime.preprocess import Preprocess

    policy = FramePolicy(Preprocess(net_width=128, net_height=32), 1640, 590)
    lane = np.array([[500.0, 589.0], [700.0, 300.0]])
    scored = infer_video.score([[lane]], [[DecodedLane(1, lane)], [DecodedLane(1, lane)]], [0, 1], policy)
    assert (scored["frames"], scored["tp"]) == (1, 1)


def test_a_file_run_to_its_length_is_complete(tiny_onnx, tmp_path):
    video = write_clip(tmp_path / "clip.mp4", 12, (160, 90))
    assert infer_video.main(["--model", str(tiny_onnx), "--video", str(video), "--max-frames", "12", "--threads", "1",
                             "--warmup", "2", "--report", str(tmp_path / "r.json"), "--no-video"]) == 0
    meta = json.loads((tmp_path / "r.json").read_text())["meta"]
    assert (meta["complete"], meta["stopped_reason"], meta["frames_processed"], meta["live"]) == (True, None, 12, False)


@pytest.mark.parametrize("extra, expected", [
    (["--gt", "."], "scores a video file frame by frame"),
    (["--realtime"], "--realtime paces a file"),
])
def test_options_for_files_are_refused_for_a_stream(extra, expected, tiny_onnx, tmp_path, capsys):
    code = infer_video.main(["--model", str(tiny_onnx), "--video", "udp://127.0.0.1:9", "--report", str(tmp_path / "r.json"),
                             "--no-video", *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and expected in err and "\n" not in err


# -- a real stream --------------------------------------------------------------------------------
@needs_ffmpeg
def test_a_tcp_stream_is_read_live_to_its_end(tiny_onnx, tmp_path):
    with tcp_stream() as (url, sender):
        result = run(command(tiny_onnx, url, tmp_path))
        sender.wait(timeout=30)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    meta, live = report["meta"], report["live"]
    assert (meta["source"], meta["live"], meta["complete"], meta["stopped_reason"]) == ("stream", True, True, None)
    assert live["frames_read"] >= 200
    assert live["frames_before_first"] + live["frames_processed"] + live["frames_dropped"] <= live["frames_read"]
    assert live["fps_nominal"] == CLIP_FPS and 15 < live["fps_measured"] < 40
    frames = [r["frame"] for r in report["records"]]
    assert frames == sorted(set(frames)) and frames[-1] - frames[0] + 1 - len(frames) <= live["frames_dropped"]
    assert live["capture_to_lanes"]["count"] == len(report["records"])
    assert live["capture_to_lanes"]["p50"] <= report["summary"]["total"]["p50"] + 2 * PERIOD_MS  # a fast model waits little
    assert video_frames(tmp_path / "out.mp4") == meta["frames_processed"]
    assert "capture-to-lanes p50" in result.stdout and "dropped" in result.stdout


@needs_ffmpeg
def test_a_slow_model_drops_frames_and_keeps_latency_bounded(tiny_onnx, tmp_path):
    """A model three frame periods slow: the newest frame wins, so capture-to-lanes stays within two
    frame periods of the model's own time and the reader keeps pace with the source."""
    slow_ms = 3 * PERIOD_MS
    with tcp_stream() as (url, _sender):
        result = run(command(tiny_onnx, url, tmp_path, "--simulate-infer-ms", f"{slow_ms:g}", "--no-video"))
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    live, summary = report["live"], report["summary"]
    assert report["meta"]["simulated_infer_ms"] == slow_ms and summary["infer_host"]["min"] >= slow_ms
    assert live["dropped_share"] > 0.5
    assert live["capture_to_lanes"]["p99"] <= summary["total"]["p99"] + 2 * PERIOD_MS
    assert abs(live["source_lag_growth_ms"]) < 2 * PERIOD_MS


@needs_ffmpeg
def test_max_frames_on_a_stream_counts_processed_frames(tiny_onnx, tmp_path):
    with tcp_stream(loops=4) as (url, _sender):
        result = run(command(tiny_onnx, url, tmp_path, "--max-frames", "30", "--no-video"))
    assert result.returncode == 0, result.stderr
    meta = json.loads((tmp_path / "r.json").read_text())["meta"]
    assert (meta["frames_processed"], meta["stopped_reason"], meta["complete"]) == (30, "max-frames", False)


@needs_ffmpeg
def test_the_reader_itself_ends_on_a_read_timeout(tmp_path):
    """Without the consumer's own stall check: FFmpeg's read timeout ends the frames, named a stall."""
    with tcp_stream(loops=4) as (url, sender):
        with FrameReader(url, timeout_s=1.5) as reader:
            count = 0
            for count, _frame in enumerate(reader.frames(), start=1):
                if count == 40:
                    sender.send_signal(signal.SIGSTOP)
    assert count >= 40 and reader.stopped_reason == "stalled: no frame for 1.5 s"


@needs_ffmpeg
def test_a_stalled_stream_ends_the_run_with_a_report_and_a_playable_video(tiny_onnx, tmp_path):
    with tcp_stream(loops=4) as (url, sender):
        process = subprocess.Popen(command(tiny_onnx, url, tmp_path, "--stall-timeout", "2"), cwd=ROOT,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for_frames(tmp_path, process)
        assert sender.poll() is None, "the stream ended before the stall"
        sender.send_signal(signal.SIGSTOP)  # the sender hangs: the connection stays open, nothing comes
        out, err = process.communicate(timeout=60)
    assert process.returncode == infer_video.EXIT_STALLED, err
    lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "stalled: no frame for 2 s" in lines[0] and "Traceback" not in err
    meta = json.loads((tmp_path / "r.json").read_text())["meta"]
    assert meta["complete"] is False and meta["stopped_reason"] == "stalled: no frame for 2 s"
    assert 0 < meta["frames_processed"] == video_frames(tmp_path / "out.mp4")


@needs_ffmpeg
def test_ctrl_c_on_a_stream_writes_the_report_and_a_playable_video(tiny_onnx, tmp_path):
    with tcp_stream(loops=4) as (url, _sender):
        process = subprocess.Popen(command(tiny_onnx, url, tmp_path), cwd=ROOT, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        wait_for_frames(tmp_path, process)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert process.returncode == infer_video.EXIT_INTERRUPTED, err
    assert "Traceback" not in err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["meta"]["stopped_reason"] == "interrupted" and report["live"]["frames_read"] > 0
    assert 0 < report["meta"]["frames_processed"] == video_frames(tmp_path / "out.mp4")


def wait_for_frames(out: Path, process: subprocess.Popen, seconds: float = 60.0) -> None:
    """Until the run has processed frames (its partial output video grows), or fail."""
    partial = out / ".out.partial.mp4"
    deadline = time.monotonic() + seconds
    while not (partial.is_file() and partial.stat().st_size > 20_000):
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "no frame processed"
        time.sleep(0.1)


def test_a_paced_file_runs_at_its_own_rate_and_drops_for_a_slow_model(tiny_onnx, tmp_path):
    video = write_clip(tmp_path / "clip.mp4", 75, (320, 180))  # 3 s
    start = time.monotonic()
    code = infer_video.main(["--model", str(tiny_onnx), "--video", str(video), "--realtime", "--simulate-infer-ms", "100",
                             "--threads", "1", "--warmup", "2", "--report", str(tmp_path / "r.json"), "--no-video"])
    elapsed = time.monotonic() - start
    assert code == 0
    report = json.loads((tmp_path / "r.json").read_text())
    live = report["live"]
    assert live["paced"] is True and live["frames_read"] == 75 and 18 < live["fps_measured"] < 32
    assert 12 <= live["frames_processed"] <= 35 and live["frames_dropped"] >= 75 - 35 - live["frames_before_first"]
    assert elapsed >= 2.9
    assert live["capture_to_lanes"]["p99"] <= report["summary"]["total"]["p99"] + 2 * PERIOD_MS


@pytest.mark.parametrize("option", ["--stall-timeout", "--duration", "--simulate-infer-ms"])
def test_times_must_be_positive(option, tiny_onnx, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        infer_video.main(["--model", str(tiny_onnx), "--video", "x.mp4", "--report", str(tmp_path / "r.json"), "--no-video",
                          option, "0"])
    assert exit_.value.code == 2 and "expected a number > 0" in capsys.readouterr().err


def test_duration_stops_a_file_run(tiny_onnx, tmp_path):
    video = write_clip(tmp_path / "clip.mp4", 250, (160, 90))
    code = infer_video.main(["--model", str(tiny_onnx), "--video", str(video), "--realtime", "--duration", "1",
                             "--threads", "1", "--warmup", "1", "--report", str(tmp_path / "r.json"), "--no-video"])
    meta = json.loads((tmp_path / "r.json").read_text())["meta"]
    assert code == 0 and meta["stopped_reason"] == "duration" and 15 <= meta["frames_read"] <= 40


def paced_report(model: Path, video: Path, out: Path, delay_ms: str) -> Path:
    report = out / f"{delay_ms}.json"
    assert infer_video.main(["--model", str(model), "--video", str(video), "--realtime", "--simulate-infer-ms", delay_ms,
                             "--threads", "1", "--warmup", "2", "--report", str(report), "--no-video"]) == 0
    return report


def test_compare_latency_shows_live_figures_when_both_reports_have_them(tiny_onnx, tmp_path):
    from runtime.compare_latency import main as compare

    video = write_clip(tmp_path / "clip.mp4", 40, (160, 90))
    teacher, student = paced_report(tiny_onnx, video, tmp_path, "90"), paced_report(tiny_onnx, video, tmp_path, "10")
    data = json.loads(teacher.read_text())
    data["meta"].update(role="teacher", model_name="slow-teacher")
    teacher.write_text(json.dumps(data))
    assert compare([str(teacher), str(student), "--out", str(tmp_path / "latency.md")]) == 0
    md = (tmp_path / "latency.md").read_text()
    assert "## Live input: capture to lanes" in md and md.count("file (paced)") == 2
    figures = json.loads((tmp_path / "latency.json").read_text())
    t, s = figures["teacher"]["live"], figures["student"]["live"]
    assert t["dropped_share"] > s["dropped_share"] and t["capture_to_lanes_p50"] > s["capture_to_lanes_p50"] > 0
    data["live"]["capture_to_lanes"]["p99"] = float("nan")
    teacher.write_text(json.dumps(data))
    assert compare([str(teacher), str(student), "--out", str(tmp_path / "again.md")]) == 2
    del data["live"]
    teacher.write_text(json.dumps(data))
    assert compare([str(teacher), str(student), "--out", str(tmp_path / "one.md")]) == 0
    assert "Live input" not in (tmp_path / "one.md").read_text()
