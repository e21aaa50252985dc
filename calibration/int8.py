"""INT8 post-training quantization by explicit Q/DQ with ONNX Runtime's static quantizer, calibrated
on real images; and what every INT8 maker (this one, :mod:`export.modelopt_int8`) shares: the
seeded calibration draw, the FP32 model and file checks, the command options, and writing the INT8
model's sidecar with its accuracy report (:mod:`calibration.int8_report`).

Calibration images are drawn (seeded) from a list and go through the runtime's preprocessing as
the sidecar defines it, exactly as deployed. Activation statistics are collected once, as
per-tensor histograms with exact minima and maxima, and cached beside the model
(``M.onnx.calib-<hash>.npz``, keyed by model, list, images and preprocessing): every method
(min/max: the recorded extremes; entropy and percentile: from the histograms) and every target is
then produced from the cache without running the images again.

Targets (ONNX Runtime's quantizer, ``QDQQuantizer``):

- ``trt``: signed int8 activations and weights, symmetric (all zero points 0), per-channel
  weights, biases left in float, Q/DQ on the *inputs* of Conv, ConvTranspose, MatMul, Gemm, Add,
  MaxPool and Concat only (NVIDIA's recommended placement: outputs of weighted layers stay
  unquantized, so the logits reaching Softmax and Sigmoid are never int8). TensorRT 10 and 11 build this graph
  strongly typed, without calibrators or the INT8 builder flag;
- ``cpu``: unsigned int8 activations (asymmetric), signed per-channel int8 weights, every op ONNX
  Runtime quantizes except those its x86 kernels run slower in int8 (:data:`CPU_FLOAT_OPS`:
  MaxPool, an unfolded BatchNormalization): the layout its int8 kernels run fast.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np

from calibration.int8_report import accuracy_report
from runtime.artifacts import Sidecar, library_versions, read_sidecar, sha256_file
from runtime.atomic import atomic_write_bytes
from runtime.cli import Parser, check_output_file, positive_int, with_sidecars
from runtime.culane import CulaneDataset, Sample
from runtime.errors import DataError
from runtime.scoring import check_files_exist, distinct, read_lists, resolve_lists


METHODS = ("entropy", "minmax", "percentile")
TARGETS = ("trt", "cpu")
TRT_OPS = ["Conv", "ConvTranspose", "MatMul", "Gemm", "Add", "MaxPool", "Concat"]
CPU_FLOAT_OPS = {"BatchNormalization", "MaxPool"}
"""Ops the ``cpu`` target leaves in float: an unfolded BatchNormalization (after the downsampler's
Concat), and MaxPool, whose uint8 kernel in ONNX Runtime is ~16x slower than the float one
(0.66 vs 0.04 ms per ERFNet call at 320x64): in float the whole INT8 model runs 1.84x -> 2.02x
FP32 with one thread, 1.42x -> 1.61x with two (320x64; 976x208: 1.86x -> 2.01x, 1.56x -> 1.68x;
interleaved, AMD EPYC with AVX-512 VNNI, 2026-12-02). Excluding Add, Concat or Softmax too gained nothing."""
NUM_BINS = 2048


def calibration_samples(data_root: str | os.PathLike[str], list_name: str, count: int, seed: int = 0) -> list[Sample]:
    """``count`` samples of a list, drawn without replacement with ``seed`` (all if fewer)."""
    data = CulaneDataset(data_root)
    listing = data.read_list(list_name)
    if not listing.samples:
        raise DataError(listing.path, "calibration list is empty")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(listing.samples))[: min(count, len(listing.samples))]
    return [listing.samples[i] for i in sorted(order)]


class ImageReader:
    """ONNX Runtime ``CalibrationDataReader`` over preprocessed images, one per call."""

    def __init__(self, data_root: str | os.PathLike[str], samples: list[Sample], pre, input_name: str) -> None:
        self.data = CulaneDataset(data_root)
        self.samples, self.pre, self.input_name = samples, pre, input_name
        self.position = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.position >= len(self.samples):
            return None
        sample = self.samples[self.position]
        self.position += 1
        return {self.input_name: self.pre(self.data.read_image(sample))}

    def __len__(self) -> int:
        return len(self.samples)


def prepare(onnx_path: Path, work: Path) -> Path:
    """ONNX Runtime's quantization pre-processing (shape inference, BatchNorm folding, ...).

    ONNX's own shape inference only: ONNX Runtime's symbolic pass (meant for shapes that depend on
    the input, which ours do not, the batch aside) has no rule for opset-18+ ReduceMax (axes as an
    input, as the exported channel softmax has) and fails; on the other graphs both give the same nodes."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out = work / "prepared.onnx"
    try:
        quant_pre_process(str(onnx_path), str(out), skip_symbolic_shape=True)
    except Exception as err:  # the pre-processing raises various types for malformed graphs
        raise DataError(onnx_path, f"cannot prepare the model for quantization ({err.__class__.__name__}: {str(err).splitlines()[0][:160]})") from None
    return out


def cache_key(model_sha: str, samples: list[Sample], sidecar_pre: dict[str, Any]) -> str:
    h = hashlib.sha256()
    h.update(model_sha.encode())
    h.update(json.dumps(sidecar_pre, sort_keys=True).encode())
    for s in samples:
        h.update(s.image.encode())
    h.update(str(NUM_BINS).encode())
    return h.hexdigest()[:16]


def collect_histograms(prepared: Path, reader: ImageReader, work: Path, chunk: int = 4, progress: bool = False) -> dict[str, tuple]:
    """Per-tensor (hist, edges, min, max, threshold) of every activation over the calibration
    images (ONNX Runtime's histogram collector: symmetric bins over +-threshold)."""
    from onnxruntime.quantization.calibrate import CalibrationMethod, create_calibrator

    calibrator = create_calibrator(prepared, None, augmented_model_path=str(work / "augmented.onnx"),
                                   calibrate_method=CalibrationMethod.Entropy,
                                   extra_options={"num_bins": NUM_BINS, "symmetric": False})
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(reader), desc="calibration", unit="img")
    while reader.position < len(reader):
        stop = min(len(reader), reader.position + chunk)
        chunk_reader = _Slice(reader, stop)
        with redirect_stdout(open(os.devnull, "w")):  # ORT prints per call
            calibrator.collect_data(chunk_reader)
        if bar:
            bar.update(chunk_reader.taken)
    if bar:
        bar.close()
    return dict(calibrator.collector.histogram_dict)


class _Slice:
    def __init__(self, reader: ImageReader, stop: int) -> None:
        self.reader, self.stop, self.taken = reader, stop, 0

    def get_next(self):
        if self.reader.position >= self.stop:
            return None
        self.taken += 1
        return self.reader.get_next()


def save_cache(path: Path, histograms: dict[str, tuple], meta: dict[str, Any]) -> None:
    arrays: dict[str, np.ndarray] = {}
    names = sorted(histograms)
    for i, name in enumerate(names):
        hist, edges, lo, hi, threshold = histograms[name]
        arrays[f"h{i}"], arrays[f"e{i}"] = np.asarray(hist), np.asarray(edges)
        arrays[f"r{i}"] = np.array([lo, hi, threshold], dtype=np.float32)
    arrays["meta"] = np.frombuffer(json.dumps({**meta, "tensors": names}).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def load_cache(path: Path) -> tuple[dict[str, tuple], dict[str, Any]]:
    with np.load(path) as data:
        meta = json.loads(bytes(data["meta"]).decode())
        histograms = {}
        for i, name in enumerate(meta["tensors"]):
            r = data[f"r{i}"]
            histograms[name] = (data[f"h{i}"], data[f"e{i}"].astype(np.float32), np.float32(r[0]), np.float32(r[1]), np.float32(r[2]))
    return histograms, meta


def compute_ranges(histograms: dict[str, tuple], method: str, percentile: float = 99.999):
    """ONNX Runtime ``TensorsData`` for a method, from the cached histograms."""
    from onnxruntime.quantization.calibrate import CalibrationMethod, HistogramCollector, TensorsData

    if method == "minmax":
        return TensorsData(CalibrationMethod.MinMax, {k: (np.float32(v[2]), np.float32(v[3])) for k, v in histograms.items()})
    collector = HistogramCollector(method=method, symmetric=False, num_bins=NUM_BINS, num_quantized_bins=128, percentile=percentile, scenario="same")
    collector.histogram_dict = dict(histograms)
    with redirect_stdout(open(os.devnull, "w")):
        thresholds = collector.compute_collection_result()
    kind = CalibrationMethod.Entropy if method == "entropy" else CalibrationMethod.Percentile
    return TensorsData(kind, {k: (np.float32(v[0]), np.float32(v[1]), v[2], v[3]) for k, v in thresholds.items()})


def quantize(prepared: Path, ranges, target: str, out: Path) -> None:
    from onnxruntime.quantization.qdq_quantizer import QDQQuantizer
    from onnxruntime.quantization.quant_utils import QuantType, load_model_with_shape_infer

    model = load_model_with_shape_infer(prepared)
    if target == "trt":
        quantizer = QDQQuantizer(model, True, False, QuantType.QInt8, QuantType.QInt8, ranges, [], [], TRT_OPS,
                                 {"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False,
                                  "ForceQuantizeNoInputCheck": False, "OpTypesToExcludeOutputQuantization": TRT_OPS})
    else:
        from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

        ops = sorted((set(QLinearOpsRegistry) | set(QDQRegistry)) - CPU_FLOAT_OPS)
        quantizer = QDQQuantizer(model, True, False, QuantType.QInt8, QuantType.QUInt8, ranges, [], [], ops,
                                 {"ActivationSymmetric": False, "WeightSymmetric": True})
    quantizer.quantize_model()
    quantizer.model.save_model_to_file(str(out), False)


def fp32_model(onnx_path: Path) -> Sidecar:
    """The sidecar of the FP32 ONNX model to quantize; :class:`DataError` if missing or not FP32 ONNX."""
    if not onnx_path.is_file():
        raise DataError(onnx_path, "ONNX model not found")
    sidecar = read_sidecar(onnx_path)
    if sidecar.format != "onnx" or sidecar.precision != "fp32":
        raise DataError(onnx_path, f"quantize an FP32 ONNX model (this one is {sidecar.format}/{sidecar.precision})")
    if not sidecar.table.existence:
        raise DataError(onnx_path, f"a {sidecar.table.task} model ({sidecar.table.name!r} classes): the INT8 accuracy report "
                                   "scores decoded lanes; deploy marking models as FP32 or FP16 (python -m export.to_fp16)")
    return sidecar


def check_images(data_root: str | Path, calibration: list[Sample] | None, report_lists: list[str] | None,
                 report_images: int | None) -> None:
    """Before any work: report lists not empty, every report image and annotation and every
    calibration image (None: not needed, e.g. cached ranges) present."""
    held_out = distinct(read_lists(resolve_lists(data_root, report_lists or []), report_images))
    for sample_set, lanes in ((held_out, True), (calibration or [], False)):
        missing = check_files_exist(data_root, sample_set, lanes)
        if missing:
            raise missing[0][1]


def write_int8(onnx_path: Path, sidecar: Sidecar, out: Path, model_sha: str, versions: dict[str, str], data_root: str | Path,
               calibrated_on: list[Sample], report_lists: list[str] | None, report_images: int | None, progress: bool,
               **extra: Any) -> dict[str, Any]:
    """The INT8 model's sidecar (derived from the FP32 one, ``extra`` fields added), then the
    accuracy report, whose totals go into the sidecar too; returns the report."""
    derived = sidecar.derived(precision="int8", **extra)
    derived.source = {**sidecar.source, "parent": str(onnx_path), "parent_sha256": model_sha}
    derived.versions = {**sidecar.versions, **versions}
    derived.extra.pop("parity", None)
    derived.write(out)
    report = accuracy_report(onnx_path, out, data_root, calibrated_on, report_lists, report_images, progress)
    derived.extra["report"] = {"total_f1_fp32": report["f1"]["fp32"]["total"]["f1"], "total_f1_int8": report["f1"]["int8"]["total"]["f1"]}
    derived.write(out)
    return report


def add_arguments(parser: Parser, default_images: int) -> None:
    """The options every INT8 maker shares: model, data, calibration draw, output, report."""
    parser.add_argument("--onnx", required=True, help="FP32 ONNX model (with its sidecar)")
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--list", default="train_gt.txt", help="calibration list (default: train_gt.txt)")
    parser.add_argument("--num-images", type=positive_int, default=default_images)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--report-list", action="append", default=[], help="held-back list(s) for the report (default: test_split)")
    parser.add_argument("--report-images", type=positive_int, help="first N images of each report list")


def check_outputs(out: str, onnx: str) -> None:
    """The INT8 model and its sidecar writable, neither one the FP32 model's files."""
    check_output_file(out, "INT8 model", with_sidecars(onnx))
    check_output_file(f"{out}.json", "INT8 model's sidecar", with_sidecars(onnx))


def calibrate(onnx_path: str | Path, data_root: str | Path, list_name: str, num_images: int, method: str, target: str,
              out: str | Path, seed: int = 0, report_lists: list[str] | None = None, report_images: int | None = None,
              progress: bool = False) -> dict[str, Any]:
    """Quantize ``onnx_path`` with ``method`` ranges for ``target`` to ``out`` (+ sidecar + accuracy
    report); returns {"out", "calibration", "report"}. Ranges come from the histogram cache when it
    holds this model, draw and preprocessing; else the images are run and the cache written."""
    start = time.perf_counter()
    onnx_path, out = Path(onnx_path), Path(out)
    if method not in METHODS or target not in TARGETS:
        raise DataError(out, f"method must be one of {METHODS} and target one of {TARGETS}")
    sidecar = fp32_model(onnx_path)
    pre = sidecar.pre
    samples = calibration_samples(data_root, list_name, num_images, seed)
    model_sha = sha256_file(onnx_path)
    key = cache_key(model_sha, samples, sidecar.preprocess)
    cache = Path(f"{onnx_path}.calib-{key}.npz")
    check_images(data_root, None if cache.is_file() else samples, report_lists, report_images)  # cached ranges need no images
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".calib-", dir=out.parent) as tmp:
        work = Path(tmp)
        prepared = prepare(onnx_path, work)
        cached = cache.is_file()
        if cached:
            histograms, _ = load_cache(cache)
        else:
            reader = ImageReader(data_root, samples, pre, sidecar.input["name"])
            histograms = collect_histograms(prepared, reader, work, progress=progress)
            save_cache(cache, histograms, {"model_sha256": model_sha, "list": list_name, "images": len(samples), "seed": seed,
                                           "data_root": str(data_root)})
        ranges = compute_ranges(histograms, method)
        quantized = work / "quantized.onnx"
        quantize(prepared, ranges, target, quantized)
        shutil.move(str(quantized), out)
    calib = {"method": method, "target": target, "list": list_name, "images": len(samples), "seed": seed, "cache": str(cache),
             "cache_hit": cached, "seconds": round(time.perf_counter() - start, 1)}
    report = write_int8(onnx_path, sidecar, out, model_sha, library_versions("onnxruntime"), data_root, samples, report_lists,
                        report_images, progress, calibration=calib)
    return {"out": str(out), "calibration": calib, "report": report}
