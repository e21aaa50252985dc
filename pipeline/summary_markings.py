"""SUMMARY.md and summary.json of a marking pipeline run (ApolloScape classes, scored by mIoU).

Every number is read from a stage's own report: ``training.evaluate``'s ``eval_test/miou.json``
(PyTorch, network size), the runtime's evaluation reports ``reports/<ds>/eval/*.json`` (deployed
artifacts, the official rule at full label resolution), the benchmarks, the latency comparison, the
paper pair and the video reports (:mod:`pipeline.report` reads those). ``summary.json`` holds::

    dataset, synthetic, profile, task "markings", duration_s, stages,
    models {name: {role, method, params, miou, iou {class: IoU|None}}},
    deployed {artifact: {miou, iou, images, latency_p50_ms, backend, device}},
    paper_pair, latency, video, teacher_vs_student {teacher_f1, student_f1 (mIoU), metric "mIoU", ...}, data
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.report import (
    bench_latency, evaluation_reports, latency_section, ms, paper_markdown, paper_section, pct, read_json, stages_markdown, teacher_vs_student,
    trained_models, video_section, warning_lines,
)

PAPER_MIOU = {"ResNet-101 teacher": 46.6, "ERFNet alone": 40.4, "ERFNet-IntRA-KD": 43.2}  # ApolloScape-test, the paper's Table 2
PAPER_SIZE = "1692x505"


def models_section(runs: Path) -> dict[str, Any]:
    """Each trained model's test-split mIoU and IoU per evaluated class (``training.evaluate``)."""
    return {name: {**fields, "miou": report.get("miou"), "iou": report.get("iou") or {}}
            for name, (fields, report) in trained_models(runs, "miou.json").items()}


def deployed_section(reports: Path) -> dict[str, Any]:
    """Each deployed artifact's mIoU through the runtime, and its benchmark latency."""
    out: dict[str, Any] = {}
    for name, evaluation in evaluation_reports(reports / "eval").items():
        out[name] = {"miou": evaluation.get("miou"), "iou": evaluation.get("iou") or {}, "images": evaluation.get("images"),
                     "backend": evaluation.get("backend"), "device": evaluation.get("device"), **bench_latency(reports, name)}
    return out


def data_section(data_root: Path) -> dict[str, Any] | None:
    """The synthetic marking generator's manifest (beside the converted root): counts, speed, pixels per class."""
    manifest = read_json(data_root.parent / f"{data_root.name}-src" / "synthetic.json")
    if manifest is None:
        return None
    return {"counts": manifest.get("counts"), "seconds": manifest.get("seconds"), "workers": manifest.get("workers"),
            "ms_per_image_per_worker": manifest.get("ms_per_image_per_worker"),
            "generator_version": manifest.get("params", {}).get("version"), "pixels_per_class": manifest.get("pixels_per_class")}


def build(dataset: str, data_root: str, profile: str, synthetic: bool, base: Path) -> dict[str, Any]:
    runs, reports = base / "runs" / dataset, base / "reports" / dataset
    state = read_json(runs / "pipeline_state.json") or {}
    run = read_json(runs / "pipeline_run.json") or {}
    comparison = teacher_vs_student(runs, "markings")
    return {
        "dataset": dataset, "data_root": data_root, "synthetic": synthetic, "profile": profile, "task": "markings",
        "banner": run.get("banner"), "duration_s": {k: v.get("duration_s") for k, v in state.items() if k != "summary"},
        "stages": state, "models": models_section(runs), "deployed": deployed_section(reports),
        "paper_pair": paper_section(reports), "latency": latency_section(reports), "video": video_section(reports),
        "teacher_below_student": None if comparison is None else comparison["below"], "teacher_vs_student": comparison,
        "data": data_section(Path(data_root)) if synthetic else None,
    }


def markdown(s: dict[str, Any], reports: Path, runs: Path) -> str:
    lines = [f"# Pipeline summary: {s['dataset']} (road markings, 36 ApolloScape classes)", ""]
    if s["synthetic"]:
        lines += [f"> **Synthetic data, profile `{s['profile']}`.** {s.get('banner') or ''} Accuracy and latency here describe this "
                  "reduced run on this machine, not ApolloScape or the paper.", ""]
    lines += warning_lines(s)
    data = s.get("data")
    if data:
        counts = ", ".join(f"{k} {v}" for k, v in (data.get("counts") or {}).items())
        classes = len((data.get("pixels_per_class") or {}).get("train") or {}) - 1
        lines += [f"Synthetic marking set (generator v{data.get('generator_version')}): {counts} images in {data.get('seconds')} s "
                  f"({data.get('ms_per_image_per_worker')} ms per image per worker); {classes} marking classes in its training split.", ""]
    lines += paper_markdown(s.get("paper_pair"), PAPER_SIZE)
    models = s["models"]
    lines += ["## Models (test split, mIoU %, official rule over the evaluated classes present; PyTorch at the network size)", ""]
    classes = sorted({c for m in models.values() for c, v in m["iou"].items() if v is not None})
    lines += ["| model | role | method | params (M) | mIoU | " + " | ".join(classes) + " |",
              "|---|---|---|---:|---:|" + "---:|" * len(classes)]
    for name, m in models.items():
        lines.append(f"| {name} | {m['role']} | {m['method']} | {(m['params'] or 0) / 1e6:.2f} | **{pct(m['miou'])}** | "
                     + " | ".join(pct(m["iou"].get(c)) for c in classes) + " |")
    lines += ["", f"Paper (ApolloScape-test, Table 2): {', '.join(f'{k} {v}' for k, v in PAPER_MIOU.items())}.", ""]
    lines += ["## Deployed models (runtime: ONNX Runtime, mIoU at full label resolution)", "",
              "| artifact | mIoU % | images | p50 ms | backend | device |", "|---|---:|---:|---:|---|---|"]
    for name, e in s["deployed"].items():
        lines.append(f"| {name} | {pct(e.get('miou'))} | {e.get('images', '-')} | {ms(e.get('latency_p50_ms'))} | "
                     f"{e.get('backend')} | {e.get('device')} |")
    lines.append("")
    lat = s.get("latency")
    if lat:
        lines += ["## Teacher vs student latency (trained models, the run's input size)", "",
                  f"Teacher p50 {ms(lat['teacher']['p50_ms'])} ms, student p50 {ms(lat['student']['p50_ms'])} ms: "
                  f"**{lat['ratio_p50']:.1f}x** on {lat['backend']} ({lat['device']}). Details: [latency.md](latency.md)", ""]
    if s["video"]:
        lines += ["## Video (trained models)", "", "| run | frames | model p50 / p99 ms | frame p50 / p99 ms | loop FPS |",
                  "|---|---:|---:|---:|---:|"]
        for name, v in s["video"].items():
            lines.append(f"| {name} | {v['frames']} | {ms(v.get('model_p50_ms'))} / {ms(v.get('model_p99_ms'))} | "
                         f"{ms(v.get('frame_p50_ms'))} / {ms(v.get('frame_p99_ms'))} | {ms(v['loop_fps'])} |")
        lines.append("")
    lines += stages_markdown(s, reports, runs)
    return "\n".join(lines) + "\n"
