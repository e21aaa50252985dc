"""The GPU backends this machine has, on which the paper stage also times its pair.

ONNX Runtime's CPU provider is always timed (the lead table of ``SUMMARY.md``); where a CUDA GPU
is present the same two architectures are also timed, each backend in one interleaved run of
its own (same warm-up, same rounds), on:

- ``onnxruntime-cuda``: ONNX Runtime's CUDA provider (the ``gpu`` extra: onnxruntime-gpu), where a
  real session starts on it (listed is not enough),
- ``torch-cuda-fp32`` / ``torch-cuda-fp16``: the torch.export programs (FP16: the FP32 program cast),
- ``tensorrt-fp32`` / ``tensorrt-fp16``: engines built from the FP32 and FP16 ONNX (TensorRT 10/11
  with cuda-python). No INT8 engines for the pair: its weights are untrained (one step), so an
  INT8 calibration of them means nothing; the trained student's INT8 engine is timed by the
  ``evaluate`` stage.

Detection never imports torch in the pipeline's process: a GPU is looked for with
``nvidia-smi -L`` first, and only then is torch asked (in a child process) whether it sees one.
"""
from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class PaperBackend:
    tag: str  # file-name tag of its reports: bench.<tag>.<role>.json, latency.<tag>.md/.json
    artifact: str  # what each role runs: "onnx" (<role>.onnx), "pt2" (<role>.pt2), "fp32.engine", "fp16.engine"
    options: tuple[str, ...]  # runtime.benchmark options


ONNXRUNTIME_CUDA = PaperBackend("onnxruntime-cuda", "onnx", ("--device", "cuda"))
TORCH_CUDA = (PaperBackend("torch-cuda-fp32", "pt2", ("--backend", "torch", "--device", "cuda")),
              PaperBackend("torch-cuda-fp16", "pt2", ("--backend", "torch", "--device", "cuda", "--fp16")))
TENSORRT = tuple(PaperBackend(f"tensorrt-{p}", f"{p}.engine", ("--backend", "tensorrt", "--device", "cuda")) for p in ("fp32", "fp16"))


@functools.lru_cache(maxsize=1)
def nvidia_gpus() -> tuple[str, ...]:
    """The GPUs ``nvidia-smi -L`` lists (none without the tool or a driver)."""
    if shutil.which("nvidia-smi") is None:
        return ()
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return tuple(line.strip() for line in listed.stdout.splitlines() if line.startswith("GPU ")) if listed.returncode == 0 else ()


def torch_sees_cuda() -> bool:
    """Whether this Python's torch has CUDA and sees a GPU (asked in a child process: no torch here)."""
    try:
        probe = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.is_available())"], capture_output=True,
                               text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0 and probe.stdout.strip() == "True"


def onnxruntime_has_cuda() -> bool:
    """Whether ONNX Runtime's CUDA provider really starts here: a session is made and its active
    provider read (``runtime.backends.onnxruntime_backend.gpu_provider_problem``), in a child
    process so that this one holds no CUDA context. Being listed (``get_available_providers``) is
    not enough: onnxruntime-gpu lists CUDA without its libraries and falls back to the CPU (ONNX
    Runtime issues #13414, #21424)."""
    code = ("from runtime.backends.onnxruntime_backend import gpu_provider_problem\n"
            "problem = gpu_provider_problem('cuda')\nprint('ok' if problem is None else problem)")
    try:
        probe = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0 and probe.stdout.strip().splitlines()[-1:] == ["ok"]


@functools.lru_cache(maxsize=1)
def available() -> tuple[PaperBackend, ...]:
    """The GPU backends beside ONNX Runtime's CPU provider that run here (none on a CPU machine)."""
    if not nvidia_gpus():
        return ()
    from runtime.backends.tensorrt_backend import trt_available

    found: list[PaperBackend] = []
    if onnxruntime_has_cuda():
        found.append(ONNXRUNTIME_CUDA)
    if torch_sees_cuda():
        found += TORCH_CUDA
    if trt_available() is None:
        found += TENSORRT
    return tuple(found)
