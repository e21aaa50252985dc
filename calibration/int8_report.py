"""The INT8 accuracy report: FP32 vs INT8 under ONNX Runtime (CPU) on a held-back set, written
beside the INT8 model (``M.int8.onnx.report.md`` + ``.json``).

The held-back set (default: the test-split categories) is checked disjoint from the calibration
images. The report gives F1 per category (and the total's image-paired change with its bootstrap
interval), the share of images whose decoded lanes are identical (and agree within
:data:`AGREE_PX`), and per-output error statistics (:class:`ErrorStats`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from runtime.artifacts import read_sidecar
from runtime.atomic import atomic_write_json, atomic_write_text
from runtime.backends import load_backend
from runtime.culane import Sample, read_list
from runtime.decode import lanes_agree
from runtime.errors import DataError
from runtime.paired import change_interval, format_change
from runtime.scoring import count_models, counts_by_image, distinct, read_lists, resolve_lists, tally

AGREE_PX = 10.0  # px at the source resolution (1640 wide): a third of the metric's 30 px lane width


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
