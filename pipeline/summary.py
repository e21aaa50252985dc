"""``reports/<dataset>/SUMMARY.md`` (for people) and ``summary.json`` (for machines) from the stages' reports.

Every number is read from a stage's own report file (training evaluation ``f1.json``, the
runtime's evaluation and benchmark JSONs, the latency comparison, the video reports), so the
summary can be checked against them. ``summary.json`` holds at least::

    dataset, synthetic, profile, duration_s {stage: s},
    models {name: {role, method, params, f1 {total, <category>...}}},
    precisions {student: {fp32|fp16|int8: {f1_total, latency_p50_ms, backend}}},
    latency {teacher.p50_ms, student.p50_ms, ratio_p50, backend, device}
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from runtime.atomic import atomic_write_json, atomic_write_text
from pipeline.stages import MODELS, ROOT

PAPER = {"teacher_ms": 171.2, "student_ms": 10.2, "ratio": 16.8, "device": "GTX TITAN X (Maxwell)",
         "f1": {"ResNet-101 teacher": 72.8, "ERFNet alone": 70.2, "ERFNet-IntRA-KD": 72.4}}


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def f1_table(lists: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    return {name: c.get("f1") for name, c in lists.items()}


def models_section(runs: Path) -> dict[str, Any]:
    out = {}
    for name, (role, method) in MODELS.items():
        report = read_json(runs / name / "eval_test" / "f1.json")
        if report is None:
            continue
        out[name] = {"role": role, "method": method, "arch": report.get("arch"), "params": report.get("params"),
                     "iteration": report.get("iteration"), "f1": f1_table(report["f1"]), "report": str(runs / name / "eval_test" / "f1.json")}
    return out


def precisions_section(reports: Path) -> dict[str, Any]:
    out: dict[str, dict[str, Any]] = {}
    for path in sorted((reports / "eval").glob("*.json")):
        name = path.stem  # e.g. student.int8, student.fp16.engine
        model, _, variant = name.partition(".")
        evaluation, bench = read_json(path), read_json(reports / "bench" / path.name)
        if evaluation is None:
            continue
        entry = {"f1_total": evaluation["lists"].get("total", {}).get("f1"), "backend": evaluation.get("backend"),
                 "device": evaluation.get("device"), "artifact": evaluation.get("model")}
        if bench is not None:
            entry["latency_p50_ms"] = bench["summary"]["host"]["p50"]
            entry["latency_mean_ms"] = bench["summary"]["host"]["mean"]
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


def video_section(reports: Path) -> dict[str, Any]:
    out = {}
    for path in sorted((reports / "video").glob("*.json")):
        r = read_json(path)
        if r is None or r.get("kind") != "video":
            continue
        out[path.stem] = {"frames": r["meta"].get("frames_processed"), "infer_p50_ms": r["summary"]["infer_host"]["p50"],
                          "loop_fps": r["summary"].get("loop_fps"), "f1": (r.get("accuracy") or {}).get("f1"),
                          "complete": r["meta"].get("complete"), "video": r["meta"].get("video")}
    return out


def build(dataset: str, data_root: str, profile: str, synthetic: bool, base: Path) -> dict[str, Any]:
    runs, reports = base / "runs" / dataset, base / "reports" / dataset
    state = read_json(runs / "pipeline_state.json") or {}
    run = read_json(runs / "pipeline_run.json") or {}
    return {
        "dataset": dataset, "data_root": data_root, "synthetic": synthetic, "profile": profile, "banner": run.get("banner"),
        "duration_s": {k: v.get("duration_s") for k, v in state.items() if k != "summary"},
        "stages": state,
        "models": models_section(runs),
        "precisions": precisions_section(reports),
        "latency": latency_section(reports),
        "video": video_section(reports),
    }


def pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def markdown(s: dict[str, Any], reports: Path, runs: Path) -> str:
    lines = [f"# Pipeline summary: {s['dataset']}", ""]
    if s["synthetic"]:
        lines += [f"> **Synthetic data, profile `{s['profile']}`.** {s.get('banner') or ''} Accuracy and latency here describe this "
                  "reduced run on this machine, not CULane or the paper.", ""]
    lines += ["## Models (test split, CULane F1 %, through the runtime's decoding and metric)", ""]
    categories = sorted({c for m in s["models"].values() for c in m["f1"]}, key=lambda c: (c == "total", c))
    lines += ["| model | role | method | params (M) | " + " | ".join(categories) + " |",
              "|---|---|---|---:|" + "---:|" * len(categories)]
    for name, m in s["models"].items():
        lines.append(f"| {name} | {m['role']} | {m['method']} | {m['params'] / 1e6:.2f} | " + " | ".join(pct(m["f1"].get(c)) for c in categories) + " |")
    lines += ["", "`cross` has no annotated lanes: F1 is undefined there (-); judge it by its false positives in the stage reports.",
              f"Paper (CULane, Table 3): {', '.join(f'{k} {v}' for k, v in PAPER['f1'].items())}.", ""]
    lines += ["## Deployed student: precision vs accuracy and latency", "",
              "| artifact | F1 total % | p50 ms | backend | device |", "|---|---:|---:|---|---|"]
    for model, variants in s["precisions"].items():
        for variant, e in variants.items():
            lines.append(f"| {model}.{variant} | {pct(e.get('f1_total'))} | {ms(e.get('latency_p50_ms'))} | {e.get('backend')} | {e.get('device')} |")
    lines += ["", "`int8` is the TensorRT layout (symmetric Q/DQ, run here by ONNX Runtime on the CPU); `int8cpu` the layout "
              "ONNX Runtime's x86 int8 kernels run fast.", ""]
    lat = s.get("latency")
    if lat:
        lines += ["## Teacher vs student latency", "",
                  f"Teacher p50 {ms(lat['teacher']['p50_ms'])} ms, student p50 {ms(lat['student']['p50_ms'])} ms: "
                  f"**{lat['ratio_p50']:.1f}x** on {lat['backend']} ({lat['device']}). Paper: {PAPER['teacher_ms']} vs "
                  f"{PAPER['student_ms']} ms, {PAPER['ratio']}x on a {PAPER['device']}.", "",
                  "Details and distributions: [latency.md](latency.md)", "", "![latency](latency.png)", ""]
    if s["video"]:
        lines += ["## Video", "", "| run | frames | infer p50 ms | loop FPS | F1 % |", "|---|---:|---:|---:|---:|"]
        for name, v in s["video"].items():
            lines.append(f"| {name} | {v['frames']} | {ms(v['infer_p50_ms'])} | {ms(v['loop_fps'])} | {pct(v['f1'])} |")
        lines.append("")
    lines += ["## Stages", "", "| stage | status | seconds |", "|---|---|---:|"]
    for name, st in s["stages"].items():
        status = st.get("status", "?") + (" (up to date)" if st.get("skipped_fresh") else "")
        if st.get("reason"):
            status += f": {st['reason']}"
        lines.append(f"| {name} | {status} | {st.get('duration_s') if st.get('duration_s') is not None else '-'} |")
    curves = [p for p in (runs / m / "curves.png" for m in MODELS) if p.is_file()]
    if curves:
        lines += ["", "## Training curves", ""] + [f"![{p.parent.name}]({os.path.relpath(p, reports)})" for p in curves]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.summary", description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--profile", required=True)
    parser.add_argument("--synthetic", action="store_true")
    parser.add_argument("--base", default=str(ROOT))
    args = parser.parse_args(argv)
    base = Path(args.base)
    summary = build(args.dataset, args.data_root, args.profile, args.synthetic, base)
    reports = base / "reports" / args.dataset
    atomic_write_json(reports / "summary.json", summary)
    atomic_write_text(reports / "SUMMARY.md", markdown(summary, reports, base / "runs" / args.dataset))
    print(f"{reports / 'SUMMARY.md'} and summary.json written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
