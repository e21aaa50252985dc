"""INT8 post-training quantization by explicit Q/DQ, calibrated on real images, with a report.

    python -m calibration.calibrate --onnx M.onnx --data-root ROOT --list list/train_gt.txt --num-images 512
        --method entropy|minmax|percentile --target trt|cpu --out M.int8.onnx [--report-images N]

Calibration images are drawn (seeded) from ``--list`` and go through the runtime's preprocessing
as the sidecar defines it, exactly as deployed. Activation statistics are collected once, as
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

The report (``M.int8.onnx.report.md`` + ``.json``) compares FP32 and INT8 under ONNX Runtime on a
held-back set (default: the test-split categories; checked disjoint from the calibration
images): F1 per category, the share of images whose decoded lanes are identical, and per-output
error statistics.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np

from runtime.artifacts import Sidecar, library_versions, read_sidecar, sha256_file
from runtime.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from runtime.backends import load_backend
from runtime.cli import Parser, check_output_file, fail, positive_int, with_sidecars
from runtime.culane import CulaneDataset, Sample, read_list
from runtime.decode import lanes_agree
from runtime.errors import DataError
from runtime.evaluate import check_files_exist, count_models, distinct, counts_by_image, read_lists, resolve_lists, tally
from runtime.paired import change_interval, format_change


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


def accuracy_report(fp32: Path, int8: Path, data_root: str | Path, calibration: list[Sample], report_lists: list[str] | None,
                    report_images: int | None, progress: bool = False) -> dict[str, Any]:
    """FP32 vs INT8 under ONNX Runtime CPU on a held-back set: F1 per list, output errors."""
    lists = resolve_lists(data_root, report_lists or [])
    held = {s.image for path in lists.values() for s in read_list(path).samples[:report_images]}
    overlap = held & {s.image for s in calibration}
    if overlap:
        raise DataError(next(iter(lists.values())), f"{len(overlap)} report images are calibration images; report on held-back images")
    errors = ErrorStats()
    agree = {"identical": 0, "close": 0, "images": 0}

    def compare(_sample: Sample, results: list) -> None:  # one image, both models, as it passes
        (lanes_a, out_a), (lanes_b, out_b) = results
        errors.add(out_a, out_b)
        agree["images"] += 1
        agree["identical"] += lanes_agree(lanes_a, lanes_b)
        agree["close"] += lanes_agree(lanes_a, lanes_b, AGREE_PX)

    backends = [load_backend(path, "onnxruntime", "cpu") for path in (fp32, int8)]
    per_list = read_lists(lists, report_images)
    counts_fp32, counts_int8 = count_models(backends, data_root, distinct(per_list), progress=progress, on_image=compare)
    results = {"fp32": tally(per_list, counts_fp32), "int8": tally(per_list, counts_int8)}
    identical, close = agree["identical"] / max(agree["images"], 1), agree["close"] / max(agree["images"], 1)
    report = {
        "fp32": str(fp32),
        "int8": str(int8),
        "images": agree["images"],
        "f1": {name: {k: v.to_dict() for k, v in res.items()} for name, res in results.items()},
        "total_change": change_interval(counts_by_image(counts_int8), counts_by_image(counts_fp32)),
        "output_errors": errors.summary(),
        "lanes_identical_fraction": identical,
        "lanes_agree_fraction": close,
        "lanes_agree_px": AGREE_PX,
    }
    atomic_write_json(Path(f"{int8}.report.json"), report)
    atomic_write_text(Path(f"{int8}.report.md"), report_markdown(report, read_sidecar(int8).extra.get("calibration", {})))
    return report


class ErrorStats:
    """Running |a - b| statistics per output kind (max, mean, p99) without keeping the outputs:
    p99 from a 10,000-bin histogram over [0, 1] (probability outputs; larger errors fall in the top bin)."""

    BINS = 10_000

    def __init__(self) -> None:
        self.max: dict[str, float] = {}
        self.sum: dict[str, float] = {}
        self.count: dict[str, int] = {}
        self.hist: dict[str, np.ndarray] = {}

    def add(self, a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
        for kind in a:
            diff = np.abs(a[kind].astype(np.float64) - b[kind]).ravel()
            self.max[kind] = max(self.max.get(kind, 0.0), float(diff.max(initial=0.0)))
            self.sum[kind] = self.sum.get(kind, 0.0) + float(diff.sum())
            self.count[kind] = self.count.get(kind, 0) + diff.size
            bins = np.minimum((diff * self.BINS).astype(np.int64), self.BINS - 1)
            self.hist[kind] = self.hist.get(kind, np.zeros(self.BINS, np.int64)) + np.bincount(bins, minlength=self.BINS)

    def summary(self) -> dict[str, dict[str, float]]:
        out = {}
        for kind, hist in self.hist.items():
            p99_bin = int(np.searchsorted(np.cumsum(hist), 0.99 * self.count[kind]))
            out[kind] = {"max_abs": self.max[kind], "mean_abs": self.sum[kind] / max(self.count[kind], 1),
                         "p99_abs": min((p99_bin + 1) / self.BINS, self.max[kind])}
        return out


AGREE_PX = 10.0  # px at the source resolution (1640 wide): a third of the metric's 30 px lane width


def report_markdown(report: dict[str, Any], calib: dict[str, Any]) -> str:
    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.2f}"

    lines = [f"# INT8 calibration report: {Path(report['int8']).name}", "",
             f"Calibration: {calib.get('method')} ranges, target `{calib.get('target')}`, {calib.get('images')} images of "
             f"`{calib.get('list')}` (seed {calib.get('seed')}). Evaluated with ONNX Runtime (CPU) on {report['images']} held-back images.", "",
             "| list | FP32 F1 | INT8 F1 | change | FP32 FP | INT8 FP |", "|---|---:|---:|---:|---:|---:|"]
    for name in report["f1"]["fp32"]:
        a, b = report["f1"]["fp32"][name], report["f1"]["int8"][name]
        change = "-" if a["f1"] is None or b["f1"] is None else f"{100 * (b['f1'] - a['f1']):+.2f}"
        lines.append(f"| {name} | {pct(a['f1'])} | {pct(b['f1'])} | {change} | {a['fp']} | {b['fp']} |")
    change = report.get("total_change")
    if change:
        lines += ["", f"Total change INT8 - FP32: **{format_change(change)}** points (95 % interval: {change['resamples']:,} image-paired "
                  f"bootstrap resamples of the {change['images']} images). An interval that holds 0 means these images cannot tell the "
                  "two apart; one that holds -0.5 means they cannot show a drop below half a point either."]
    lines += ["", f"Decoded lanes: the same lanes within {report['lanes_agree_px']:g} px on {100 * report['lanes_agree_fraction']:.1f} % "
              f"of the images (identical to the pixel on {100 * report['lanes_identical_fraction']:.1f} %).", "",
              "| output | max abs error | mean abs error | p99 abs error |", "|---|---:|---:|---:|"]
    for kind, e in report["output_errors"].items():
        lines.append(f"| {kind} | {e['max_abs']:.4f} | {e['mean_abs']:.5f} | {e['p99_abs']:.4f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m calibration.calibrate", description=__doc__.split("\n")[0])
    add_arguments(parser, default_images=512)
    parser.add_argument("--method", choices=METHODS, default="entropy")
    parser.add_argument("--target", choices=TARGETS, default="trt")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        check_outputs(args.out, args.onnx)
        result = calibrate(args.onnx, args.data_root, args.list, args.num_images, args.method, args.target, args.out, args.seed,
                           args.report_list, args.report_images, progress=sys.stderr.isatty())
    except (DataError, OSError) as err:
        return fail(err)
    r = result["report"]["f1"]
    c = result["calibration"]
    print(f"{result['out']}: {c['method']}/{c['target']} from {c['images']} images ({'cached ranges' if c['cache_hit'] else 'collected'}), "
          f"{c['seconds']} s; total F1 FP32 {100 * (r['fp32']['total']['f1'] or 0):.2f} -> INT8 {100 * (r['int8']['total']['f1'] or 0):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
