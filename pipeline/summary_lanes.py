"""SUMMARY.md and summary.json of a lane pipeline run (CULane, LLAMAS: F1; LLAMAS also its official mAP).

Every number is read from a stage's own report file (training evaluation ``f1.json``, the
runtime's evaluation and benchmark JSONs, the latency comparison, the video reports), so the
summary can be checked against them (the readers both summaries share: :mod:`pipeline.report`).
``summary.json`` holds at least::

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

import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pipeline.report import (
    PAPER, bench_latency, evaluation_reports, latency_section, ms, paper_markdown, paper_section, pct, read_json, stages_markdown,
    teacher_vs_student, trained_models, video_section, warning_lines,
)
from pipeline.summary_llamas import map_markdown, map_section
from runtime.camera_shift import shift_table
from runtime.paired import RESAMPLES, change_interval, format_change
from runtime.scoring import drive_of_path

CHANGE_NOTE = ("vs FP32: the F1 change against the same model's FP32 artifact on the same images, in points, with its 95 % interval "
               f"({RESAMPLES:,} image-paired bootstrap resamples): an interval that holds 0 means these images cannot tell the two apart.")


def f1_table(lists: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    return {name: c.get("f1") for name, c in lists.items()}


def models_section(runs: Path) -> dict[str, Any]:
    return {name: {**fields, "f1": f1_table(report["f1"])} for name, (fields, report) in trained_models(runs).items()}


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
            empty = no_lane_frames(report.get("per_image") or {})
            models[name] = {**{k: total.get(k) for k in ("f1", "precision", "recall", "tp", "fp", "fn", "images")},
                            "change_vs_fp32": change_vs_fp32(name, evaluations),
                            "no_lanes": sum(empty.values()),
                            "drives": {d: {**{k: c.get(k) for k in ("f1", "images", "tp", "fp", "fn")}, "no_lanes": empty.get(d, 0)}
                                       for d, c in drives.items()},
                            "report": str(folder / f"{name}.json")}
        sheet = folder / "contact_sheet.png"
        out[entry["name"]] = {"root": entry["root"], "list": entry["list"],
                              "images": next((m["images"] for m in models.values()), None),
                              "contact_sheet": str(sheet) if sheet.is_file() else None, "models": models,
                              "camera_shift": read_json(folder / "camera_shift.json")}
    return out


def no_lane_frames(per_image: dict[str, list[int]]) -> dict[str, int]:
    """{drive (first folder of the image path): frames where the model found no lane at all (tp + fp = 0)}."""
    out: dict[str, int] = {}
    for image, (tp, fp, _) in per_image.items():
        if tp + fp == 0:
            drive = drive_of_path(image)
            out[drive] = out.get(drive, 0) + 1
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
        lines += ["| model | F1 % | vs FP32 (95 %) | P % | R % | no lane | " + " | ".join(f"{d} F1 % ({counts[d]} img)" for d in drives) + " |",
                  "|---|---:|---:|---:|---:|---:|" + "---:|" * len(drives)]
        for model, m in e["models"].items():
            per_drive = [pct(m["drives"].get(d, {}).get("f1")) for d in drives]
            lines.append(f"| {model} | {pct(m['f1'])} | {format_change(m.get('change_vs_fp32'))} | {pct(m['precision'])} | "
                         f"{pct(m['recall'])} | {m.get('no_lanes', '-')}/{m['images']} | " + " | ".join(per_drive) + " |")
        lines += ["", CHANGE_NOTE + " No lane: frames where the model found no lane at all, of the set's frames.", ""]
        if e.get("camera_shift"):
            lines += ["Camera shifts: the same frames and annotations re-projected as other mounts would see them "
                      "(`runtime/camera_shift.py`); in brackets the share of the unshifted F1 kept. A model of one camera "
                      "collapses here, a camera-agnostic one degrades gently.", "", shift_table(e["camera_shift"]), ""]
        if e.get("contact_sheet"):
            lines += [f"![{name}: student vs teacher]({quote(os.path.relpath(e['contact_sheet'], reports))})", "",
                      "Contact sheet: frames spread over the drives (rows), student and teacher (columns, F1 on these frames "
                      "in the header); thin white: ground truth, thick: predicted lanes by CULane lane ID.", ""]
    return lines
