"""One-shot GPU check: the paper's teacher (ResNet-101 + PSP) vs student (ERFNet) at 976x208 on this GPU.

    python benchmarks/gpu_check.py [--out reports/gpu_check] [--iterations 300] [--warmup 50]

Needs only what a bare NVIDIA machine here has: CUDA PyTorch (and, where installed, ONNX Runtime's
CUDA provider). Builds both architectures with untrained weights (latency does not depend on
them), then times them interleaved (``runtime.latency.time_interleaved``: each round one untimed
and one timed call of each model, the order alternating), batch 1, in FP32 and FP16
(``model.half()``, FP16 input): host latency (``perf_counter`` around the forward pass and a
synchronize, ms) and GPU time (CUDA events around the forward pass, ms), p50 and p99, and the
teacher/student ratio. With ONNX Runtime's CUDA provider present the FP32 pair is also exported to
ONNX and timed there, only when the session really runs on that provider (a listed provider whose
libraries are missing falls back to the CPU; such timings are never labelled ``onnxruntime-cuda``).
TensorRT engines are built by ``python -m export.to_tensorrt`` (not here: a build takes minutes).

Every row records the settings that make it comparable (``settings``: the provider that really ran,
precision, TF32, cuDNN autotuning): set explicitly, TF32 off (FP32 is FP32, as in the FP32 TensorRT
engines, ``runtime.backends.torch_backend.cuda_settings``; ONNX Runtime's CUDA provider with
``use_tf32=0``) and cuDNN autotuning on (``cudnn.benchmark``; ONNX Runtime's exhaustive cuDNN
search). A step that cannot run (an export, a provider, a broken TensorRT install) is a
``skipped: reason`` line, never a crash.

Prints one Markdown table and writes ``gpu_check.json`` and ``gpu_check.md`` under ``--out``
(atomically), with the GPU name, driver, CUDA/cuDNN/torch versions. Where no CUDA GPU is visible
it exits with status 2 and one line. ``--device cpu`` runs the same path on the CPU, only to test
this script without a GPU (FP32 only; those figures are not what it is for). The CUDA path has run
nowhere yet: no GPU was lent to this project.
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
              warmup: int, settings: dict[str, Any]) -> dict[str, Any]:
    """Teacher and student timed interleaved (the runtime's benchmark loop), summarized, with ratios
    and the ``settings`` they ran with."""
    from runtime.latency import summarize_records, time_interleaved

    names = list(runners)
    records = time_interleaved([runners[n] for n in names], [inputs[n] for n in names], iterations, warmup)
    out: dict[str, Any] = {"backend": backend, "precision": precision, "settings": dict(settings)}
    out.update({name: summarize_records(r) for name, r in zip(names, records)})
    out["ratio_host_p50"] = out["teacher"]["host"]["p50"] / out["student"]["host"]["p50"]
    if "compute" in out["teacher"]:
        out["ratio_gpu_p50"] = out["teacher"]["compute"]["p50"] / out["student"]["compute"]["p50"]
    return out


def torch_row(torch: Any, models: dict[str, Any], precision: str, cuda: bool, width: int, height: int, iterations: int,
              warmup: int) -> dict[str, Any]:
    """The pair in eager PyTorch at ``precision``, TF32 off and cuDNN autotuning on (set explicitly)."""
    from runtime.backends.torch_backend import cuda_settings

    device = torch.device("cuda" if cuda else "cpu")
    settings: dict[str, Any] = {"provider": f"torch ({device.type})", "precision": precision, "tf32": None, "cudnn_benchmark": None}
    if cuda:
        settings.update(cuda_settings(torch, tf32=False, cudnn_benchmark=True))
    dtype = torch.float16 if precision == "fp16" else torch.float32
    runners = {name: TorchRunner(torch, model.to(device=device, dtype=dtype), cuda) for name, model in models.items()}
    inputs = {name: torch.zeros(1, 3, height, width, device=device, dtype=dtype) for name in models}
    return timed_row("torch-cuda" if cuda else "torch-cpu", precision, runners, inputs, iterations, warmup, settings)


def onnxruntime_rows(torch: Any, models: dict[str, Any], width: int, height: int, out: Path, iterations: int,
                     warmup: int) -> tuple[list[dict[str, Any]], str | None]:
    """The FP32 pair through ONNX Runtime's CUDA provider; (rows, why skipped). A row only when
    each session's *active* provider is CUDA (``session.get_providers()``): onnxruntime-gpu lists
    the provider even where CUDA/cuDNN are missing and then runs on the CPU (ONNX Runtime issues
    #13414, #21424)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return [], "onnxruntime not installed"
    from runtime.backends.onnxruntime_backend import CUDA, preload_cuda_libraries, provider_options

    if CUDA not in ort.get_available_providers():
        return [], f"ONNX Runtime {ort.__version__} has no CUDAExecutionProvider (the CPU build; onnxruntime-gpu has it)"
    import numpy as np

    preload_cuda_libraries(ort)
    runners, feeds, settings = {}, {}, {}
    for name, model in models.items():
        path = out / f"{name}.onnx"
        try:
            torch.onnx.export(model.float().cpu(), (torch.zeros(1, 3, height, width),), str(path), input_names=["image"], opset_version=17,
                              dynamo=False)
        except Exception as err:  # noqa: BLE001 - exporter versions differ; the torch rows stand on their own
            return [], f"ONNX export failed ({err.__class__.__name__}: {str(err).splitlines()[0][:120]})"
        try:
            session = ort.InferenceSession(str(path), providers=provider_options("cuda", "fp32", None))
        except Exception as err:  # noqa: BLE001 - onnxruntime raises its own types
            return [], f"ONNX Runtime cannot make a CUDA session ({err.__class__.__name__}: {str(err).splitlines()[0][:160]})"
        active = session.get_providers()
        if active[0] != CUDA:
            return [], (f"ONNX Runtime could not start CUDAExecutionProvider here (running on {active[0]}): "
                        "check CUDA and cuDNN (onnxruntime.preload_dlls() found none); CPU timings are not a CUDA row")
        options = session.get_provider_options().get(CUDA, {})
        settings = {"provider": active[0], "precision": "fp32", "tf32": options.get("use_tf32") not in ("0", 0),
                    "cudnn_benchmark": options.get("cudnn_conv_algo_search") == "EXHAUSTIVE",
                    "cudnn_conv_algo_search": options.get("cudnn_conv_algo_search")}
        runners[name] = SessionRunner(session)
        feeds[name] = {"image": np.zeros((1, 3, height, width), np.float32)}
    return [timed_row("onnxruntime-cuda", "fp32", runners, feeds, iterations, warmup, settings)], None


def tensorrt_version() -> tuple[str | None, str | None]:
    """(TensorRT's version, None) or (None, why not): not installed, or installed but not loadable
    (a wheel without libnvinfer raises OSError, others other errors) — never an exception."""
    try:
        import tensorrt
    except ImportError:
        return None, "not installed here"
    except Exception as err:  # noqa: BLE001 - OSError (libraries), RuntimeError, ...: a broken install
        return None, f"cannot load ({err.__class__.__name__}: {str(err).splitlines()[0][:160] if str(err) else ''})"
    return str(getattr(tensorrt, "__version__", "unknown")), None


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
    env["tensorrt"], env["tensorrt_problem"] = tensorrt_version()
    return env


def settings_text(settings: dict[str, Any]) -> str:
    """One cell: the provider that ran, TF32 and cuDNN autotuning (n/a off CUDA)."""
    flag = lambda v: "n/a" if v is None else ("on" if v else "off")  # noqa: E731
    return f"{settings.get('provider')}; TF32 {flag(settings.get('tf32'))}; cudnn.benchmark {flag(settings.get('cudnn_benchmark'))}"


def markdown(result: dict[str, Any]) -> str:
    env, (w, h) = result["environment"], result["size"]
    where = env["gpu"] or "CPU (script test only)"
    lines = [f"# GPU check: ResNet-101 + PSP vs ERFNet at {w}x{h}, batch 1", "",
             f"{where}; driver {env.get('driver')}, CUDA {env.get('cuda')}, cuDNN {env.get('cudnn')}, torch {env['torch']}, "
             f"TensorRT {env.get('tensorrt') or env.get('tensorrt_problem') or 'not installed'}; {result['iterations']} interleaved rounds after "
             f"{result['warmup']} warm-up; untrained weights (latency only); {result['created']}.", "",
             "| backend | precision | teacher host p50 / p99 ms | student host p50 / p99 ms | host ratio (p50) | "
             "teacher GPU p50 ms | student GPU p50 ms | GPU ratio (p50) | settings |", "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in result["rows"]:
        t, s = r["teacher"], r["student"]
        gpu = (f"{t['compute']['p50']:.3f} | {s['compute']['p50']:.3f} | {r['ratio_gpu_p50']:.1f}x" if "compute" in t else "- | - | -")
        lines.append(f"| {r['backend']} | {r['precision']} | {t['host']['p50']:.3f} / {t['host']['p99']:.3f} | "
                     f"{s['host']['p50']:.3f} / {s['host']['p99']:.3f} | **{r['ratio_host_p50']:.1f}x** | {gpu} | {settings_text(r['settings'])} |")
    lines.append(f"| paper | fp32 | {PAPER['teacher_ms']} (mean) | {PAPER['student_ms']} (mean) | {PAPER['ratio']}x | | | | {PAPER['device']} |")
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
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = environment(torch, cuda)  # before the timing: nothing after it can lose the figures
    rows, skipped = [], []
    if env["tensorrt_problem"]:
        skipped.append(f"TensorRT: {env['tensorrt_problem']}")
    else:
        skipped.append("TensorRT: engines are not built here (python -m export.to_tensorrt; a build takes minutes)")
    models = build_pair(width, height)
    for precision in ("fp32", "fp16") if cuda else ("fp32",):
        try:
            rows.append(torch_row(torch, models, precision, cuda, width, height, args.iterations, args.warmup))
        except Exception as err:  # noqa: BLE001 - e.g. out of memory: the other rows still count
            skipped.append(f"torch {precision}: {err.__class__.__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}")
    if cuda:
        try:
            ort_rows, why = onnxruntime_rows(torch, models, width, height, out, args.iterations, args.warmup)
        except Exception as err:  # noqa: BLE001 - a failing provider mid-run: recorded, never a mislabelled row
            ort_rows, why = [], f"{err.__class__.__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
        rows += ort_rows
        if why:
            skipped.append(f"ONNX Runtime CUDA: {why}")
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
