"""ONNX Runtime backend (CPU; CUDA and TensorRT execution providers when onnxruntime-gpu is installed)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from runtime.artifacts import Sidecar
from runtime.backends.base import check_graph_shapes, cpu_name, run_checked
from runtime.errors import DataError


def _gpu_name() -> str:
    """The CUDA GPU's name through cuda-python where installed (onnxruntime itself does not say)."""
    try:
        from runtime.backends.cuda_util import gpu_properties
    except ImportError:
        return "CUDA GPU"
    try:
        return gpu_properties()["name"]
    except Exception:  # no driver query possible: the provider still runs
        return "CUDA GPU"


PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def __init__(self, path: str | os.PathLike[str], sidecar: Sidecar, device: str = "cpu", threads: int | None = None) -> None:
        import onnxruntime as ort

        if device not in PROVIDERS:
            raise DataError(path, f"unknown device {device!r} for ONNX Runtime; choose from {sorted(PROVIDERS)}")
        missing = [p for p in PROVIDERS[device][:1] if p not in ort.get_available_providers()]
        if missing:
            raise DataError(path, f"ONNX Runtime here lacks {missing[0]}; install the onnxruntime-gpu extra for device {device!r}")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        if threads:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=PROVIDERS[device])
        except Exception as err:  # onnxruntime raises its own exception types for bad files
            raise DataError(path, f"ONNX Runtime cannot load the model ({str(err).splitlines()[0][:200]})") from None
        active = self.session.get_providers()
        if device != "cpu" and active[0] != PROVIDERS[device][0]:  # listed but not loadable (no GPU, no cuDNN): ORT falls back quietly
            raise DataError(path, f"ONNX Runtime could not start {PROVIDERS[device][0]} here (running on {active[0]}): "
                                  "check the GPU, CUDA and cuDNN libraries")
        self.sidecar = sidecar
        self.device = device
        self.device_name = cpu_name() if device == "cpu" else _gpu_name()
        self.last_device_times: dict[str, float] = {}
        self.path = Path(path)
        self.input_name = self.session.get_inputs()[0].name
        names = {o.name for o in self.session.get_outputs()}
        self.outputs = [(o["name"], o["kind"]) for o in sidecar.outputs if o["name"] in names]
        if len(self.outputs) != len(sidecar.outputs) or self.input_name != sidecar.input["name"]:
            raise DataError(path, "model and sidecar disagree on input/output names: re-export, or use the sidecar made with this model")
        check_graph_shapes(self.path, sidecar, self.session.get_inputs()[0].shape,
                           {o.name: o.shape for o in self.session.get_outputs()})
        self.names = [n for n, _ in self.outputs]
        self.binding = None
        if device != "cpu":
            self.binding = self.session.io_binding()
            for name in self.names:
                self.binding.bind_output(name, "cuda")

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """(N, 3, h, w) float32 -> {kind: array}; a fixed-batch model runs image by image."""
        return run_checked(self.path, self.sidecar, batch, self._run, [kind for _, kind in self.outputs])

    def _run(self, batch: np.ndarray) -> list[np.ndarray]:
        """One session call. On a GPU provider, IO binding (made once): the input is copied to the
        device once and the outputs stay there until one copy back."""
        if self.binding is None:
            return self.session.run(self.names, {self.input_name: batch})
        self.binding.bind_cpu_input(self.input_name, batch)
        self.session.run_with_iobinding(self.binding)
        return self.binding.copy_outputs_to_cpu()
