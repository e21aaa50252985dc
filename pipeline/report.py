"""What the pipeline's summaries share: reading the stages' reports and the Markdown both print.

Trained models (``training.evaluate``'s ``eval_test`` reports), the deployed artifacts' evaluation
reports and benchmarks, the teacher-vs-student latency comparison, the paper pair (stage ``paper``)
and the video reports; the teacher-vs-student check (also :mod:`pipeline.run`'s WARNING line); the
warning, paper-pair and stages sections of ``SUMMARY.md`` and its number formats. Used by
:mod:`pipeline.summary_lanes`, :mod:`pipeline.summary_markings` and :mod:`pipeline.run`.
"""
from __future__ import annotations

import csv
import json
import sys
import os
from pathlib import Path
from typing import Any

from pipeline import paper_backends
from pipeline.stages import MODELS
from runtime.errors import non_finite
from runtime.latency import summarize

PAPER = {"teacher_ms": 171.2, "student_ms": 10.2, "ratio": 16.8, "device": "GTX TITAN X (Maxwell)",
         "f1": {"ResNet-101 teacher": 72.8, "ERFNet alone": 70.2, "ERFNet-IntRA-KD": 72.4}}


def read_json(path: Path) -> dict[str, Any] | None:
    """A report, or None when it is missing or unreadable, or holds a number that is not one
    (NaN, inf: left out of the summary, said in one line naming the key)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    bad = non_finite(data)
    if bad:
        print(f"warning: {path}: {bad[0]}: {bad[1]} (not a finite number): left out of the summary", file=sys.stderr)
        return None
    return data


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


def evaluation_reports(folder: Path) -> dict[str, dict[str, Any]]:
    """Every readable evaluation report in ``folder`` by name (``student.int8``, ...), each read once,
    students first, then by precision (:func:`_model_order`)."""
    reports = {path.stem: read_json(path) for path in sorted(folder.glob("*.json"), key=lambda p: _model_order(p.stem))}
    return {name: r for name, r in reports.items() if r is not None}


def bench_latency(reports: Path, name: str) -> dict[str, float]:
    """``latency_p50_ms`` and ``latency_mean_ms`` of a deployed model's benchmark (``bench/<name>.json``; {} without one)."""
    bench = read_json(reports / "bench" / f"{name}.json")
    if bench is None:
        return {}
    host = bench["summary"]["host"]
    return {"latency_p50_ms": host["p50"], "latency_mean_ms": host["mean"]}


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


def pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


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
