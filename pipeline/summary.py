"""``reports/<dataset>/SUMMARY.md`` (for people) and ``summary.json`` (for machines) from the stages' reports.

Every number is read from a stage's own report file (training evaluation ``f1.json``, the
runtime's evaluation and benchmark JSONs, the latency comparison, the video reports), so the
summary can be checked against them. ``summary.json`` holds at least::

    dataset, synthetic, profile, duration_s {stage: s},
    models {name: {role, method, params, f1 {total, <category>...}}},
    precisions {student: {fp32|fp16|int8: {f1_total, change_vs_fp32 {points, low, high, images, resamples}, latency_p50_ms, backend}}},
    paper_pair {teacher, student: {arch, params, input_shape, model_p50_ms, model_p99_ms, frame_p50_ms, frame_p99_ms},
                ratio_model_p50, ratio_frame_p50, backend, device, paper,
                other_backends [{tag, backend, precision, device, teacher_p50_ms, student_p50_ms, ratio_p50, ...}]},
    latency {teacher.p50_ms, student.p50_ms, ratio_p50, backend, device},
    teacher_below_student (true|false|null), teacher_vs_student {teacher_f1, student_f1, split, below, source},
    extra_eval {<set>: {root, list, images, contact_sheet, models {<model>: {f1, change_vs_fp32, precision, recall, tp, fp, fn,
                                                                          drives {<drive>: {f1, images, tp, fp, fn}}}}}},
    benchmark, map {<model>: {mAP, ap {<class>: AP}, images}} (LLAMAS; else null)

The extra evaluation sets are those ``runs/<dataset>/pipeline_run.json`` records (``--extra-eval``).
"""
from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

from runtime.atomic import atomic_write_json, atomic_write_text
from runtime.cli import Parser
from runtime.latency import summarize
from runtime.paired import RESAMPLES, change_interval, format_change
from pipeline import paper_backends
from pipeline.stages import BENCHMARKS, MODELS, ROOT
from pipeline.summary_llamas import map_markdown, map_section

CHANGE_NOTE = ("vs FP32: the F1 change against the same model's FP32 artifact on the same images, in points, with its 95 % interval "
               f"({RESAMPLES:,} image-paired bootstrap resamples): an interval that holds 0 means these images cannot tell the two apart.")
PAPER = {"teacher_ms": 171.2, "student_ms": 10.2, "ratio": 16.8, "device": "GTX TITAN X (Maxwell)",
         "f1": {"ResNet-101 teacher": 72.8, "ERFNet alone": 70.2, "ERFNet-IntRA-KD": 72.4}}


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def f1_table(lists: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    return {name: c.get("f1") for name, c in lists.items()}


def trained_models(runs: Path, report_name: str = "f1.json") -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Each trained model with a test-split report (``training.evaluate``'s ``eval_test/<report_name>``):
    name -> (its common fields: role, method, arch, params, iteration, report path; the report)."""
    out = {}
    for name, (role, method) in MODELS.items():
        path = runs / name / "eval_test" / report_name
        report = read_json(path)
        if report is not None:
            out[name] = ({"role": role, "method": method, "arch": report.get("arch"), "params": report.get("params"),
                          "iteration": report.get("iteration"), "report": str(path)}, report)
    return out


def models_section(runs: Path) -> dict[str, Any]:
    return {name: {**fields, "f1": f1_table(report["f1"])} for name, (fields, report) in trained_models(runs).items()}


def evaluation_reports(folder: Path) -> dict[str, dict[str, Any]]:
    """Every readable evaluation report in ``folder`` by name (``student.int8``, ...), each read once,
    students first, then by precision (:func:`_model_order`)."""
    reports = {path.stem: read_json(path) for path in sorted(folder.glob("*.json"), key=lambda p: _model_order(p.stem))}
    return {name: r for name, r in reports.items() if r is not None}


def change_vs_fp32(name: str, reports: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """F1 change of report ``name`` against its model's FP32 report among ``reports`` (points, 95 %
    image-paired bootstrap interval); None for the FP32 report itself or without per-image counts."""
    model, _, variant = name.partition(".")
    if variant == "fp32":
        return None
    report, fp32 = reports.get(name), reports.get(f"{model}.fp32")
    if not report or not fp32 or not report.get("per_image") or not fp32.get("per_image"):
        return None
    try:
        return change_interval(report["per_image"], fp32["per_image"])
    except ValueError:  # no image in common (reports of different lists): no paired change to give
        return None


def bench_latency(reports: Path, name: str) -> dict[str, float]:
    """``latency_p50_ms`` and ``latency_mean_ms`` of a deployed model's benchmark (``bench/<name>.json``; {} without one)."""
    bench = read_json(reports / "bench" / f"{name}.json")
    if bench is None:
        return {}
    host = bench["summary"]["host"]
    return {"latency_p50_ms": host["p50"], "latency_mean_ms": host["mean"]}


def precisions_section(reports: Path) -> dict[str, Any]:
    out: dict[str, dict[str, Any]] = {}
    evaluations = evaluation_reports(reports / "eval")
    for name, evaluation in evaluations.items():  # e.g. student.int8, student.fp16.engine
        model, _, variant = name.partition(".")
        entry = {"f1_total": evaluation["lists"].get("total", {}).get("f1"), "change_vs_fp32": change_vs_fp32(name, evaluations),
                 "backend": evaluation.get("backend"), "device": evaluation.get("device"), "artifact": evaluation.get("model"),
                 **bench_latency(reports, name)}
        out.setdefault(model, {})[variant] = entry
    return out


def latency_section(reports: Path) -> dict[str, Any] | None:
    comparison = read_json(reports / "latency.json")
    if comparison is None:
        return None
    t, s = comparison["teacher"], comparison["student"]
    return {"teacher": {"p50_ms": t["p50"]}, "student": {"p50_ms": s["p50"]}, "ratio_p50": comparison["ratio_p50"],
            "backend": s.get("backend"), "device": s.get("device_name") or s.get("device"), "like_for_like": comparison.get("like_for_like"),
            "paper": {"teacher_ms": PAPER["teacher_ms"], "student_ms": PAPER["student_ms"], "ratio": PAPER["ratio"], "device": PAPER["device"]}}


def frame_latency(report: dict[str, Any] | None) -> dict[str, float] | None:
    """Model-only and whole-frame latency (ms, p50/p99) of a video report: ``infer_host`` alone, and
    per frame ``decode`` + ``total`` (decode, preprocessing, inference, lane decoding; drawing and
    encoding run in the writer thread)."""
    if report is None or report.get("kind") != "video" or not report.get("records"):
        return None
    model = summarize(r["infer_host"] for r in report["records"])
    frame = summarize(r.get("decode", 0.0) + r["total"] for r in report["records"])
    return {"model_p50_ms": model["p50"], "model_p99_ms": model["p99"], "frame_p50_ms": frame["p50"], "frame_p99_ms": frame["p99"],
            "frames": len(report["records"]), "video": report["meta"].get("video")}


def paper_section(reports: Path) -> dict[str, Any] | None:
    """The paper's pair at its input size (stage ``paper``): model-only latency from the interleaved
    benchmark, frame latency from the video loop, both ratios, beside the paper's row."""
    comparison = read_json(reports / "paper" / "latency.json")
    if comparison is None:
        return None
    out: dict[str, Any] = {"backend": comparison["student"].get("backend"),
                           "device": comparison["student"].get("device_name") or comparison["student"].get("device"),
                           "ratio_model_p50": comparison["ratio_p50"], "like_for_like": comparison.get("like_for_like"),
                           "paper": {"teacher_ms": PAPER["teacher_ms"], "student_ms": PAPER["student_ms"], "ratio": PAPER["ratio"],
                                     "device": PAPER["device"]}}
    for role in ("teacher", "student"):
        side = comparison[role]
        entry = {"arch": side.get("arch"), "params": side.get("params"), "input_shape": side.get("input_shape"),
                 "model_p50_ms": side["p50"], "model_p99_ms": side["p99"]}
        frames = frame_latency(read_json(reports / "paper" / f"video.{role}.json"))
        if frames:
            entry.update({f"loop_{k}" if k.startswith("model") else k: v for k, v in frames.items()})
        out[role] = entry
    t, s = out["teacher"], out["student"]
    out["ratio_frame_p50"] = t["frame_p50_ms"] / s["frame_p50_ms"] if "frame_p50_ms" in t and "frame_p50_ms" in s else None
    out["other_backends"] = other_backends(reports / "paper")
    return out


def other_backends(folder: Path, tags: list[str] | None = None) -> list[dict[str, Any]]:
    """The pair on each GPU backend the stage times here (``tags``, default: what this machine has,
    in that order; none on a CPU machine): its figures from ``latency.<tag>.json``, or the steps that
    failed (``failed.<tag or its prefix>.<step>.json``, written by :mod:`pipeline.best_effort`).
    Reports of backends this machine no longer has are left out."""
    tags = [b.tag for b in paper_backends.available()] if tags is None else tags
    records = {path.name.removeprefix("failed.").removesuffix(".json"): read_json(path) for path in folder.glob("failed.*.json")}
    rows = []
    for tag in tags:
        failed = [(name.rsplit(".", 1)[-1], r) for name, r in sorted(records.items()) if r and tag.startswith(name.rsplit(".", 1)[0])]
        comparison = read_json(folder / f"latency.{tag}.json")
        if failed or comparison is None or "teacher" not in comparison:
            rows.append({"tag": tag, "failed": [{"step": step, "returncode": r.get("returncode")} for step, r in failed] or
                         [{"step": "not run", "returncode": None}]})
            continue
        t, s = comparison["teacher"], comparison["student"]
        rows.append({"tag": tag, "backend": s.get("backend"), "precision": s.get("precision"), "device": s.get("device_name") or s.get("device"),
                     "teacher_p50_ms": t["p50"], "teacher_p99_ms": t["p99"], "student_p50_ms": s["p50"], "student_p99_ms": s["p99"],
                     "ratio_p50": comparison["ratio_p50"]})
    return rows


def video_section(reports: Path) -> dict[str, Any]:
    out = {}
    for path in sorted((reports / "video").glob("*.json")):
        r = read_json(path)
        if r is None or r.get("kind") != "video":
            continue
        out[path.stem] = {"frames": r["meta"].get("frames_processed"), "infer_p50_ms": r["summary"]["infer_host"]["p50"],
                          "loop_fps": r["summary"].get("loop_fps"), "f1": (r.get("accuracy") or {}).get("f1"),
                          "complete": r["meta"].get("complete"), "video": r["meta"].get("video"),
                          **{k: v for k, v in (frame_latency(r) or {}).items() if k.endswith("_ms")}}
    return out


METRICS = {"lanes": ("F1", "val/f1", "f1.json"), "markings": ("mIoU", "val/miou", "miou.json")}  # task -> name, scalar, test report


def validation_f1(run_dir: Path, key: str = "val/f1") -> float | None:
    """A training run's final validation score (the pipeline deploys ``last.pt``, validated last):
    ``train_summary.json``'s ``last_val``, else the last ``key`` row of ``scalars.csv`` (``val/f1``, or
    ``val/miou`` for markings)."""
    value = ((read_json(run_dir / "train_summary.json") or {}).get("last_val") or {}).get(key)
    if value is not None:
        return float(value)
    try:
        with open(run_dir / "scalars.csv", newline="", encoding="utf-8") as handle:
            rows = [row for row in csv.reader(handle) if len(row) == 3 and row[1] == key]
    except OSError:
        return None
    return float(rows[-1][2]) if rows else None


def f1_on_test_split(run_dir: Path, task: str = "lanes") -> float | None:
    """Test-split score of ``training.evaluate``: total F1 of ``eval_test/f1.json``, or mIoU of ``eval_test/miou.json``."""
    report = read_json(run_dir / "eval_test" / METRICS[task][2]) or {}
    if task == "markings":
        return report.get("miou")
    return (report.get("f1") or {}).get("total", {}).get("f1")


def teacher_vs_student(runs: Path, task: str = "lanes") -> dict[str, Any] | None:
    """Teacher vs student alone (``runs/teacher``, ``runs/student``): validation F1 (mIoU for markings)
    when both runs recorded it, else the test split's; None when the figures are missing. The keys
    say ``f1`` whatever the metric; ``metric`` names it."""
    name, key, report = METRICS[task]
    split, source = "validation", f"final validation {name} (train_summary.json / scalars.csv)"
    teacher, student = validation_f1(runs / "teacher", key), validation_f1(runs / "student", key)
    if teacher is None or student is None:
        split, source = "test", f"test-split {name} (eval_test/{report}): no validation figure recorded"
        teacher, student = f1_on_test_split(runs / "teacher", task), f1_on_test_split(runs / "student", task)
    if teacher is None or student is None:
        return None
    return {"teacher_f1": teacher, "student_f1": student, "split": split, "below": teacher < student, "source": source, "metric": name}


def teacher_warning(comparison: dict[str, Any] | None) -> str | None:
    """The one-line warning when the teacher scores below the student alone; None otherwise."""
    if not comparison or not comparison["below"]:
        return None
    metric = comparison.get("metric", "F1")
    return (f"WARNING: the teacher's {comparison['split']} {metric} ({100 * comparison['teacher_f1']:.1f} %) is below the student's "
            f"({100 * comparison['student_f1']:.1f} %, ERFNet alone): a weaker teacher has little to pass on, so any distillation "
            "gain is regularisation rather than transferred knowledge; train the teacher longer or larger.")


_PRECISION_ORDER = ("fp32", "fp16", "int8", "int8ort", "int8cpu")


def _model_order(name: str) -> tuple[Any, ...]:
    """student before teacher, ONNX before engines, then fp32, fp16, int8, int8ort, int8cpu."""
    role, _, variant = name.partition(".")
    precision, _, kind = variant.partition(".")
    rank = _PRECISION_ORDER.index(precision) if precision in _PRECISION_ORDER else len(_PRECISION_ORDER)
    return role != "student", kind, rank, name


def extra_eval_section(reports: Path, sets: list[dict[str, str]]) -> dict[str, Any]:
    """Per extra set: its root, list, image count, contact sheet and every model's total and per-drive counts."""
    out: dict[str, Any] = {}
    for entry in sets:
        folder = reports / "extra_eval" / entry["name"]
        models: dict[str, Any] = {}
        evaluations = evaluation_reports(folder)
        for name, report in evaluations.items():
            if "total" not in report.get("lists", {}):
                continue
            total = report["lists"]["total"]
            drives = (report.get("groups") or {}).get("drive", {})
            models[name] = {**{k: total.get(k) for k in ("f1", "precision", "recall", "tp", "fp", "fn", "images")},
                            "change_vs_fp32": change_vs_fp32(name, evaluations),
                            "drives": {d: {k: c.get(k) for k in ("f1", "images", "tp", "fp", "fn")} for d, c in drives.items()},
                            "report": str(folder / f"{name}.json")}
        sheet = folder / "contact_sheet.png"
        out[entry["name"]] = {"root": entry["root"], "list": entry["list"],
                              "images": next((m["images"] for m in models.values()), None),
                              "contact_sheet": str(sheet) if sheet.is_file() else None, "models": models}
    return out


def build(dataset: str, data_root: str, profile: str, synthetic: bool, base: Path, benchmark: str = "culane") -> dict[str, Any]:
    runs, reports = base / "runs" / dataset, base / "reports" / dataset
    state = read_json(runs / "pipeline_state.json") or {}
    run = read_json(runs / "pipeline_run.json") or {}
    comparison = teacher_vs_student(runs)
    return {
        "dataset": dataset, "data_root": data_root, "synthetic": synthetic, "profile": profile, "banner": run.get("banner"),
        "duration_s": {k: v.get("duration_s") for k, v in state.items() if k != "summary"},
        "stages": state,
        "models": models_section(runs),
        "precisions": precisions_section(reports),
        "paper_pair": paper_section(reports),
        "latency": latency_section(reports),
        "video": video_section(reports),
        "teacher_below_student": None if comparison is None else comparison["below"],
        "teacher_vs_student": comparison,
        "extra_eval": extra_eval_section(reports, run.get("extra_eval") or []),
        "data": data_section(Path(data_root) if benchmark == "culane" else Path(data_root).parent / f"{Path(data_root).name}-src")
        if synthetic else None,
        "subset": read_json(Path(data_root) / "subset.json"),
        "benchmark": benchmark,
        "map": map_section(reports),
    }


def data_section(root: Path) -> dict[str, Any] | None:
    """The synthetic generator's manifest: image counts and generation speed (ms per image per worker)."""
    manifest = read_json(root / "synthetic.json")
    if manifest is None:
        return None
    return {"counts": manifest.get("counts"), "seconds": manifest.get("seconds"), "workers": manifest.get("workers"),
            "ms_per_image_per_worker": manifest.get("ms_per_image_per_worker"), "generator_version": manifest.get("params", {}).get("version")}


def pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def markdown(s: dict[str, Any], reports: Path, runs: Path) -> str:
    lines = [f"# Pipeline summary: {s['dataset']}", ""]
    if s["synthetic"]:
        lines += [f"> **Synthetic data, profile `{s['profile']}`.** {s.get('banner') or ''} Accuracy and latency here describe this "
                  f"reduced run on this machine, not {'LLAMAS' if s.get('benchmark') == 'llamas' else 'CULane'} or the paper.", ""]
    subset = s.get("subset")
    if subset:
        drawn = subset["lists"]
        tests = [v for k, v in drawn.items() if k.startswith("test_split/")]
        lines += [f"> **Seeded subset of a real root, profile `{s['profile']}`** (seed {subset['seed']}, from {subset['source']}): "
                  f"{drawn['train_gt']['drawn']} of {drawn['train_gt']['of']} training images, {drawn['val_gt']['drawn']} of "
                  f"{drawn['val_gt']['of']} validation, {sum(t['drawn'] for t in tests)} of {sum(t['of'] for t in tests)} test images "
                  f"in {len(tests)} categories. Reduced scale: figures are not the paper's.", ""]
    lines += warning_lines(s)
    data = s.get("data")
    if data:
        counts = ", ".join(f"{k} {v}" for k, v in (data.get("counts") or {}).items())
        lines += [f"Synthetic data (generator v{data.get('generator_version')}): {counts} images in {data.get('seconds')} s, "
                  f"**{data.get('ms_per_image_per_worker')} ms per image** per worker ({data.get('workers')} workers).", ""]
    llamas = s.get("benchmark") == "llamas"
    lines += paper_markdown(s.get("paper_pair"), "960x288" if llamas else "976x208")
    lines += map_markdown(s.get("map"))
    lines += ["## Models (test split, CULane F1 %, through the runtime's decoding and metric)", ""]
    categories = sorted({c for m in s["models"].values() for c in m["f1"]}, key=lambda c: (c == "total", c))
    lines += ["| model | role | method | params (M) | " + " | ".join(categories) + " |",
              "|---|---|---|---:|" + "---:|" * len(categories)]
    for name, m in s["models"].items():
        lines.append(f"| {name} | {m['role']} | {m['method']} | {m['params'] / 1e6:.2f} | " + " | ".join(pct(m["f1"].get(c)) for c in categories) + " |")
    lines += [""]
    if "cross" in categories:
        lines.append("`cross` has no annotated lanes: F1 is undefined there (-); judge it by its false positives in the stage reports.")
    lines += ["LLAMAS' lanes scored by CULane's F1 (30 px wide lines, IoU 0.5) on the converted root: a second view, drawn on "
              "CULane's 1640x590 canvas (rows below 590 of the 717 are not scored); the paper reports mAP for LLAMAS (above).", ""] if llamas else [
              f"Paper (CULane, Table 3): {', '.join(f'{k} {v}' for k, v in PAPER['f1'].items())}.", ""]
    if s.get("extra_eval"):
        lines += extra_eval_markdown(s["extra_eval"], reports)
    lines += ["## Deployed student: precision vs accuracy and latency", "",
              "| artifact | F1 total % | vs FP32 (95 %) | p50 ms | backend | device |", "|---|---:|---:|---:|---|---|"]
    for model, variants in s["precisions"].items():
        for variant, e in variants.items():
            lines.append(f"| {model}.{variant} | {pct(e.get('f1_total'))} | {format_change(e.get('change_vs_fp32'))} | "
                         f"{ms(e.get('latency_p50_ms'))} | {e.get('backend')} | {e.get('device')} |")
    lines += ["", CHANGE_NOTE, "", "`int8` is the TensorRT artifact, made by NVIDIA ModelOpt (INT8 Q/DQ + FP16 elsewhere; its sidecar's `quantizer` "
              "says which tool made it); `int8ort` ONNX Runtime's TensorRT layout (symmetric Q/DQ, FP32 elsewhere); both run here by "
              "ONNX Runtime on the CPU. `int8cpu` is the layout ONNX Runtime's x86 int8 kernels run fast.", ""]
    lat = s.get("latency")
    if lat:
        lines += ["## Teacher vs student latency", "",
                  f"Teacher p50 {ms(lat['teacher']['p50_ms'])} ms, student p50 {ms(lat['student']['p50_ms'])} ms: "
                  f"**{lat['ratio_p50']:.1f}x** on {lat['backend']} ({lat['device']}). Paper: {PAPER['teacher_ms']} vs "
                  f"{PAPER['student_ms']} ms, {PAPER['ratio']}x on a {PAPER['device']}.", "",
                  "Details and distributions: [latency.md](latency.md)", "", "![latency](latency.png)", ""]
    if s["video"]:
        lines += ["## Video (trained models)", "",
                  "| run | frames | model p50 / p99 ms | frame p50 / p99 ms | loop FPS | F1 % |", "|---|---:|---:|---:|---:|---:|"]
        for name, v in s["video"].items():
            lines.append(f"| {name} | {v['frames']} | {ms(v.get('model_p50_ms'))} / {ms(v.get('model_p99_ms'))} | "
                         f"{ms(v.get('frame_p50_ms'))} / {ms(v.get('frame_p99_ms'))} | {ms(v['loop_fps'])} | {pct(v['f1'])} |")
        lines += ["", "Model: the backend call alone. Frame: decode + preprocessing + model + lane decoding of each frame "
                  "(drawing and encoding run in the writer thread).", ""]
        for tag in sorted({n.split(".")[0] for n in s["video"]}):
            t, st = s["video"].get(f"{tag}.teacher"), s["video"].get(f"{tag}.student")
            if t and st and t.get("frame_p50_ms") and st.get("frame_p50_ms"):
                lines.append(f"Teacher / student on `{tag}`: model {t['model_p50_ms'] / st['model_p50_ms']:.1f}x, "
                             f"frame {t['frame_p50_ms'] / st['frame_p50_ms']:.1f}x (p50).")
        lines.append("")
    lines += stages_markdown(s, reports, runs)
    return "\n".join(lines) + "\n"


def warning_lines(s: dict[str, Any]) -> list[str]:
    """The bold warning of a summary whose teacher scores below its student alone (none otherwise)."""
    warning = teacher_warning(s.get("teacher_vs_student"))
    if not warning:
        return []
    return [f"**Warning: {warning.removeprefix('WARNING: ')}** (figures: {s['teacher_vs_student']['source']})", ""]


def stages_markdown(s: dict[str, Any], reports: Path, runs: Path) -> list[str]:
    """The stages' table (status, seconds) and the training curves."""
    lines = ["## Stages", "", "| stage | status | seconds |", "|---|---|---:|"]
    for name, st in ((n, v) for n, v in s["stages"].items() if n != "summary"):  # this stage is still running
        status = st.get("status", "?") + (" (up to date)" if st.get("skipped_fresh") else "")
        if st.get("reason"):
            status += f": {st['reason']}"
        lines.append(f"| {name} | {status} | {st.get('duration_s') if st.get('duration_s') is not None else '-'} |")
    curves = [p for p in (runs / m / "curves.png" for m in MODELS) if p.is_file()]
    if curves:
        lines += ["", "## Training curves", ""] + [f"![{p.parent.name}]({os.path.relpath(p, reports)})" for p in curves]
    return lines


def paper_markdown(pair: dict[str, Any] | None, paper_size: str = "976x208") -> list[str]:
    """The paper's comparison, first in SUMMARY.md: its two architectures at its input size (``paper_size``:
    CULane's; ApolloScape's is 1692x505), model and frame latency."""
    if not pair:
        return []
    t, s = pair["teacher"], pair["student"]
    size = "x".join(str(v) for v in reversed((t.get("input_shape") or [0, 0, 0, 0])[2:]))
    def cell(side: dict[str, Any], key: str) -> str:
        return f"{ms(side.get(key + '_p50_ms'))} / {ms(side.get(key + '_p99_ms'))}"
    frame_ratio = f"**{pair['ratio_frame_p50']:.1f}x**" if pair.get("ratio_frame_p50") else "-"
    loop_ratio = f"{t['loop_model_p50_ms'] / s['loop_model_p50_ms']:.1f}x" if s.get("loop_model_p50_ms") and t.get("loop_model_p50_ms") else "-"
    paper = pair["paper"]
    lines = [f"## The paper's comparison: ResNet-101 + PSP vs ERFNet at {size}", "",
             f"Both architectures built at {size} and exported through the real export path; weights untrained (one step: latency "
             f"does not depend on them); timed interleaved on {pair['backend']} ({pair['device']}), same threads and warm-up; "
             "frame latency from the video loop.", "",
             "| model | params (M) | model p50 / p99 ms (interleaved benchmark) | video loop: model p50 ms | "
             "video loop: frame p50 / p99 ms |", "|---|---:|---:|---:|---:|",
             f"| teacher: ResNet-101 + PSP | {ms((t.get('params') or 0) / 1e6)} | {cell(t, 'model')} | {ms(t.get('loop_model_p50_ms'))} | "
             f"{cell(t, 'frame')} |",
             f"| student: ERFNet | {ms((s.get('params') or 0) / 1e6)} | {cell(s, 'model')} | {ms(s.get('loop_model_p50_ms'))} | "
             f"{cell(s, 'frame')} |",
             f"| **teacher / student (p50)** | | **{pair['ratio_model_p50']:.1f}x** | {loop_ratio} | {frame_ratio} |",
             f"| paper (CULane, 976x208): ResNet-101 / ERFNet, {paper['device']} | 52.53 / 2.49 | {paper['teacher_ms']} / {paper['student_ms']} (mean), "
             f"**{paper['ratio']}x** | | |", "",
             "Frame: decode + preprocessing (the frame to the network input) + model + decoding (lanes or class map), per frame of the clip "
             f"`{Path(str(t.get('video') or '-')).name}`.", ""]
    if size != paper_size:
        lines += [f"(This profile measures the pair at {size}, not the paper's {paper_size}.)", ""]
    lines += ["Details: [paper/latency.md](paper/latency.md).", ""]
    others = pair.get("other_backends") or []
    if others:
        lines += ["The same pair on this machine's GPU backends (one interleaved run each, model only):", "",
                  "| backend | precision | device | teacher p50 / p99 ms | student p50 / p99 ms | teacher / student (p50) |",
                  "|---|---|---|---:|---:|---:|"]
        for o in others:
            if o.get("failed"):
                steps = ", ".join(f"{f['step']}" + (f" (exit {f['returncode']})" if f["returncode"] is not None else "") for f in o["failed"])
                lines.append(f"| {o['tag']} | | | failed: {steps}; see the paper stage's log | | |")
            else:
                lines.append(f"| {o['tag']} | {o['precision']} | {o['device']} | {ms(o['teacher_p50_ms'])} / {ms(o['teacher_p99_ms'])} | "
                             f"{ms(o['student_p50_ms'])} / {ms(o['student_p99_ms'])} | **{o['ratio_p50']:.1f}x** |")
        done = [o for o in others if not o.get("failed")]
        lines += ["", "Details: " + (", ".join(f"[paper/latency.{o['tag']}.md](paper/latency.{o['tag']}.md)" for o in done) or "-") + ".", ""]
    return lines


def extra_eval_markdown(sets: dict[str, Any], reports: Path) -> list[str]:
    """The "Real frames (extra evaluation)" section: per set, one row per model (F1, P, R, F1 per drive) and the contact sheet."""
    lines = ["## Real frames (extra evaluation)", "",
             "Measurement only: no model was trained or tuned on these frames (nor was any setting chosen by them). "
             "Frames of one drive are strongly correlated: treat differences of a few points as noise.", ""]
    for name, e in sets.items():
        lines += [f"### {name}: {e['images'] if e['images'] is not None else '?'} images (`{e['list']}`)", ""]
        if not e["models"]:
            lines += ["No reports yet (the evaluate stage makes them).", ""]
            continue
        drives = sorted({d for m in e["models"].values() for d in m["drives"]})
        counts = {d: next(m["drives"][d]["images"] for m in e["models"].values() if d in m["drives"]) for d in drives}
        lines += ["| model | F1 % | vs FP32 (95 %) | P % | R % | " + " | ".join(f"{d} F1 % ({counts[d]} img)" for d in drives) + " |",
                  "|---|---:|---:|---:|---:|" + "---:|" * len(drives)]
        for model, m in e["models"].items():
            per_drive = [pct(m["drives"].get(d, {}).get("f1")) for d in drives]
            lines.append(f"| {model} | {pct(m['f1'])} | {format_change(m.get('change_vs_fp32'))} | {pct(m['precision'])} | "
                         f"{pct(m['recall'])} | " + " | ".join(per_drive) + " |")
        lines += ["", CHANGE_NOTE, ""]
        if e.get("contact_sheet"):
            lines += [f"![{name}: student vs teacher]({quote(os.path.relpath(e['contact_sheet'], reports))})", "",
                      "Contact sheet: frames spread over the drives (rows), student and teacher (columns, F1 on these frames "
                      "in the header); thin white: ground truth, thick: predicted lanes by CULane lane ID.", ""]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m pipeline.summary", description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--profile", required=True)
    parser.add_argument("--synthetic", action="store_true")
    parser.add_argument("--task", choices=tuple(METRICS), default="lanes", help="lanes (F1) or markings (mIoU)")
    parser.add_argument("--benchmark", choices=BENCHMARKS, default="culane", help="whose paper figures (llamas: also its mAP reports)")
    parser.add_argument("--base", default=str(ROOT))
    args = parser.parse_args(argv)
    base = Path(args.base)
    if not Path(args.data_root).is_dir():
        parser.exit(2, f"error: {args.data_root}: dataset root is not a directory\n")
    reports, runs = base / "reports" / args.dataset, base / "runs" / args.dataset
    if args.task == "markings":
        from pipeline import summary_markings

        summary = summary_markings.build(args.dataset, args.data_root, args.profile, args.synthetic, base)
        text = summary_markings.markdown(summary, reports, runs)
    else:
        summary = build(args.dataset, args.data_root, args.profile, args.synthetic, base, args.benchmark)
        text = markdown(summary, reports, runs)
    atomic_write_json(reports / "summary.json", summary)
    atomic_write_text(reports / "SUMMARY.md", text)
    print(f"{reports / 'SUMMARY.md'} and summary.json written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
