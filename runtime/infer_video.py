"""Run a deployed model on a video, a camera or a stream: lanes (or a marking model's classes) drawn on every frame, honest per-frame latency.

    python runtime/infer_video.py --model M --video IN.mp4|/dev/video0|0|rtsp://...|udp://...|'GST ! appsink'
        --out OUT.mp4 --report R.json [--backend auto|onnxruntime|tensorrt|torch] [--device auto|cpu|cuda|tensorrt]
        [--threads N] [--max-frames N] [--duration S] [--warmup N] [--realtime] [--stall-timeout S]
        [--decode-threads 1] [--no-pin] [--gt DIR] [--no-video] [--simulate-infer-ms MS]

(also ``python -m runtime.infer_video``). ``--video`` takes a file, a camera (``/dev/videoN`` or
an index), a stream OpenCV's FFmpeg reads (``rtsp://``, ``udp://``, ``tcp://``, ``http(s)://``, ...)
or a GStreamer pipeline ending in ``appsink`` where OpenCV has GStreamer (:mod:`runtime.video_source`).

**Live sources** (cameras, streams, pipelines) are read at their own pace and the model always gets
the newest frame: older ones are dropped and counted, never queued, so the delay from capture to
lanes stays bounded when the model is slower than the source. A file is processed frame by frame
unless ``--realtime``: then it is paced at its own frame rate, as a camera would deliver it, under
the same policy. Such runs time each frame from its capture (``capture_to_lanes``) and the report
gets a ``live`` block (:mod:`runtime.live_report`: frames dropped and their share, nominal and
measured fps, capture-to-lanes and source-lag statistics). A live source that sends nothing for
``--stall-timeout`` seconds (default 10) ends the run: one line, the report and video of what was
done, exit status 3; the end of a stream ends it normally. The output video holds the processed
frames at the source's rate (so after drops it plays faster than the drive; the HUD counts the
drops). ``--simulate-infer-ms`` makes each model call last at least that long (the real model's
outputs, the rest slept: :mod:`runtime.backends.delayed`), to see the policy as a slower target
would run it. A reader thread decodes frames and maps each straight
onto the network input (one warp: :meth:`runtime.frame_policy.FramePolicy.to_net`, then
normalisation), ahead of the main loop, which infers and decodes lanes back into frame pixels; a writer thread draws lanes and a HUD (:mod:`runtime.draw`) and
encodes. Queues are bounded, so memory stays flat and a slow encoder shows up as loop time.

Per frame (ms): ``decode`` (video decode, reader thread), ``preprocess`` (the warp to the network
input and normalisation, in the reader thread: it overlaps the previous frame's inference), ``infer_host`` (the backend call, host wall time), ``infer_device`` (GPU
compute from CUDA events, only where the backend measures it), ``postprocess`` (probabilities,
lane decoding, mapping back), ``total`` (preprocess + infer_host + postprocess) and ``wall`` (time
between the ends of consecutive loop iterations: the loop's real period, I/O waits included).
The first ``--warmup`` frames (default 20) are processed and written but not timed; without
``--threads``, on ONNX Runtime's CPU, they also choose the model's thread count (all cores or one
fewer, whichever loops faster: :mod:`runtime.thread_trial`; the report's ``meta.thread_trial``).
When the model leaves a core free, the reader and writer run on it and the model on the others
(:mod:`runtime.affinity`; ``meta.affinity``; ``--no-pin`` leaves it to the scheduler).

The report (JSON, written atomically, with a CSV of the records beside it) follows the schema
shared with ``runtime/benchmark.py``: ``kind``, ``meta``, ``latency_key``, ``summary`` (latency
statistics per column and ``loop_fps``), ``records``, and with ``--gt`` an ``accuracy`` block.
``--gt DIR`` takes the ground truth the synthetic drive generator writes beside its video
(``DIR/<nnnnn>.lines.txt`` per frame, in frame pixels, optionally ordered by ``DIR/list.txt``);
lanes are scored in the model's source geometry (GT mapped through the frame policy) with the
official CULane counting, so a 1640x590 video is scored exactly as CULane images are.

A marking model (sidecar ``class_table`` without lanes, e.g. ``apolloscape``) decodes no lanes:
``postprocess`` is the argmax class map, and the writer blends the classes other than ``void``
onto the frame in the table's colours, with a legend of the classes present (top right;
:class:`runtime.class_map.ClassOverlay`). ``--gt`` (lane ground truth) is refused for it.

Before the model is loaded: the video must be a video (a still image is refused with one line:
this command runs videos), and the report, its .csv and the output video must be writable where
asked and must not overwrite an input.

``--max-frames`` counts frames processed (of a file: also read); ``--duration`` stops after that
many seconds of the loop (a camera never ends). Ctrl-C (or SIGTERM) stops after the frame in progress: the partial report (``complete`` false,
``stopped_reason`` "interrupted") and a playable video are written, exit status 130; a second
Ctrl-C stops at once. A corrupt or truncated video stops at the last good frame with a warning
(exit 0). Bad inputs (missing or non-video file, no frames, model without a matching sidecar)
give one ``error:`` line and exit status 2.
"""
from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import threading
from typing import Any

from runtime.affinity import CorePlan, pinned, plan_cores
from runtime.artifacts import library_versions, now, read_sidecar
from runtime.atomic import atomic_write_json, atomic_write_text
from runtime.cli import Parser, check_output_file, fail, non_negative_int, positive_float, positive_int, with_sidecars
from runtime.backends import BACKENDS, DEVICES, Backend, load_backend
from runtime.backends.delayed import DelayedBackend
from runtime.culane_metric import Counts, count_image
from runtime.decode import DecodedLane
from runtime.errors import DataError
from runtime.frame_loop import LoopLimits, LoopResult, run_loop, signals_ignored, stop_on_signals
from runtime.frame_policy import DEFAULT_MODE, MODES, FramePolicy
from runtime.latency import summarize
from runtime.live_report import live_summary
from runtime.lines import Lane, read_lines_file
from runtime.predictor import FramePredictor, render
from runtime.thread_trial import ThreadTrial, candidate_threads
from runtime.video_io import DECODE_THREADS, FrameReader, FrameWriter, quiet_opencv
from runtime.video_source import DEFAULT_TIMEOUT_S, VideoInfo, VideoSource, parse_source

LATENCY_KEY = "infer_host"
EXIT_INTERRUPTED = 130
EXIT_STALLED = 3
NOT_SUMMARIZED = ("frame", "arrival", "pts")  # record columns that are positions in time, not durations
VERSION_PACKAGES = ("numpy", "opencv-python-headless", "opencv-python", "onnxruntime", "onnxruntime-gpu",
                    "tensorrt", "cuda-python", "tqdm")


# --------------------------------------------------------------------------------------------
# Ground truth and accuracy
# --------------------------------------------------------------------------------------------
def ground_truth_names(gt_dir: Path) -> list[str]:
    """Per-frame annotation file names, frame order: from ``list.txt`` if present, else ``<nnnnn>.lines.txt``."""
    listing = gt_dir / "list.txt"
    if listing.is_file():
        names = [line.strip().lstrip("/") for line in listing.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [str(Path(n).with_suffix(".lines.txt")) for n in names]
    names = sorted(p.name for p in gt_dir.glob("*.lines.txt"))
    return [f"{n:05d}.lines.txt" for n in range(len(names))]


def check_generator_sidecar(gt_dir: Path, info: VideoInfo) -> None:
    """If the drive generator's sidecar lies beside the video and names ``gt_dir``, check frame size."""
    sidecar = info.path.with_suffix(".json")
    if not sidecar.is_file():
        return
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if not isinstance(data, dict) or data.get("ground_truth") != gt_dir.name:
        return
    if (data.get("width"), data.get("height")) != (info.width, info.height):
        raise DataError(sidecar, f"ground truth is for {data.get('width')}x{data.get('height')} frames, "
                                 f"the video has {info.width}x{info.height}")


def load_ground_truth(gt_dir: str | Path, info: VideoInfo, frames: int | None) -> list[list[Lane]]:
    """Lanes (frame pixels) of the first ``frames`` frames (all listed frames when None)."""
    gt_dir = Path(gt_dir)
    if not gt_dir.is_dir():
        raise DataError(gt_dir, "ground-truth folder not found")
    check_generator_sidecar(gt_dir, info)
    names = ground_truth_names(gt_dir)
    if not names:
        raise DataError(gt_dir, "no per-frame <n>.lines.txt annotations here")
    if frames is not None and len(names) < frames:
        raise DataError(gt_dir, f"ground truth covers {len(names)} frames, the run needs {frames}")
    return [read_lines_file(gt_dir / name) for name in names[:frames]]


def score(ground_truth: list[list[Lane]], predictions: list[list[DecodedLane]], indices: list[int], policy: FramePolicy
          ) -> dict[str, Any]:
    """CULane counts over the processed frames (``indices``: each prediction's frame, so a paced run
    that dropped frames is scored on those it processed), in the model's source geometry."""
    pre, total = policy.pre, Counts()
    for index, pred in zip(indices, predictions):
        if index >= len(ground_truth):  # a container that announced fewer frames than it held: unannotated
            break
        gt = ground_truth[index]
        total += count_image([policy.points_to_source(lane) for lane in gt], [lane.points for lane in pred],
                             im_width=pre.src_width, im_height=pre.src_height)
    return {"f1": total.f1, "precision": total.precision, "recall": total.recall,
            "tp": total.tp, "fp": total.fp, "fn": total.fn, "frames": total.images}


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------
def summarize_records(records: list[dict[str, float]]) -> dict[str, Any]:
    """Latency statistics per column (ms) and ``loop_fps`` (timed frames / their wall seconds)."""
    if not records:
        return {}
    keys = list(dict.fromkeys(k for r in records for k in r if k not in NOT_SUMMARIZED))
    summary: dict[str, Any] = {k: summarize(r[k] for r in records if k in r) for k in keys}
    wall_s = sum(r["wall"] for r in records) / 1000.0
    summary["loop_fps"] = len(records) / wall_s if wall_s > 0 else None
    return summary


def records_csv(records: list[dict[str, float]]) -> str:
    if not records:
        return "frame\n"
    keys = list(dict.fromkeys(k for r in records for k in r))
    rows = [",".join(keys)] + [",".join(repr(r[k]) if k in r else "" for k in keys) for r in records]
    return "\n".join(rows) + "\n"


def build_meta(args: argparse.Namespace, backend: Backend, reader: FrameReader, policy: FramePolicy,
               warmup: int, result: LoopResult, stopped_reason: str | None) -> dict[str, Any]:
    sidecar, pre = backend.sidecar, backend.sidecar.pre
    model = sidecar.model
    return {
        "model": str(args.model), "model_name": model.get("name"), "arch": model.get("arch"), "role": model.get("role"),
        "params": model.get("params"), "model_bytes": Path(backend.path).stat().st_size, "classes": sidecar.class_table,
        "precision": sidecar.precision, "format": sidecar.format, "backend": backend.name, "device": backend.device,
        "device_name": backend.device_name, "settings": dict(getattr(backend, "settings", {}) or {}),
        "input_shape": [1, 3, pre.net_height, pre.net_width],
        "threads": result.trial["chosen"] if result.trial and result.trial["chosen"] else args.threads,
        "thread_trial": result.trial, "affinity": result.affinity, "decode_threads": args.decode_threads, "video": str(args.video), "frame_size": list(reader.size), "video_fps": reader.info.fps,
        "source": reader.source.kind, "live": reader.latest, "realtime": reader.pace,
        "simulated_infer_ms": args.simulate_infer_ms,
        "frames_read": reader.frames_read, "frames_processed": result.processed, "warmup": warmup,
        "complete": stopped_reason is None, "stopped_reason": stopped_reason, "policy": policy.describe(),
        "versions": library_versions(*VERSION_PACKAGES), "created": now(),
    }


def write_report(path: Path, report: dict[str, Any]) -> None:
    """The JSON report and its per-frame CSV (same stem), both atomically."""
    atomic_write_json(path, report)
    atomic_write_text(path.with_suffix(".csv"), records_csv(report["records"]))


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = Parser(prog="python runtime/infer_video.py", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="a deployed artifact (.onnx, .engine, .pt2) with its .json sidecar")
    parser.add_argument("--video", required=True, help="a video file (any size; see runtime/frame_policy.py), a camera "
                        "(/dev/videoN or an index), a stream (rtsp://, udp://, tcp://, http(s)://, ...) or a GStreamer pipeline "
                        "ending in appsink (runtime/video_source.py). A still image is refused with one line: for images use "
                        "python -m runtime.evaluate or runtime.contact_sheet")
    parser.add_argument("--frame-policy", choices=MODES, default=DEFAULT_MODE,
                        help="how a frame of another size meets the model's 1640x590 geometry (runtime/frame_policy.py): "
                             "letterbox (default: whole frame, scaled to fit, centred) or bottom (full width, bottom rows)")
    parser.add_argument("--out", help="output video (.mp4, mp4v) with lanes (a marking model: classes) and HUD drawn")
    parser.add_argument("--report", required=True, help="latency report (.json; a .csv of per-frame records beside it)")
    parser.add_argument("--backend", default="auto", choices=BACKENDS)
    parser.add_argument("--device", default="auto", choices=DEVICES)
    parser.add_argument("--threads", type=positive_int, help="CPU intra-op threads of the backend (default on ONNX Runtime's "
                        "CPU: the warm-up frames try all cores and one fewer and keep the faster loop; see runtime/thread_trial.py)")
    parser.add_argument("--max-frames", type=positive_int, help="process at most N frames (warm-up included)")
    parser.add_argument("--duration", type=positive_float, help="stop after this many seconds of processing (a camera never ends)")
    parser.add_argument("--realtime", action="store_true", help="pace a file at its own frame rate, as a camera would deliver "
                        "it: the model gets the newest frame, older ones are dropped (live sources always run so)")
    parser.add_argument("--stall-timeout", type=positive_float, default=DEFAULT_TIMEOUT_S, metavar="S",
                        help=f"a live source that sends no frame for S seconds ends the run, exit status {EXIT_STALLED} "
                             f"(default {DEFAULT_TIMEOUT_S:g}; also a stream's open timeout)")
    parser.add_argument("--simulate-infer-ms", type=positive_float, metavar="MS", help="make each model call last at least "
                        "MS milliseconds (the rest slept; outputs unchanged): the real-time policy as a slower target runs it")
    parser.add_argument("--warmup", type=non_negative_int, default=20, help="frames processed but not timed (default 20; "
                        "8 or more also choose the thread count)")
    parser.add_argument("--decode-threads", type=non_negative_int, default=DECODE_THREADS, help="FFmpeg decoder threads "
                        f"(default {DECODE_THREADS}: decoding overlaps the model in its own thread and leaves it the other cores; "
                        "0: OpenCV's default, one per core)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin threads to cores (default on a CPU, when the "
                        "model leaves a core free: reader and writer on the last core, the model on the others; runtime/affinity.py)")
    parser.add_argument("--gt", help="per-frame ground truth folder (the synthetic drive's <video>_gt) -> F1 (lane models)")
    parser.add_argument("--no-video", action="store_true", help="do not write an output video")
    args = parser.parse_args(argv)
    if not args.no_video and not args.out:
        parser.error("--out is required unless --no-video")
    if Path(args.report).suffix.lower() != ".json":
        parser.error("--report must be a .json file (the per-frame .csv is written beside it)")
    if not args.video.strip():
        parser.error("--video: an empty value (an unset variable?)")
    return args


def check_paths(args: argparse.Namespace) -> VideoSource:
    """Inputs and output locations, before the model is loaded or a frame decoded; the source ``--video`` names."""
    source = parse_source(args.video)
    if source.live and args.gt:
        raise DataError(args.gt, f"--gt scores a video file frame by frame; {source.spec} is a live {source.kind}")
    if source.live and args.realtime:
        raise DataError(source.spec, f"--realtime paces a file; a {source.kind} already runs in real time")
    outputs = [Path(args.report), Path(args.report).with_suffix(".csv")] + ([] if args.no_video else [Path(args.out)])
    inputs = [*([source.path] if source.kind == "file" else []), *with_sidecars(args.model), args.gt]
    for i, path in enumerate(outputs):
        if path.resolve() in {p.resolve() for p in outputs[:i]}:
            raise DataError(path, "--out would overwrite the report or its .csv")
    check_output_file(args.report, "report", inputs)
    check_output_file(Path(args.report).with_suffix(".csv"), "report's .csv", inputs)
    if not args.no_video:
        check_output_file(args.out, "output video", inputs)
    if args.gt and not Path(args.gt).is_dir():
        raise DataError(args.gt, "ground-truth folder not found")
    if args.gt and Path(args.model).is_file() and not (table := read_sidecar(args.model).table).existence:
        raise DataError(args.model, f"--gt scores lanes, and this is a {table.task} model ({table.name!r} classes): "
                                    "score it on labelled images with python -m runtime.evaluate (mIoU)")
    return source


def effective_warmup(requested: int, expected: int | None) -> int:
    """Keep at least one timed frame when the video is known to be shorter than the warm-up."""
    if expected is None or requested < expected:
        return requested
    warmup = max(0, expected - 1)
    print(f"note: the video has {expected} frames; warm-up lowered from {requested} to {warmup}", file=sys.stderr)
    return warmup


def progress_bar(total: int | None):
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", desc="video", leave=False, file=sys.stderr, disable=not sys.stderr.isatty())


def summary_line(report: dict[str, Any], args: argparse.Namespace) -> str:
    meta, summary = report["meta"], report["summary"]
    parts = [f"{meta['frames_processed']} frames ({len(report['records'])} timed)"]
    if summary.get("loop_fps"):
        parts.append(f"infer p50 {summary[LATENCY_KEY]['p50']:.2f} ms, total p50 {summary['total']['p50']:.2f} ms, "
                     f"loop {summary['loop_fps']:.1f} FPS")
    live = report.get("live")
    if live:
        capture = live["capture_to_lanes"]
        if capture:
            parts.append(f"capture-to-lanes p50 {capture['p50']:.1f} ms, p99 {capture['p99']:.1f} ms")
        share = live["dropped_share"]
        parts.append(f"dropped {live['frames_dropped']}" + (f" ({100 * share:.1f} %)" if share is not None else "")
                     + f", {live['frames_read']} read")
    if "accuracy" in report:
        f1 = report["accuracy"]["f1"]
        parts.append("F1 n/a (no lanes annotated)" if f1 is None else f"F1 {f1:.3f}")
    outputs = ([] if args.no_video else [str(args.out)]) + [str(args.report)]
    return f"{meta['backend']}/{meta['device']} {meta['precision']}: " + ", ".join(parts) + " -> " + ", ".join(outputs)


def affinity_meta(plan: CorePlan | None, threads: int | None) -> dict[str, Any] | None:
    """For the report: the allowed cores, and those of the I/O threads and of the model's threads
    as they ran after any thread trial (None: nothing pinned)."""
    if plan is None:
        return None
    return {"cores": sorted(plan.cores), "io": sorted(plan.io_cores(threads)), "model": sorted(plan.model_threads_cores(threads))}


def trial_candidates(args: argparse.Namespace, backend: Backend, warmup: int) -> list[int]:
    """Thread counts the warm-up frames choose between (:mod:`runtime.thread_trial`): only without
    ``--threads``, on ONNX Runtime's CPU; [] where there is nothing to choose."""
    if args.threads is not None or (backend.name, backend.device) != ("onnxruntime", "cpu"):
        return []
    return candidate_threads(warmup)


def core_plan(args: argparse.Namespace, backend: Backend, trial: bool) -> CorePlan | None:
    """Cores for the model and the I/O threads (:mod:`runtime.affinity`): on a CPU backend whose
    model leaves a core free (a thread trial's second candidate does, or ``--threads`` below the
    core count); None (nothing pinned) otherwise or with ``--no-pin``."""
    plan = plan_cores() if backend.device == "cpu" and not args.no_pin else None
    if plan is None or not (trial or plan.model_cores(args.threads) is not None):
        return None
    return plan


def thread_trial(args: argparse.Namespace, candidates: list[int], policy: FramePolicy, plan: CorePlan | None,
                 warmup: int) -> ThreadTrial | None:
    """One pipeline per candidate thread count, each with its cores; None without candidates."""
    if not candidates:
        return None
    pipelines = {t: pinned_pipeline(args.model, "onnxruntime", "cpu", t, policy, plan, args.simulate_infer_ms) for t in candidates}
    return ThreadTrial(pipelines, warmup // len(candidates))


def pinned_pipeline(model: str, backend: str, device: str, threads: int | None, policy: FramePolicy, plan: CorePlan | None,
                    delay_ms: float | None = None) -> FramePredictor:
    """A pipeline whose backend is created on its model's cores (ONNX Runtime's pool threads inherit
    them) and whose calls run there (every core when the model needs them all)."""
    cores = plan.model_threads_cores(threads) if plan else None
    with pinned(cores):
        return FramePredictor(open_backend(model, backend, device, threads, delay_ms), policy, cores)


def open_backend(model: str, backend: str, device: str, threads: int | None, delay_ms: float | None) -> Backend:
    """:func:`runtime.backends.load_backend`, made to last ``delay_ms`` a call where asked (``--simulate-infer-ms``)."""
    loaded = load_backend(model, backend, device, threads)
    return DelayedBackend(loaded, delay_ms) if delay_ms else loaded


def open_reader(args: argparse.Namespace, source: VideoSource) -> FrameReader:
    """The source's reader: a file frame by frame (``--max-frames`` caps the frames read), a live
    source or a ``--realtime`` file newest-frame-first (the loop caps the frames processed)."""
    latest = source.live or args.realtime
    return FrameReader(source, max_frames=None if latest else args.max_frames, decode_threads=args.decode_threads,
                       pace=args.realtime, timeout_s=args.stall_timeout)


def run(args: argparse.Namespace, source: VideoSource) -> int:
    reader = open_reader(args, source)
    try:
        backend = open_backend(args.model, args.backend, args.device, args.threads, args.simulate_infer_ms)
        w, h = reader.size
        policy = FramePolicy(backend.sidecar.pre, w, h, args.frame_policy)
        expected = reader.expected_frames
        ground_truth = load_ground_truth(args.gt, reader.info, expected) if args.gt else None
        warmup = effective_warmup(args.warmup, expected)
        live = reader.source.live
        limits = LoopLimits(frames=args.max_frames if reader.latest else None,  # a file's reader caps its frames itself
                            seconds=args.duration, stall_s=args.stall_timeout if live else None)
        stop = threading.Event()
        bar = progress_bar(None if reader.latest else expected)
        candidates = trial_candidates(args, backend, warmup)
        plan = core_plan(args, backend, bool(candidates))
        reader.pin(plan.io if plan else None)  # a trial's second candidate, or --threads, leaves the model a core short
        writer = None if args.no_video else FrameWriter(args.out, reader.info.fps, reader.size, render=render, cores=reader.cores)
        count = reader.source.kind if reader.source.live else f"{reader.info.frame_count or '?'} frames" + (", paced" if reader.pace else "")
        print(f"{args.video}: {w}x{h}, {reader.info.fps:g} fps, {count}; "
              f"{backend.sidecar.model.get('name')} {backend.sidecar.precision} on {backend.name}/{backend.device}",
              file=sys.stderr, flush=True)
        try:
            with stop_on_signals(stop):
                pipeline = thread_trial(args, candidates, policy, plan, warmup)
                if pipeline is not None and plan is not None:  # once decided, the I/O threads follow the chosen model's plan
                    pipeline.on_decide = lambda chosen: [t.pin(plan.io_cores(chosen)) for t in (reader, writer) if t is not None]
                if pipeline is None:
                    pipeline = (pinned_pipeline(args.model, args.backend, args.device, args.threads, policy, plan, args.simulate_infer_ms)
                                if plan is not None and (args.threads or 1) > 1 else FramePredictor(backend, policy, plan and plan.model_cores(args.threads)))
                backend = pipeline.backend  # with a trial, the first session (default threads) is let go
                if not reader.latest:  # in the reader thread, overlapping the previous frame's inference
                    reader.prepare = pipeline.preprocess
                result = run_loop(pipeline, reader, writer, warmup, stop, on_frame=bar.update, limits=limits)
                result.affinity = affinity_meta(plan, pipeline.current if isinstance(pipeline, ThreadTrial) else args.threads)
                if isinstance(pipeline, ThreadTrial):
                    backend, result.trial = pipeline.backend, pipeline.describe()
        finally:
            with signals_ignored():
                bar.close()
                reader.close()
                if writer is not None:
                    writer.close()
        with signals_ignored():
            return finish(args, backend, reader, policy, warmup, result, ground_truth)
    finally:
        reader.close()


def finish(args: argparse.Namespace, backend: Backend, reader: FrameReader, policy: FramePolicy, warmup: int,
           result: LoopResult, ground_truth: list[list[Lane]] | None) -> int:
    """Write the report, print the summary; the exit status."""
    stopped = "interrupted" if result.interrupted else result.stopped_reason or reader.stopped_reason
    live = live_summary(reader, result.indices, result.records, args.stall_timeout) if reader.latest else None
    report: dict[str, Any] = {
        "kind": "video",
        "meta": build_meta(args, backend, reader, policy, warmup, result, stopped),
        "latency_key": LATENCY_KEY,
        "summary": summarize_records(result.records),
        "records": result.records,
    }
    if live is not None:
        report["live"] = live
    if ground_truth is not None:
        report["accuracy"] = score(ground_truth, result.lanes, result.indices, policy)
    write_report(Path(args.report), report)
    if not result.records:
        print(f"warning: all {result.processed} processed frames were warm-up; no latency statistics", file=sys.stderr)
    print(summary_line(report, args), flush=True)
    if result.interrupted:
        written = "partial report" + ("" if args.no_video else " and video")
        print(f"interrupted after {result.processed} frames: {written} written", file=sys.stderr)
        return EXIT_INTERRUPTED
    if reader.stalled and not result.interrupted:
        print(f"error: {reader.source.spec}: {stopped}; report{'' if args.no_video else ' and video'} written with the "
              f"{result.processed} frames processed", file=sys.stderr)
        return EXIT_STALLED
    if stopped and stopped not in ("max-frames", "duration"):
        print(f"warning: {stopped}; stopped at the last good frame ({result.processed} frames processed)", file=sys.stderr)
    return 0



def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quiet_opencv()
    try:
        return run(args, check_paths(args))
    except (DataError, OSError) as err:
        return fail(err)
    except KeyboardInterrupt:
        print("interrupted before the first frame: nothing written", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
