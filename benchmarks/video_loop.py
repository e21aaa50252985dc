"""The video loop against the bare model, interleaved: how much of the model's speed a user keeps.

    python benchmarks/video_loop.py --model M.onnx [--model M2.onnx ...] [--video CLIP] [--threads 1 2]
        [--pin on off] [--rounds 3] [--frames 150] [--out /tmp/video-loop]

For every model, intra-op thread count and pinning (``--pin on``: threads pinned to cores as the
video loop pins them, runtime/affinity.py; ``off``: left to the scheduler), each round times (on one backend session, so the same
model and settings) the bare model on a real preprocessed frame of the clip, then the full video
loop of ``runtime/infer_video.py`` (decode thread, one warp to the network input, model, lane
decoding, drawing and mp4v encoding in the writer thread: output video on), then the loop with
``--no-video``; rounds alternate, so drift hits every configuration alike. Per configuration the
median over rounds of: model-only FPS (1000 / mean bare ms), loop FPS (timed frames / their wall
time), their ratio, the model's p50 inside the loop against bare, and CPU time per frame (process
CPU seconds, all threads: the budget that decides what a loop can reach on few cores). Prints a
markdown table and writes ``video_loop.json`` under ``--out``.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime.atomic import atomic_write_json  # noqa: E402
from runtime.affinity import plan_cores  # noqa: E402
from runtime.backends import Backend, load_backend  # noqa: E402
from runtime.latency import time_inference  # noqa: E402
from runtime.frame_policy import FramePolicy  # noqa: E402
from runtime.frame_loop import run_loop  # noqa: E402
from runtime.predictor import FramePredictor, render  # noqa: E402
from runtime.latency import summarize  # noqa: E402
from runtime.video_io import FrameReader, FrameWriter, quiet_opencv  # noqa: E402

CLIP = ROOT.parent / "shared" / "data" / "videos" / "solidWhiteRight.mp4"
WARMUP = 10


def first_frame_batch(backend: Backend, video: Path) -> Any:
    """The network input of the clip's first frame, through the loop's own preprocessing."""
    reader = FrameReader(video, max_frames=1)
    try:
        frame = next(iter(reader)).image
        return FramePredictor(backend, FramePolicy(backend.sidecar.pre, *reader.size)).preprocess(frame)
    finally:
        reader.close()


def time_bare(backend: Backend, batch: Any, iterations: int) -> dict[str, float]:
    """Bare ``backend.infer`` on one input (``runtime.latency.time_inference``): mean and p50 ms, CPU ms per call."""
    time_inference(backend, batch, 0, WARMUP)
    cpu0 = time.process_time()
    stats = summarize(r["host"] for r in time_inference(backend, batch, iterations, 0))
    return {"mean": stats["mean"], "p50": stats["p50"], "cpu_ms": (time.process_time() - cpu0) * 1000.0 / iterations}


def time_loop(backend: Backend, video: Path, frames: int, out: Path | None, threads: int, pin: bool) -> dict[str, float]:
    """The video loop over ``frames`` frames (``WARMUP`` untimed): loop FPS, in-loop model p50, CPU ms per
    frame. ``pin``: threads pinned to cores as runtime/infer_video.py pins them (runtime.affinity)."""
    plan = plan_cores() if pin else None
    model_cores = plan.model_threads_cores(threads) if plan else None
    io_cores = plan.io_cores(threads) if plan else None
    reader = FrameReader(video, max_frames=frames, cores=io_cores)
    writer = FrameWriter(out, reader.info.fps, reader.size, render=render, cores=io_cores) if out else None
    pipeline = FramePredictor(backend, FramePolicy(backend.sidecar.pre, *reader.size), model_cores)
    reader.prepare = pipeline.preprocess  # as runtime/infer_video.py does
    cpu0 = time.process_time()
    try:
        result = run_loop(pipeline, reader, writer, WARMUP, threading.Event())
    finally:
        if writer is not None:
            writer.close()
        reader.close()
    cpu_ms = (time.process_time() - cpu0) * 1000.0 / max(1, result.processed)
    records = result.records
    wall_s = sum(r["wall"] for r in records) / 1000.0
    return {"fps": len(records) / wall_s, "infer_p50": summarize(r["infer_host"] for r in records)["p50"],
            "preprocess_p50": summarize(r["preprocess"] for r in records)["p50"], "cpu_ms": cpu_ms}


def median(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", required=True)
    parser.add_argument("--video", default=str(CLIP))
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--pin", nargs="+", choices=["on", "off"], default=["on"],
                        help="threads pinned to cores as the video loop does (on), not (off), or both, interleaved")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frames", type=int, default=150, help="frames per loop run (warm-up included)")
    parser.add_argument("--iterations", type=int, default=100, help="bare calls per round")
    parser.add_argument("--out", default="/tmp/video-loop")
    args = parser.parse_args()
    quiet_opencv()
    out = Path(args.out)
    sessions = [(m, t) for m in args.model for t in args.threads]
    backends = {c: load_backend(c[0], "onnxruntime", "cpu", c[1]) for c in sessions}
    batches = {c: first_frame_batch(b, Path(args.video)) for c, b in backends.items()}
    configs = [(m, t, pin == "on") for m, t in sessions for pin in args.pin]
    rows: dict[tuple[str, int, bool], dict[str, list[dict[str, float]]]] = {c: {"bare": [], "video": [], "novideo": []} for c in configs}
    for r in range(args.rounds):
        for c in configs:
            backend, batch = backends[c[:2]], batches[c[:2]]
            rows[c]["bare"].append(time_bare(backend, batch, args.iterations))
            rows[c]["video"].append(time_loop(backend, Path(args.video), args.frames, out / "loop.mp4", c[1], c[2]))
            rows[c]["novideo"].append(time_loop(backend, Path(args.video), args.frames, None, c[1], c[2]))
            print(f"round {r + 1}/{args.rounds} {Path(c[0]).name} threads {c[1]} pin {'on' if c[2] else 'off'}: "
                  f"bare {rows[c]['bare'][-1]['mean']:.2f} ms, "
                  f"loop {rows[c]['video'][-1]['fps']:.1f} FPS (video), {rows[c]['novideo'][-1]['fps']:.1f} FPS (no video)", flush=True)
    device = next(iter(backends.values())).device_name
    results = []
    for (model, threads, pin), runs in rows.items():
        bare_fps = 1000.0 / median(runs["bare"], "mean")
        entry = {"model": model, "threads": threads, "pinned": pin, "bare_fps": bare_fps, "bare_p50": median(runs["bare"], "p50"),
                 "bare_cpu_ms": median(runs["bare"], "cpu_ms")}
        for kind in ("video", "novideo"):
            fps = [x["fps"] for x in runs[kind]]
            entry[kind] = {"fps": statistics.median(fps), "fps_range": [min(fps), max(fps)], "ratio": statistics.median(fps) / bare_fps,
                           "infer_p50": median(runs[kind], "infer_p50"), "preprocess_p50": median(runs[kind], "preprocess_p50"),
                           "cpu_ms": median(runs[kind], "cpu_ms")}
        results.append(entry)
    best = {m: max(e["bare_fps"] for e in results if e["model"] == m) for m in args.model}
    print(f"\nVideo loop vs bare model, {Path(args.video).name}, {device}, {args.rounds} interleaved rounds (medians; FPS range over rounds)\n")
    print("| model | threads | pinned | model-only FPS (p50 ms, CPU ms) | loop FPS, video on | ratio | vs best threads | model p50 in loop | "
          "preprocess p50 | CPU ms/frame | loop FPS, no video | ratio |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for e in results:
        v, n = e["video"], e["novideo"]
        print(f"| {Path(e['model']).parent.name}/{Path(e['model']).name} | {e['threads']} | {'yes' if e['pinned'] else 'no'} | {e['bare_fps']:.1f} ({e['bare_p50']:.2f}, "
              f"{e['bare_cpu_ms']:.1f}) | {v['fps']:.1f} ({v['fps_range'][0]:.1f}-{v['fps_range'][1]:.1f}) | {v['ratio']:.2f} | "
              f"{v['fps'] / best[e['model']]:.2f} | {v['infer_p50']:.2f} | {v['preprocess_p50']:.2f} | {v['cpu_ms']:.1f} | "
              f"{n['fps']:.1f} | {n['ratio']:.2f} |")
    atomic_write_json(out / "video_loop.json", {"device": device, "video": args.video, "rounds": args.rounds, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
