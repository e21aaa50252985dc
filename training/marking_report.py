"""The report of a distillation experiment on a marking dataset (``task: markings``; mIoU, not F1).

``distillation.md`` (mIoU per model, mean ± std over seeds, the IoU of each evaluated class, the
paired difference of each method to the student alone with its 95 % interval over seeds),
``distillation.csv`` and ``distillation.png``. Reports are ``training.evaluate``'s ``miou.json`` (the
official rule at the network size, pooled over the test images).

**Choice**: intervals are over seeds only; a per-image bootstrap as the lane report's would need
each image's confusion matrix, which the pooled report does not keep.
"""
from __future__ import annotations

import csv
import io
import statistics
from pathlib import Path
from typing import Any

from runtime.atomic import atomic_write_text
from runtime.paired import seed_interval
from training.experiment_report import LABELS, comparison_plot, mean_std, method_notes


def miou(report: dict[str, Any]) -> float:
    """A report's mIoU in %."""
    return 100 * float(report["miou"])


def model_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """(type, algorithm, per-seed reports) of the teacher and every method."""
    rows = []
    if results.get("teacher"):
        rows.append({"type": "T", "algorithm": f"{results['teacher'].get('model', 'teacher')} (teacher)", "reports": [results["teacher"]]})
    for name, by_seed in results["methods"].items():
        kind, label = LABELS.get(name, ("TSD", name))
        rows.append({"type": kind, "algorithm": label, "name": name, "reports": [by_seed[s] for s in sorted(by_seed)]})
    return rows


def class_means(reports: list[dict[str, Any]]) -> dict[str, float | None]:
    """Mean IoU (%) per evaluated class over the reports that score it (None where none does)."""
    names = sorted({c for r in reports for c in (r.get("iou") or {})})
    out: dict[str, float | None] = {}
    for c in names:
        values = [100 * r["iou"][c] for r in reports if r["iou"].get(c) is not None]
        out[c] = statistics.mean(values) if values else None
    return out


def paired(results: dict[str, Any], baseline: str = "baseline") -> list[dict[str, Any]]:
    """Each method against ``baseline`` on their common seeds (at least 2): mIoU difference, 95 % over seeds."""
    base = results["methods"].get(baseline, {})
    out = []
    for name, by_seed in results["methods"].items():
        seeds = sorted(set(by_seed) & set(base))
        if name == baseline or len(seeds) < 2:
            continue
        mean, low, high = seed_interval([miou(by_seed[s]) for s in seeds], [miou(base[s]) for s in seeds])
        out.append({"algorithm": LABELS.get(name, ("TSD", name))[1], "seeds": seeds, "diff": mean, "seed_ci": (low, high),
                    "per_seed": [round(miou(by_seed[s]) - miou(base[s]), 2) for s in seeds]})
    return out


def write_marking_report(results: dict[str, Any], report_dir: Path, title: str) -> list[str]:
    """Write the three files; returns one printable line per model."""
    rows = model_rows(results)
    classes = sorted({c for r in rows for c, v in class_means(r["reports"]).items() if v is not None})
    lines = [f"# {title}", "", "| Type | Algorithm | **mIoU %** | per seed | " + " | ".join(classes) + " | # Param (M) | seeds |",
             "|---|---|---:|---|" + "---:|" * len(classes) + "---:|---:|"]
    table, printed = [], []
    for r in rows:
        values = [miou(rep) for rep in r["reports"]]
        mean, std = mean_std(values)
        per_class = class_means(r["reports"])
        cell = f"{mean:.2f}" if len(values) == 1 else f"{mean:.2f} ± {std:.2f}"
        lines.append(f"| {r['type']} | {r['algorithm']} | **{cell}** | {' / '.join(f'{v:.1f}' for v in values)} | "
                     + " | ".join("-" if per_class.get(c) is None else f"{per_class[c]:.1f}" for c in classes)
                     + f" | {r['reports'][0]['params'] / 1e6:.2f} | {len(values)} |")
        table.append((r, mean, std, values, per_class))
        printed.append(f"{r['algorithm']:<28} mIoU {mean:6.2f} ± {std:.2f}  ({len(values)} seeds)")
    lines += ["", "mIoU in % on the test split (the official ApolloScape rule: one confusion matrix over the test images, "
              "IoU per evaluated class, classes absent from both prediction and ground truth left out), at the network size; "
              "mean ± sample std over seeds; class columns: mean IoU over seeds."]
    diffs = paired(results)
    if diffs:
        lines += ["", "## Paired difference to the student alone (mIoU, points)", "",
                  "| Algorithm | seeds | per-seed differences | mean | 95 % interval over seeds |", "|---|---:|---|---:|---:|"]
        for d in diffs:
            lines.append(f"| {d['algorithm']} | {len(d['seeds'])} | {' / '.join(f'{v:+.2f}' for v in d['per_seed'])} | {d['diff']:+.2f} | "
                         f"[{d['seed_ci'][0]:+.2f}, {d['seed_ci'][1]:+.2f}] |")
        lines += ["", "Seeds are paired (same seed: same student initialisation and data order); Student-t on the per-seed "
                  "differences. An interval that holds 0 cannot tell the method from the student alone."]
    notes = method_notes(list(results["methods"]))
    if notes:
        lines += ["", notes]
    atomic_write_text(report_dir / "distillation.md", "\n".join(lines) + "\n")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["type", "algorithm", "seeds", "miou_mean", "miou_std", "per_seed", *classes])
    for r, mean, std, values, per_class in table:
        writer.writerow([r["type"], r["algorithm"], len(values), f"{mean:.3f}", f"{std:.3f}", " ".join(f"{v:.2f}" for v in values),
                         *("" if per_class.get(c) is None else f"{per_class[c]:.2f}" for c in classes)])
    atomic_write_text(report_dir / "distillation.csv", buffer.getvalue())
    totals = [(r["type"], r["algorithm"], values) for r, _, _, values, _ in table]
    comparison_plot([("synthetic test", totals, diffs)], report_dir / "distillation.png", title, metric="mIoU")
    return printed
