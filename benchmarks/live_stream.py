"""Benchmark: deployed models on a live stream: frames processed and dropped, capture-to-lanes latency.

    python benchmarks/live_stream.py --model artifacts/culane-synth/student.onnx \\
        [--model artifacts/culane-synth/student.int8cpu.onnx ...] [--seconds 60] [--simulate-infer-ms 120] \\
        [--threads N] [--out reports/live]

For each model in turn (alone: one model, one stream at a time), FFmpeg streams the shared dashcam
clip (looped to ``--seconds``; a test pattern where the clip is absent) over loopback TCP at its
native 25 fps (:mod:`lanedata.loopback_stream`) and ``runtime.infer_video`` reads it live
(``--no-video``). ``--simulate-infer-ms`` adds a run of the first model made that slow
(:mod:`runtime.backends.delayed`). Prints one row per run: frames read / processed / dropped, the
source's measured fps, the model's p50, the pipeline's p99 (``total``), capture-to-lanes p50 / p99,
the bound ``total p99 + 2 frame periods`` and whether p99 kept within it, and the reader's lag
growth (ms; near 0: no queue grows in front of it). The reports stay in ``--out``.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import subprocess
import sys
from pathlib import Path

if not __package__:  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lanedata.loopback_stream import CLIP_FPS, DASHCAM_CLIP, FFMPEG_MISSING, ffmpeg, tcp_stream

ROOT = Path(__file__).resolve().parents[1]
CLIP_SECONDS = 8.84


def run_one(model: str, out: Path, seconds: float, threads: int | None, delay_ms: float | None) -> dict:
    """One live run of ``model`` on a fresh stream; its report."""
    tag = Path(model).stem + (f".slow{delay_ms:g}" if delay_ms else "")
    report = out / f"{tag}.json"
    command = [sys.executable, "-m", "runtime.infer_video", "--model", model, "--report", str(report), "--no-video",
               "--warmup", "20"] + (["--threads", str(threads)] if threads else []) \
        + (["--simulate-infer-ms", f"{delay_ms:g}"] if delay_ms else [])
    with tcp_stream(loops=max(1, math.ceil(seconds / CLIP_SECONDS)), seconds=CLIP_SECONDS) as (url, sender):
        result = subprocess.run([*command, "--video", url], cwd=ROOT, capture_output=True, text=True)
        sender.wait(timeout=30)
    if result.returncode != 0:
        raise SystemExit(f"error: {model}: infer_video exited {result.returncode}: {result.stderr.strip()[-500:]}")
    data = json.loads(report.read_text())
    data["_tag"] = tag
    return data


def row(report: dict) -> list[str]:
    live, summary, meta = report["live"], report["summary"], report["meta"]
    bound = summary["total"]["p99"] + 2 * 1000.0 / CLIP_FPS
    p99 = live["capture_to_lanes"]["p99"]
    return [report["_tag"], str(meta["precision"]), str(meta["threads"]), str(live["frames_read"]), str(live["frames_processed"]),
            f"{live['frames_dropped']} ({100 * live['dropped_share']:.1f} %)", f"{live['fps_measured']:.1f}",
            f"{summary['infer_host']['p50']:.1f}", f"{summary['total']['p99']:.1f}", f"{live['capture_to_lanes']['p50']:.1f}",
            f"{p99:.1f}", f"{bound:.1f}", "yes" if p99 <= bound else "NO", f"{live['source_lag_growth_ms']:+.1f}"]


HEADER = ["run", "precision", "threads", "read", "processed", "dropped", "source fps", "infer p50", "total p99",
          "capture->lanes p50", "p99", "bound (total p99 + 2 periods)", "within", "lag growth (ms)"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", required=True, help="a deployed model with its sidecar (repeatable)")
    parser.add_argument("--seconds", type=float, default=60.0, help="stream length (the clip looped; default 60)")
    parser.add_argument("--simulate-infer-ms", type=float, help="also run the first model made this slow (ms per call)")
    parser.add_argument("--threads", type=int, help="model threads (default: infer_video's warm-up trial)")
    parser.add_argument("--out", default="reports/live", help="folder for the reports (default reports/live)")
    args = parser.parse_args()
    if ffmpeg() is None:
        raise SystemExit(f"error: {FFMPEG_MISSING}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = [(m, None) for m in args.model] + ([(args.model[0], args.simulate_infer_ms)] if args.simulate_infer_ms else [])
    reports = [run_one(model, out, args.seconds, args.threads, delay) for model, delay in runs]
    source = DASHCAM_CLIP.name if DASHCAM_CLIP.is_file() else "FFmpeg test pattern 960x540"
    print(f"live stream: {source} at {CLIP_FPS:g} fps over loopback TCP, {args.seconds:g} s; {platform.processor() or platform.machine()}, "
          f"{reports[0]['meta']['device_name']}; times in ms")
    print("| " + " | ".join(HEADER) + " |\n|" + "---|" * len(HEADER))
    for report in reports:
        print("| " + " | ".join(row(report)) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
