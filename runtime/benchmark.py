"""Inference latency of one deployed model on a fixed input, measured like trtexec.

    python -m runtime.benchmark --model M [--model M2 ...] [--backend auto|onnxruntime|tensorrt|torch]
                                [--device auto|cpu|cuda] [--threads N] [--fp16] [--iterations 1000]
                                [--warmup 100] [--batch 1] [--image PATH] [--json OUT.json] [--quiet]

The same preprocessed batch (``runtime.sample_input``: ``--image`` or a drawn road scene) is fed
every iteration (several ``--model``: timed interleaved, each round one untimed and one timed call
of each model, one report each); ``time.perf_counter`` brackets ``backend.infer`` only (host latency: copies in
and out included, preprocessing and decoding excluded); warm-up iterations are run and dropped.
Backends that time the device (CUDA events) add per-iteration GPU compute / H2D / D2H times.
``--fp16`` (torch backend, CUDA): the FP32 ``.pt2`` program runs in half precision; the report's
``precision`` says fp16 and ``cast_from`` the program's own.

The JSON report (``--json``), shared with the video loop's report::

    {"kind": "benchmark",
     "meta": {"model", "model_name", "arch", "role", "params", "model_bytes", "precision", "format",
              "backend", "device", "device_name", "settings", "input_shape": [N, 3, h, w], "threads",
              "iterations", "warmup", "versions", "created", ["cast_from"]},
     "latency_key": "host",
     "summary": {"host": summarize(...), ["compute", "h2d", "d2h": summarize(...)]},
     "records": [{"host": ms, ["compute": ms, "h2d": ms, "d2h": ms]}, ...]}   # timed iterations only

All times are milliseconds.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from runtime.artifacts import library_versions, now, read_sidecar
from runtime.atomic import atomic_write_json
from runtime.cli import Parser, check_output_file, non_negative_int, positive_int, run_main, with_sidecars
from runtime.culane import read_image
from runtime.errors import DataError
from runtime.backends import BACKENDS, DEVICES, Backend, load_backend
from runtime.latency import REWARM_CALLS, summarize_records, time_inference, time_interleaved
from runtime.resources import check_batch
from runtime.sample_input import sample_batch

VERSION_PACKAGES = ("numpy", "opencv-python-headless", "opencv-python", "onnxruntime", "onnxruntime-gpu",
                    "tensorrt", "cuda-python")


def report_meta(backend: Backend, batch: np.ndarray, threads: int | None, iterations: int, warmup: int) -> dict[str, Any]:
    """The ``meta`` block of a report: what ran, where, on what input, with which libraries."""
    sidecar = backend.sidecar
    model = sidecar.model
    packages = VERSION_PACKAGES + (("torch",) if backend.name == "torch" else ())
    return {
        "model": str(backend.path),
        "model_name": model.get("name"),
        "arch": model.get("arch"),
        "role": model.get("role"),
        "params": model.get("params"),
        "model_bytes": Path(backend.path).stat().st_size,
        "precision": sidecar.precision,
        "format": sidecar.format,
        "backend": backend.name,
        "device": backend.device,
        "device_name": backend.device_name,
        "settings": dict(getattr(backend, "settings", {}) or {}),
        "input_shape": [int(v) for v in batch.shape],
        "threads": (getattr(backend, "settings", {}) or {}).get("threads", threads),  # as used (a count over the cores is clamped)
        "iterations": iterations,
        "warmup": warmup,
        "versions": library_versions(*packages),
        "created": now(),
    }


def benchmark(model: str, backend: str = "auto", device: str = "auto", threads: int | None = None,
              iterations: int = 1000, warmup: int = 100, batch: int = 1, image: str | None = None,
              progress: bool = False) -> dict[str, Any]:
    """Load ``model``, time it on the sample input; returns the report (see the module docstring)."""
    return benchmark_many([model], backend, device, threads, iterations, warmup, batch, image, progress)[0]


def benchmark_many(models: list[str], backend: str = "auto", device: str = "auto", threads: int | None = None,
                   iterations: int = 1000, warmup: int = 100, batch: int = 1, image: str | None = None,
                   progress: bool = False, fp16: bool = False) -> list[dict[str, Any]]:
    """One report per model; several models are timed interleaved (:func:`time_interleaved`), each
    on its own preprocessing of the same sample input, with the same threads and warm-up. ``fp16``:
    the torch backend runs the FP32 program in half precision (CUDA only; the report says fp16)."""
    options = {"fp16": True} if fp16 else {}
    device = "cuda" if fp16 and device == "auto" else device  # half precision runs on CUDA only
    for m in models if fp16 else []:
        if read_sidecar(m).format != "torch.export":
            raise DataError(m, "--fp16 is for the torch backend (a .pt2 program run in half precision); "
                               "for ONNX Runtime or TensorRT use the FP16 artifact (python -m export.to_fp16)")
    runners = [load_backend(m, backend=backend, device=device, threads=threads, **options) for m in models]
    for m, r in zip(models, runners):
        check_batch("--batch", batch, 3, r.sidecar.table.num_classes, r.sidecar.pre.net_height, r.sidecar.pre.net_width, m)
    inputs = [sample_batch(r.sidecar.pre, batch=batch, image=image) for r in runners]
    if len(runners) == 1:
        all_records = [time_inference(runners[0], inputs[0], iterations, warmup, progress=progress)]
    else:
        all_records = time_interleaved(runners, inputs, iterations, warmup, progress=progress)
    reports = []
    for runner, batch_input, records in zip(runners, inputs, all_records):
        meta = report_meta(runner, batch_input, threads, iterations, warmup)
        if fp16:
            meta["precision"] = "fp16"
            meta["cast_from"] = runner.sidecar.precision
        if len(runners) > 1:
            meta["interleaved_with"] = [str(r.path) for r in runners if r is not runner]
            meta["rewarm_calls"] = REWARM_CALLS
        reports.append({"kind": "benchmark", "meta": meta, "latency_key": "host", "summary": summarize_records(records),
                        "records": records})
    return reports


def _stats_line(stats: dict[str, float | int]) -> str:
    return (f"min = {stats['min']:.4f} ms, max = {stats['max']:.4f} ms, mean = {stats['mean']:.4f} ms, "
            f"median = {stats['median']:.4f} ms, percentile(90%) = {stats['p90']:.4f} ms, "
            f"percentile(95%) = {stats['p95']:.4f} ms, percentile(99%) = {stats['p99']:.4f} ms")


def format_summary(report: dict[str, Any]) -> str:
    """A trtexec-like text summary of a benchmark report."""
    meta, summary = report["meta"], report["summary"]
    host = summary["host"]
    n = meta["input_shape"][0]
    params = f"{meta['params'] / 1e6:.2f} M params, " if isinstance(meta.get("params"), (int, float)) else ""
    lines = [
        "=== Model ===",
        f"{meta['model']}: {meta.get('model_name')} ({meta.get('arch')}), {params}{meta['model_bytes'] / 1e6:.2f} MB, "
        f"{meta['precision']} {meta['format']}",
        f"Backend: {meta['backend']} on {meta['device']} ({meta['device_name']}), threads: {meta['threads'] or 'default'}",
        f"Input: {'x'.join(str(v) for v in meta['input_shape'])} float32, "
        f"{meta['iterations']} iterations after {meta['warmup']} warm-up",
        "=== Performance summary ===",
        f"Throughput: {host['fps']:.2f} qps ({host['fps'] * n:.2f} images/s)",
        f"Latency: {_stats_line(host)}",
    ]
    names = {"h2d": "H2D Latency", "compute": "GPU Compute Time", "d2h": "D2H Latency"}
    lines += [f"{names[key]}: {_stats_line(summary[key])}" for key in ("h2d", "compute", "d2h") if key in summary]
    lines.append(f"Total Host Walltime: {host['mean'] * host['count'] / 1000:.4f} s (timed iterations)")
    lines.append(f"Coefficient of variance of host latency: {host['cv'] * 100:.2f} %")
    if host["cv"] > 0.1:
        lines.append("Note: host latency varies by more than 10 %: other processes may share this machine.")
    return "\n".join(lines)


def _parser() -> Parser:
    parser = Parser(prog="python -m runtime.benchmark", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, action="append",
                        help="artifact (.onnx, .engine, .pt2) with its .json sidecar; repeat to time several models "
                             "interleaved (each round calls every model once), with one --json per model")
    parser.add_argument("--backend", default="auto", choices=BACKENDS)
    parser.add_argument("--device", default="auto", choices=DEVICES, help="tensorrt: ONNX Runtime's TensorRT execution provider")
    parser.add_argument("--threads", type=positive_int, default=None, help="CPU intra-op threads (default: the backend's)")
    parser.add_argument("--fp16", action="store_true", help="torch backend on CUDA (the default device with it): run the FP32 .pt2 program in half precision")
    parser.add_argument("--iterations", type=positive_int, default=1000, help="timed iterations (default 1000)")
    parser.add_argument("--warmup", type=non_negative_int, default=100, help="untimed warm-up iterations (default 100)")
    parser.add_argument("--batch", type=positive_int, default=1, help="images per inference (default 1)")
    parser.add_argument("--image", default=None, help="input image (default: a drawn road scene)")
    parser.add_argument("--json", action="append", default=[], metavar="OUT.json",
                        help="write the report here (one per --model, in order)")
    parser.add_argument("--quiet", action="store_true", help="no summary, no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.json and len(args.json) != len(args.model):
        parser.error(f"{len(args.json)} --json for {len(args.model)} --model: give one per model or none")

    def body() -> int:
        inputs = with_sidecars(*args.model) + [args.image]
        for path in args.json:
            check_output_file(path, "report", inputs)
        if len(set(map(os.path.abspath, args.json))) != len(args.json):
            raise DataError(args.json[0], "the same --json twice: one report per model")
        if args.image:
            read_image(args.image)  # a missing or broken --image is refused before the model loads
        reports = benchmark_many(args.model, args.backend, args.device, args.threads, args.iterations, args.warmup,
                                 args.batch, args.image, progress=not args.quiet and sys.stderr.isatty(), fp16=args.fp16)
        for path, report in zip(args.json, reports):
            atomic_write_json(path, report)
        if not args.quiet:
            print("\n\n".join(format_summary(r) for r in reports))
            if len(reports) > 1:
                print(f"(interleaved: each of {args.iterations} rounds ran every model, {REWARM_CALLS} untimed + 1 timed call)")
            for path in args.json:
                print(f"Report: {path}")
        return 0

    return run_main(body)


if __name__ == "__main__":
    sys.exit(main())
