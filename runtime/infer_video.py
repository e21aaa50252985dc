"""Run a deployed model on a video: lanes (or a marking model's classes) drawn on every frame, honest per-frame latency.

    python runtime/infer_video.py --model M --video IN.mp4 --out OUT.mp4 --report R.json
        [--backend auto|onnxruntime|tensorrt|torch] [--device auto|cpu|cuda|tensorrt] [--threads N]
        [--max-frames N] [--warmup N] [--decode-threads 1] [--no-pin] [--gt DIR] [--no-video]

(also ``python -m runtime.infer_video``). A reader thread decodes frames and maps each straight
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

Ctrl-C (or SIGTERM) stops after the frame in progress: the partial report (``complete`` false,
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
from runtime.cli import Parser, check_output_file, fail, non_negative_int, positive_int, with_sidecars
from runtime.backends import BACKENDS, DEVICES, Backend, load_backend
from runtime.culane_metric import Counts, count_image
from runtime.decode import DecodedLane
from runtime.errors import DataError
from runtime.frame_loop import LoopResult, run_loop, signals_ignored, stop_on_signals
from runtime.frame_policy import DEFAULT_MODE, MODES, FramePolicy
from runtime.latency import summarize
from runtime.lines import Lane, read_lines_file
from runtime.predictor import FramePredictor, render
from runtime.thread_trial import ThreadTrial, candidate_threads
from runtime.video_io import DECODE_THREADS, FrameReader, FrameWriter, VideoInfo, check_video_file, quiet_opencv

LATENCY_KEY = "infer_host"
EXIT_INTERRUPTED = 130
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


def score(ground_truth: list[list[Lane]], predictions: list[list[DecodedLane]], policy: FramePolicy) -> dict[str, Any]:
    """CULane counts over the processed frames, in the model's source geometry."""
    pre, total = policy.pre, Counts()
    for gt, pred in zip(ground_truth, predictions):
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
    keys = [k for k in records[0] if k != "frame"]
    summary: dict[str, Any] = {k: summarize(r[k] for r in records if k in r) for k in keys}
    wall_s = sum(r["wall"] for r in records) / 1000.0
    summary["loop_fps"] = len(records) / wall_s if wall_s > 0 else None
    return summary


def records_csv(records: list[dict[str, float]]) -> str:
    if not records:
        return "frame\n"
    keys = list(records[0])
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
    parser.add_argument("--video", required=True, help="input video (any size; see runtime/frame_policy.py). A still image "
                        "is refused with one line: for images use python -m runtime.evaluate or runtime.contact_sheet")
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
    return args


def check_paths(args: argparse.Namespace) -> None:
    """Inputs and output locations, before the model is loaded or a frame decoded."""
    video = Path(args.video)
    check_video_file(video)
    outputs = [Path(args.report), Path(args.report).with_suffix(".csv")] + ([] if args.no_video else [Path(args.out)])
    inputs = [video, *with_sidecars(args.model), args.gt]
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
    pipelines = {t: pinned_pipeline(args.model, "onnxruntime", "cpu", t, policy, plan) for t in candidates}
    return ThreadTrial(pipelines, warmup // len(candidates))


def pinned_pipeline(model: str, backend: str, device: str, threads: int | None, policy: FramePolicy, plan: CorePlan | None
                    ) -> FramePredictor:
    """A pipeline whose backend is created on its model's cores (ONNX Runtime's pool threads inherit
    them) and whose calls run there (every core when the model needs them all)."""
    cores = plan.model_threads_cores(threads) if plan else None
    with pinned(cores):
        return FramePredictor(load_backend(model, backend, device, threads), policy, cores)


def run(args: argparse.Namespace) -> int:
    reader = FrameReader(args.video, max_frames=args.max_frames, decode_threads=args.decode_threads)
    try:
        backend = load_backend(args.model, args.backend, args.device, args.threads)
        w, h = reader.size
        policy = FramePolicy(backend.sidecar.pre, w, h, args.frame_policy)
        expected = reader.expected_frames
        ground_truth = load_ground_truth(args.gt, reader.info, expected) if args.gt else None
        warmup = effective_warmup(args.warmup, expected)
        stop = threading.Event()
        bar = progress_bar(expected)
        candidates = trial_candidates(args, backend, warmup)
        plan = core_plan(args, backend, bool(candidates))
        reader.cores = plan.io if plan else None  # a trial's second candidate, or --threads, leaves the model a core short
        writer = None if args.no_video else FrameWriter(args.out, reader.info.fps, reader.size, render=render, cores=reader.cores)
        print(f"{args.video}: {w}x{h}, {reader.info.fps:g} fps, {reader.info.frame_count or '?'} frames; "
              f"{backend.sidecar.model.get('name')} {backend.sidecar.precision} on {backend.name}/{backend.device}",
              file=sys.stderr, flush=True)
        try:
            with stop_on_signals(stop):
                pipeline = thread_trial(args, candidates, policy, plan, warmup)
                if pipeline is not None and plan is not None:  # once decided, the I/O threads follow the chosen model's plan
                    pipeline.on_decide = lambda chosen: [t.pin(plan.io_cores(chosen)) for t in (reader, writer) if t is not None]
                if pipeline is None:
                    pipeline = (pinned_pipeline(args.model, args.backend, args.device, args.threads, policy, plan)
                                if plan is not None and (args.threads or 1) > 1 else FramePredictor(backend, policy, plan and plan.model_cores(args.threads)))
                backend = pipeline.backend  # with a trial, the first session (default threads) is let go
                reader.prepare = pipeline.preprocess  # in the reader thread, overlapping the previous frame's inference
                result = run_loop(pipeline, reader, writer, warmup, stop, on_frame=bar.update)
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
    stopped = "interrupted" if result.interrupted else reader.stopped_reason
    report: dict[str, Any] = {
        "kind": "video",
        "meta": build_meta(args, backend, reader, policy, warmup, result, stopped),
        "latency_key": LATENCY_KEY,
        "summary": summarize_records(result.records),
        "records": result.records,
    }
    if ground_truth is not None:
        report["accuracy"] = score(ground_truth, result.lanes, policy)
    write_report(Path(args.report), report)
    if not result.records:
        print(f"warning: all {result.processed} processed frames were warm-up; no latency statistics", file=sys.stderr)
    print(summary_line(report, args), flush=True)
    if result.interrupted:
        written = "partial report" + ("" if args.no_video else " and video")
        print(f"interrupted after {result.processed} frames: {written} written", file=sys.stderr)
        return EXIT_INTERRUPTED
    if stopped and stopped != "max-frames":
        print(f"warning: {stopped}; stopped at the last good frame ({result.processed} frames processed)", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quiet_opencv()
    try:
        check_paths(args)
        return run(args)
    except (DataError, OSError) as err:
        return fail(err)
    except KeyboardInterrupt:
        print("interrupted before the first frame: nothing written", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
