"""One-shot GPU check: the paper's teacher (ResNet-101 + PSP) vs student (ERFNet) at 976x208 on this GPU.

    python benchmarks/gpu_check.py [--out reports/gpu_check] [--iterations 300] [--warmup 50]

Needs only what a bare NVIDIA machine here has: CUDA PyTorch (and, where installed, ONNX Runtime's
CUDA provider). Builds both architectures with untrained weights (latency does not depend on
them), then times them interleaved (``runtime.latency.time_interleaved``: each round one untimed
and one timed call of each model, the order alternating), batch 1, in FP32 and FP16
(``model.half()``, FP16 input), with cuDNN autotuning:
host latency (``perf_counter`` around the forward pass and a synchronize, ms) and GPU time (CUDA
events around the forward pass, ms), p50 and p99, and the teacher/student ratio. With ONNX
Runtime's CUDA provider present the FP32 pair is also exported to ONNX and timed there. TensorRT
engines are built by ``python -m export.to_tensorrt`` (not here: a build takes minutes).

Prints one Markdown table and writes ``gpu_check.json`` and ``gpu_check.md`` under ``--out``
(atomically), with the GPU name, driver, CUDA/cuDNN/torch versions. Where no CUDA GPU is visible
it exits with status 2 and one line. ``--device cpu`` runs the same path on the CPU, only to test
this script without a GPU (FP32 only; those figures are not what it is for).
"""
from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PAPER = {"teacher_ms": 171.2, "student_ms": 10.2, "ratio": 16.8, "device": "GTX TITAN X (Maxwell)"}


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def build_pair(width: int, height: int) -> dict[str, Any]:
    """{"teacher": ResNet-101 + PSP (head 512), "student": ERFNet}, untrained, eval mode, on the CPU."""
    from training.models import ERFNet, PSPNet

    size = (height, width)
    return {"teacher": PSPNet(size, depth=101, head_channels=512, dropout=0.1).eval(), "student": ERFNet(size, dropout=0.1).eval()}


class TorchRunner:
    """A torch model behind the runtime's backend interface (``infer``, ``last_device_times``), so
    ``runtime.latency.time_interleaved`` times it: the call synchronizes, and on CUDA the GPU time
    of the forward pass (CUDA events) is ``last_device_times["compute_ms"]``."""

    def __init__(self, torch: Any, model: Any, cuda: bool) -> None:
        self.torch, self.model, self.cuda = torch, model, cuda
        self.last_device_times: dict[str, float] = {}
        if cuda:
            self.start, self.end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def infer(self, x: Any) -> None:
        with self.torch.inference_mode():
            if self.cuda:
                self.start.record()
            self.model(x)
            if self.cuda:
                self.end.record()
                self.torch.cuda.synchronize()
                self.last_device_times = {"compute_ms": self.start.elapsed_time(self.end)}


class SessionRunner:
    """An ONNX Runtime session behind the same interface (host time only)."""

    def __init__(self, session: Any) -> None:
        self.session, self.last_device_times = session, {}

    def infer(self, feed: dict) -> None:
        self.session.run(None, feed)


def timed_row(backend: str, precision: str, runners: dict[str, Any], inputs: dict[str, Any], iterations: int,
              warmup: int) -> dict[str, Any]:
    """Teacher and student timed interleaved (the runtime's benchmark loop), summarized, with ratios."""
    from runtime.latency import summarize_records, time_interleaved

    names = list(runners)
    records = time_interleaved([runners[n] for n in names], [inputs[n] for n in names], iterations, warmup)
    out: dict[str, Any] = {"backend": backend, "precision": precision}
    out.update({name: summarize_records(r) for name, r in zip(names, records)})
    out["ratio_host_p50"] = out["teacher"]["host"]["p50"] / out["student"]["host"]["p50"]
    if "compute" in out["teacher"]:
        out["ratio_gpu_p50"] = out["teacher"]["compute"]["p50"] / out["student"]["compute"]["p50"]
    return out


def onnxruntime_rows(torch: Any, models: dict[str, Any], width: int, height: int, out: Path, iterations: int,
                     warmup: int) -> tuple[list[dict[str, Any]], str | None]:
    """The FP32 pair through ONNX Runtime's CUDA provider, if installed; (rows, why skipped)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return [], "onnxruntime not installed"
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return [], f"ONNX Runtime {ort.__version__} has no CUDAExecutionProvider (the CPU build; onnxruntime-gpu has it)"
    import numpy as np

    runners, feeds = {}, {}
    for name, model in models.items():
        path = out / f"{name}.onnx"
        try:
            torch.onnx.export(model.float().cpu(), (torch.zeros(1, 3, height, width),), str(path), input_names=["image"], opset_version=17,
                              dynamo=False)
        except Exception as err:  # noqa: BLE001 - exporter versions differ; the torch rows stand on their own
            return [], f"ONNX export failed ({err.__class__.__name__}: {str(err).splitlines()[0][:120]})"
        runners[name] = SessionRunner(ort.InferenceSession(str(path), providers=["CUDAExecutionProvider"]))
        feeds[name] = {"image": np.zeros((1, 3, height, width), np.float32)}
    return [timed_row("onnxruntime-cuda", "fp32", runners, feeds, iterations, warmup)], None


def environment(torch: Any, cuda: bool) -> dict[str, Any]:
    env = {"torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(), "host": platform.node()}
    if cuda:
        env["gpu"] = torch.cuda.get_device_name(0)
        env["cudnn"] = torch.backends.cudnn.version()
        try:
            env["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True,
                                           text=True, timeout=20).stdout.strip().splitlines()[0]
        except (OSError, subprocess.SubprocessError, IndexError):
            env["driver"] = None
    else:
        env["gpu"] = None
    try:
        import tensorrt

        env["tensorrt"] = tensorrt.__version__
    except ImportError:
        env["tensorrt"] = None
    return env


def markdown(result: dict[str, Any]) -> str:
    env, (w, h) = result["environment"], result["size"]
    where = env["gpu"] or "CPU (script test only)"
    lines = [f"# GPU check: ResNet-101 + PSP vs ERFNet at {w}x{h}, batch 1", "",
             f"{where}; driver {env.get('driver')}, CUDA {env.get('cuda')}, cuDNN {env.get('cudnn')}, torch {env['torch']}, "
             f"TensorRT {env.get('tensorrt') or 'not installed'}; {result['iterations']} interleaved rounds after "
             f"{result['warmup']} warm-up; untrained weights (latency only); {result['created']}.", "",
             "| backend | precision | teacher host p50 / p99 ms | student host p50 / p99 ms | host ratio (p50) | teacher GPU p50 ms | "
             "student GPU p50 ms | GPU ratio (p50) |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        t, s = r["teacher"], r["student"]
        gpu = (f"{t['compute']['p50']:.3f} | {s['compute']['p50']:.3f} | {r['ratio_gpu_p50']:.1f}x" if "compute" in t else "- | - | -")
        lines.append(f"| {r['backend']} | {r['precision']} | {t['host']['p50']:.3f} / {t['host']['p99']:.3f} | "
                     f"{s['host']['p50']:.3f} / {s['host']['p99']:.3f} | **{r['ratio_host_p50']:.1f}x** | {gpu} |")
    lines.append(f"| paper | fp32 | {PAPER['teacher_ms']} (mean) | {PAPER['student_ms']} (mean) | {PAPER['ratio']}x | | | |")
    lines += ["", f"Paper: {PAPER['device']}, the mean of 100 samples."]
    for note in result["skipped"]:
        lines.append(f"- skipped: {note}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(ROOT / "reports" / "gpu_check"))
    parser.add_argument("--iterations", type=int, default=300, help="timed rounds (default 300)")
    parser.add_argument("--warmup", type=int, default=50, help="untimed rounds first (default 50)")
    parser.add_argument("--size", default="976x208", help="network input WxH (default the paper's 976x208)")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="cpu: test this script without a GPU")
    args = parser.parse_args(argv)
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        return fail(f"--size must be WxH, got {args.size!r}")
    if args.iterations < 1 or args.warmup < 0 or width % 16 or height % 16:
        return fail("--iterations >= 1, --warmup >= 0, and --size a multiple of 16 each way (PSP pooling)")
    try:
        import torch
    except ImportError:
        return fail("torch is not installed: this check needs CUDA PyTorch")
    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        return fail(f"no CUDA GPU visible to torch {torch.__version__} (CUDA build: {torch.version.cuda}); run this on an NVIDIA machine")
    start = time.perf_counter()
    device = torch.device("cuda" if cuda else "cpu")
    torch.backends.cudnn.benchmark = True
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    models = build_pair(width, height)
    rows, skipped = [], []
    for precision in ("fp32", "fp16") if cuda else ("fp32",):
        dtype = torch.float16 if precision == "fp16" else torch.float32
        runners = {name: TorchRunner(torch, model.to(device=device, dtype=dtype), cuda) for name, model in models.items()}
        inputs = {name: torch.zeros(1, 3, height, width, device=device, dtype=dtype) for name in models}
        rows.append(timed_row("torch-cuda" if cuda else "torch-cpu", precision, runners, inputs, args.iterations, args.warmup))
    if cuda:
        ort_rows, why = onnxruntime_rows(torch, models, width, height, out, args.iterations, args.warmup)
        rows += ort_rows
        if why:
            skipped.append(f"ONNX Runtime CUDA: {why}")
    env = environment(torch, cuda)
    if env.get("tensorrt") is None:
        skipped.append("TensorRT: not installed here")
    result = {"kind": "gpu_check", "size": [width, height], "iterations": args.iterations, "warmup": args.warmup,
              "environment": env, "rows": rows, "skipped": skipped, "paper": PAPER,
              "seconds": round(time.perf_counter() - start, 1), "created": time.strftime("%Y-%m-%d %H:%M:%S")}
    from runtime.atomic import atomic_write_json, atomic_write_text

    atomic_write_json(out / "gpu_check.json", result)
    text = markdown(result)
    atomic_write_text(out / "gpu_check.md", text)
    print(text)
    print(f"written: {out / 'gpu_check.json'}, {out / 'gpu_check.md'} ({result['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
