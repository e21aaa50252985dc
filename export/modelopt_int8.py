"""INT8 for TensorRT through NVIDIA ModelOpt: INT8 Q/DQ on the quantizable layers, FP16 elsewhere.

    python -m export.modelopt_int8 --onnx M.onnx --data-root ROOT [--list train_gt.txt] [--num-images 64]
        [--method entropy|max] [--seed 0] --out M.int8.onnx [--report-list LIST ...] [--report-images N]

NVIDIA's own path to explicit quantization for TensorRT 10/11: ``modelopt.onnx.quantization.quantize``
(``quantize_mode="int8"``, ``high_precision_dtype="fp16"``, calibration on the CPU provider) inserts
INT8 Q/DQ where TensorRT fuses them and makes the rest FP16, so a strongly typed engine runs FP16
outside the INT8 layers (ONNX Runtime's quantizer leaves them FP32). Calibration images are drawn
exactly as ``calibration.calibrate`` draws them (seeded, from ``--list``) and go through the
runtime's preprocessing as the sidecar defines it. The graph keeps the FP32 model's input and
outputs (float32, same names and shapes), so ONNX Runtime's CPU provider runs it: the same
torch-free accuracy report as the CPU layout (``M.int8.onnx.report.md`` + ``.json``: F1 per
category FP32 vs INT8, lane agreement, output errors) is written beside it. The layers that
produce the outputs stay FP16 (``--quantize-output-layers`` to quantize them; why: :data:`OUTPUT_LAYERS_NOTE`).

ModelOpt imports torch, so this lives in ``export/`` (the ``export`` extra installs it, without
its ``onnxruntime-gpu`` dependency: the runtime's ONNX Runtime stays the only one). If ModelOpt is
missing or cannot quantize the graph, one line says so and ONNX Runtime's TensorRT layout
(``calibration.calibrate --target trt``) is written instead, recorded in the sidecar
(``quantizer.tool``); ``--no-fallback`` makes that an error (exit 2).
"""
from __future__ import annotations

import logging
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from calibration.int8 import add_arguments, calibrate, calibration_samples, check_images, check_outputs, fp32_model, write_int8
from runtime.artifacts import library_versions, read_sidecar, sha256_file
from runtime.atomic import atomic_write_bytes
from runtime.cli import Parser, fail
from runtime.culane import CulaneDataset
from runtime.errors import DataError
from runtime.resources import array_bytes, check_memory

METHODS = ("entropy", "max")
OUTPUT_LAYERS_NOTE = (
    "The layers that produce the outputs (lane maps, existence) stay FP16 by default: the usual practice for the last "
    "layer, and on the smoke run's synthetic validation list (100 images, 64 calibration images, entropy) INT8 F1 "
    "moved from +0.00 to +0.66 points against FP32 with them kept (within that list's noise); --quantize-output-layers "
    "quantizes them too.")
log = logging.getLogger("export.modelopt_int8")


class ModelOptUnavailable(RuntimeError):
    """ModelOpt is not installed, or failed on this graph."""


def calibration_array(data_root: str | Path, samples: list, pre: Any) -> np.ndarray:
    """(N, 3, h, w) float32: the samples through the runtime's preprocessing."""
    data = CulaneDataset(data_root)
    return np.concatenate([pre(data.read_image(s)) for s in samples]).astype(np.float32)


# Ops between a weighted layer and a graph output, followed back through their first input; Div,
# Exp and Sub are the written-out channel softmax (Div(Exp(Sub(x, max)), sum): first inputs lead to x).
PASS_THROUGH = ("Softmax", "Sigmoid", "Reshape", "Identity", "Cast", "Flatten", "Div", "Exp", "Sub")


def output_layers(onnx_path: Path) -> list[str]:
    """Names of the weighted layers that produce the graph's outputs (through the softmax, Sigmoid,
    reshapes): ERFNet's last ConvTranspose (lane maps) and the existence head's last Gemm."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    producers = {name: node for node in model.graph.node for name in node.output}
    names = []
    for output in model.graph.output:
        node = producers.get(output.name)
        while node is not None and node.op_type in PASS_THROUGH:
            node = producers.get(node.input[0])
        if node is not None and node.name not in names:
            names.append(node.name)
    return names


def exact_names(names: list[str]) -> list[str]:
    """ModelOpt reads ``nodes_to_exclude`` as regular expressions matched at the start of each node
    name (``re.match``): ``node_conv2d`` would also exclude ``node_conv2d_1`` ... Each name escaped
    and anchored at its end excludes that node only (a new list: ModelOpt appends to it)."""
    return [re.escape(name) + "$" for name in names]


def modelopt_quantize(onnx_path: Path, calib: np.ndarray, method: str, out: Path, exclude: list[str] | None = None) -> str:
    """ModelOpt's INT8 (Q/DQ) + FP16 graph of ``onnx_path`` at ``out``, the ``exclude`` nodes left
    in FP16; returns ModelOpt's version."""
    try:
        import modelopt
        from modelopt.onnx.quantization import quantize
    except ImportError as err:
        raise ModelOptUnavailable(f"nvidia-modelopt is not installed ({err}); pip install -e '.[export]'") from None
    try:
        quantize(str(onnx_path), quantize_mode="int8", calibration_data=calib, calibration_method=method,
                 calibration_eps=["cpu"], high_precision_dtype="fp16", output_path=str(out), log_level="WARNING",
                 nodes_to_exclude=exact_names(exclude) if exclude else None)
    except Exception as err:  # noqa: BLE001 - ModelOpt raises many types on graphs it cannot handle
        raise ModelOptUnavailable(f"ModelOpt {modelopt.__version__} cannot quantize {onnx_path.name} "
                                  f"({err.__class__.__name__}: {str(err).splitlines()[0][:160] if str(err) else ''})") from None
    if not out.is_file():
        raise ModelOptUnavailable(f"ModelOpt {modelopt.__version__} wrote no model for {onnx_path.name}")
    return modelopt.__version__


def quantize_for_tensorrt(onnx_path: str | Path, data_root: str | Path, list_name: str, num_images: int, method: str,
                          out: str | Path, seed: int = 0, report_lists: list[str] | None = None, report_images: int | None = None,
                          fallback: bool = True, progress: bool = False, quantize_outputs: bool = False) -> dict[str, Any]:
    """Write ``out`` (+ sidecar + accuracy report); returns {"out", "quantizer", "report"}. The
    output layers stay FP16 unless ``quantize_outputs`` (see :data:`OUTPUT_LAYERS_NOTE`)."""
    start = time.perf_counter()
    onnx_path, out = Path(onnx_path), Path(out)
    if method not in METHODS:
        raise DataError(out, f"--method must be one of {', '.join(METHODS)}")
    sidecar = fp32_model(onnx_path)
    check_memory("--num-images", num_images, array_bytes(3, sidecar.pre.net_height, sidecar.pre.net_width),  # held at once
                 f"images at {sidecar.pre.net_width}x{sidecar.pre.net_height}", onnx_path)
    samples = calibration_samples(data_root, list_name, num_images, seed)
    check_images(data_root, samples, report_lists, report_images)  # every file there before any work
    try:
        with tempfile.TemporaryDirectory(prefix=".modelopt-") as tmp:
            quantized = Path(tmp) / "int8.onnx"
            excluded = [] if quantize_outputs else output_layers(onnx_path)
            version = modelopt_quantize(onnx_path, calibration_array(data_root, samples, sidecar.pre), method, quantized, excluded)
            atomic_write_bytes(out, quantized.read_bytes())
    except ModelOptUnavailable as err:
        if not fallback:
            raise DataError(onnx_path, str(err)) from None
        print(f"warning: {err}; writing ONNX Runtime's TensorRT layout instead (recorded in the sidecar)", file=sys.stderr)
        result = calibrate(onnx_path, data_root, list_name, num_images, "entropy" if method == "entropy" else "minmax", "trt", out,
                           seed, report_lists, report_images, progress)
        fallen = read_sidecar(out)
        fallen.extra["quantizer"] = {"tool": "onnxruntime", "fallback_from": "nvidia-modelopt", "why": str(err)}
        fallen.write(out)
        return {"out": str(out), "quantizer": fallen.extra["quantizer"], "report": result["report"]}
    quantizer = {"tool": "nvidia-modelopt", "version": version, "quantize_mode": "int8", "high_precision_dtype": "fp16",
                 "calibration_eps": ["cpu"], "fp16_output_layers": excluded, "seconds": round(time.perf_counter() - start, 1)}
    calib = {"method": method, "target": "trt (ModelOpt: INT8 Q/DQ + FP16)", "list": list_name, "images": len(samples), "seed": seed}
    report = write_int8(onnx_path, sidecar, out, sha256_file(onnx_path), library_versions("onnxruntime", "nvidia-modelopt", "torch"),
                        data_root, samples, report_lists, report_images, progress, calibration=calib, quantizer=quantizer)
    return {"out": str(out), "quantizer": quantizer, "report": report}


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m export.modelopt_int8", description=__doc__.split("\n")[0])
    add_arguments(parser, default_images=64)
    parser.add_argument("--method", choices=METHODS, default="entropy")
    parser.add_argument("--no-fallback", action="store_true", help="fail instead of writing ONNX Runtime's layout when ModelOpt cannot")
    parser.add_argument("--quantize-output-layers", action="store_true", help=OUTPUT_LAYERS_NOTE)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        check_outputs(args.out, args.onnx)
        result = quantize_for_tensorrt(args.onnx, args.data_root, args.list, args.num_images, args.method, args.out, args.seed,
                                       args.report_list, args.report_images, not args.no_fallback, progress=sys.stderr.isatty(),
                                       quantize_outputs=args.quantize_output_layers)
    except (DataError, OSError) as err:
        return fail(err)
    f1 = result["report"]["f1"]
    q = result["quantizer"]
    tool = f"{q['tool']} {q.get('version', '')}".strip() + (" (fallback)" if q.get("fallback_from") else "")
    print(f"{result['out']}: {tool}; total F1 FP32 {100 * (f1['fp32']['total']['f1'] or 0):.2f} -> INT8 "
          f"{100 * (f1['int8']['total']['f1'] or 0):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
