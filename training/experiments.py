"""Compare distillation methods: a grid of methods x seeds on one dataset, one report.

    python -m training.experiments --config training/configs/synthetic/experiments.yaml [--only kd intra_kd] [--seeds 0 1]

Trains the teacher (and LGAD's label-input teacher when asked for) once, then every
(method, seed) student, each through ``python -m training.train`` with ``--resume`` (a finished
run is skipped, an interrupted one continues), evaluates every model on the test split with the
runtime's metric (``python -m training.evaluate``; skipped when its ``f1.json`` is newer than the
checkpoint), and writes ``<report_dir>/distillation.md`` + ``.csv`` + ``.png``: a table shaped
like the paper's Table 3 (method, F1 per category and total as mean +- std over seeds, FP for
``cross``, parameters) with the teacher and the student-alone rows.

Experiment file (paths relative to it)::

    student: erfnet.yaml
    teacher: resnet_psp.yaml
    lgad_teacher: lgad_teacher.yaml
    seeds: [0, 1, 2]
    overrides: []                 # --set items for every student run
    teacher_overrides: []         # the teacher (same input size as the student: distillation pairs features)
    lgad_overrides: []            # the LGAD label-input teacher
    methods:                      # name -> distill section (without the teacher paths)
      baseline: null
      kd: {method: [kd]}
      intra_kd: {method: [intra_kd, at]}
    runs_dir: runs/culane-synth/experiments
    report_dir: reports/culane-synth
    extra_eval: [../shared/data/culane_real_dev:all.txt]   # also scored there (never trained on)

The report adds the paired differences to the student alone (95 % intervals over seeds and over
test images, :mod:`runtime.paired`) on the test split and on every ``extra_eval`` set.
"""
from __future__ import annotations

import csv
import functools
import io
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from runtime.atomic import atomic_write_text
from runtime.cli import Parser, check_output_dir, fail, non_negative_int
from runtime.culane import CATEGORIES
from runtime.errors import DataError
from runtime.paired import bootstrap_interval, per_image_counts, seed_interval
from training.config import ConfigError
from training.experiment_report import LABELS, comparison_plot, mean_std, method_notes
from training.marking_report import write_marking_report


def load_experiment(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: experiment file not found") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: unreadable experiment file ({err.__class__.__name__}: {str(err).splitlines()[0]})") from None
    if not isinstance(spec, dict):
        raise ConfigError(f"{path}: an experiment file is a YAML mapping (student, teacher, methods, seeds, ...)")
    missing = {"student", "teacher", "methods", "seeds"} - set(spec)
    if missing:
        raise ConfigError(f"{path}: missing keys {sorted(missing)}")
    for key in ("student", "teacher", "lgad_teacher"):
        if spec.get(key):
            spec[key] = str((path.parent / spec[key]).resolve())
    spec.setdefault("overrides", [])
    spec.setdefault("teacher_overrides", [])
    spec.setdefault("lgad_overrides", [])  # the LGAD teacher must see the student's input size too
    spec.setdefault("runs_dir", "runs/experiments")
    spec.setdefault("report_dir", "reports")
    spec.setdefault("task", "lanes")
    if spec["task"] not in REPORT_FILES:
        raise ConfigError(f"{path}: task {spec['task']!r}: expected one of {', '.join(REPORT_FILES)}")
    if spec["task"] == "markings" and spec.get("extra_eval"):
        raise ConfigError(f"{path}: extra_eval scores lanes (CULane-format roots): not for a marking experiment")
    return spec


def _run(cmd: list[str], log: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as handle:
        handle.write(f"\n$ {' '.join(cmd)}\n")
        handle.flush()
        result = subprocess.run(cmd, stdout=handle, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed (exit {result.returncode}); log {log}:\n  " + "\n  ".join(tail))


def train(config: str, out: Path, overrides: list[str]) -> Path:
    """Train (or finish, or skip) one run; returns its best checkpoint."""
    summary = out / "train_summary.json"
    if not summary.exists():
        cmd = [sys.executable, "-m", "training.train", "--config", config, "--resume", "--set", f"output.dir={out}"]
        for item in overrides:
            cmd += ["--set", item]
        _run(cmd, out / "train.log")
    return out / "best.pt"


REPORT_FILES = {"lanes": "f1.json", "markings": "miou.json"}  # task -> what training.evaluate writes


def _report(ckpt: Path, extra: str | None = None, file: str = "f1.json") -> Path:
    return ckpt.parent / (f"eval_{extra}" if extra else "eval_test") / file


def _evaluated(ckpt: Path, extra: str | None = None, file: str = "f1.json") -> bool:
    """The checkpoint's report exists and is newer than it."""
    report = _report(ckpt, extra, file)
    return ckpt.exists() and report.exists() and report.stat().st_mtime >= ckpt.stat().st_mtime


def extra_sets(spec: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """``extra_eval: [ROOT[:LIST], ...]`` -> {name: (root, list)}; LIST defaults to list/test.txt."""
    sets = {}
    for item in spec.get("extra_eval") or []:
        root, _, list_name = str(item).partition(":")
        sets[Path(root).name] = (root, list_name or "test.txt")
    return sets


def evaluate(ckpt: Path, extra: tuple[str, tuple[str, str]] | None = None, file: str = "f1.json") -> dict[str, Any]:
    """The test split's report, or with ``extra`` = (name, (root, list)) that set's; ``file``: the
    report ``training.evaluate`` writes (``f1.json``, or ``miou.json`` for marking models)."""
    name = extra[0] if extra else None
    if not _evaluated(ckpt, name, file):
        cmd = [sys.executable, "-m", "training.evaluate", "--ckpt", str(ckpt), "--out", str(_report(ckpt, name, file).parent)]
        if extra:
            cmd += ["--data-root", extra[1][0], "--list", extra[1][1]]
        _run(cmd, ckpt.parent / "eval.log")
    return json.loads(_report(ckpt, name, file).read_text())


def finished(ckpt: Path, extras: dict[str, tuple[str, str]] | None = None, file: str = "f1.json") -> dict[str, Any] | None:
    """The test report of a completed run whose evaluations are all up to date, else None;
    the extra sets' reports under ``"extra"``."""
    names = list(extras or {})
    done = (ckpt.parent / "train_summary.json").exists() and all(_evaluated(ckpt, n, file) for n in [None, *names])
    if not done:
        return None
    report = json.loads(_report(ckpt, None, file).read_text())
    report["extra"] = {n: json.loads(_report(ckpt, n, file).read_text()) for n in names}
    return report


def evaluate_all(ckpt: Path, extras: dict[str, tuple[str, str]], file: str = "f1.json") -> dict[str, Any]:
    report = evaluate(ckpt, None, file)
    report["extra"] = {name: evaluate(ckpt, (name, where), file) for name, where in extras.items()}
    return report


def run_grid(spec: dict[str, Any], only: list[str] | None = None, seeds: list[int] | None = None) -> dict[str, Any]:
    """Train and evaluate the chosen (method, seed) runs; the results also hold every other run of
    the file's grid that has finished, so a partial invocation (``--only``, ``--seeds``) still
    reports the whole table."""
    runs = Path(spec["runs_dir"])
    chosen_seeds = seeds if seeds is not None else list(spec["seeds"])
    all_seeds = sorted(set(spec["seeds"]) | set(chosen_seeds))
    chosen = {k for k in spec["methods"] if not only or k in only}
    results: dict[str, Any] = {"teacher": None, "methods": {}}
    extras = extra_sets(spec)
    file = REPORT_FILES[spec.get("task", "lanes")]
    start = time.perf_counter()

    def say(text: str) -> None:
        print(f"[{time.perf_counter() - start:7.0f} s] {text}", flush=True)

    say(f"teacher: {spec['teacher']}")
    teacher_ckpt = train(spec["teacher"], runs / "teacher", spec["teacher_overrides"])
    results["teacher"] = evaluate_all(teacher_ckpt, extras, file)
    lgad_ckpt = None
    if any(m and "lgad" in (m.get("method") or []) for k, m in spec["methods"].items() if k in chosen):
        if not spec.get("lgad_teacher"):
            raise ConfigError("a method uses lgad but the experiment names no lgad_teacher config")
        say(f"LGAD teacher: {spec['lgad_teacher']}")
        lgad_ckpt = train(spec["lgad_teacher"], runs / "lgad_teacher", spec["lgad_overrides"])
    for name, distill in spec["methods"].items():
        for seed in all_seeds:
            out = runs / name / f"seed{seed}"
            if name not in chosen or seed not in chosen_seeds:
                report = finished(out / "best.pt", extras, file)
                if report is not None:
                    results["methods"].setdefault(name, {})[seed] = report
                continue
            overrides = list(spec["overrides"]) + [f"train.seed={seed}", f"name={name}"]
            if distill:
                section = dict(distill)
                section["teacher"] = str(teacher_ckpt)
                if lgad_ckpt is not None:
                    section["lgad_teacher"] = str(lgad_ckpt)
                overrides.append("distill=" + json.dumps(section))
            say(f"{name} seed {seed}")
            results["methods"].setdefault(name, {})[seed] = evaluate_all(train(spec["student"], out, overrides), extras, file)
    say("done")
    return results


def total_f1(report: dict[str, Any]) -> float:
    """A report's pooled F1, in %."""
    return 100 * float(report["f1"]["total"]["f1"])


def table_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per model: category F1 (and cross FP) mean/std over seeds, total, parameters."""
    rows = []

    def row(kind: str, label: str, reports: list[dict[str, Any]]) -> dict[str, Any]:
        r: dict[str, Any] = {"type": kind, "algorithm": label, "seeds": len(reports), "params_m": reports[0]["params"] / 1e6}
        for cat in CATEGORIES:
            key = "fp" if cat == "cross" else "f1"
            values = [float(rep["f1"][cat][key]) * (1 if key == "fp" else 100) for rep in reports]
            r[cat] = mean_std(values)
        r["total"] = mean_std([total_f1(rep) for rep in reports])
        r["per_seed_total"] = [round(total_f1(rep), 2) for rep in reports]
        return r

    if results.get("teacher"):
        t = results["teacher"]
        rows.append(row("T", f"{t['model']} (teacher)", [t]))
    for name, by_seed in results["methods"].items():
        kind, label = LABELS.get(name, ("TSD", name))
        rows.append(row(kind, label, [by_seed[s] for s in sorted(by_seed)]))
    return rows


def markdown(rows: list[dict[str, Any]], title: str) -> str:
    def cell(v: tuple[float, float], seeds: int, digits: int = 1) -> str:
        return f"{v[0]:.{digits}f}" if seeds == 1 else f"{v[0]:.{digits}f} ± {v[1]:.{digits}f}"

    head = "| Type | Algorithm | " + " | ".join("cross (FP)" if c == "cross" else c for c in CATEGORIES) + " | **Total F1** | # Param (M) | seeds |"
    lines = [f"# {title}", "", head, "|" + "---|" * (len(CATEGORIES) + 5)]
    for r in rows:
        cats = " | ".join(cell(r[c], r["seeds"], 0 if c == "cross" else 1) for c in CATEGORIES)
        lines.append(f"| {r['type']} | {r['algorithm']} | {cats} | **{cell(r['total'], r['seeds'], 2)}** | {r['params_m']:.2f} | {r['seeds']} |")
    lines += ["", "F1 in % on the test split (CULane's official counting), mean ± sample std over seeds; "
              "`cross` has no annotated lanes: its column is the number of false positives (lower is better)."]
    return "\n".join(lines) + "\n"


def csv_text(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["type", "algorithm", "seeds", "params_m"] + [f"{c}_{s}" for c in CATEGORIES + ("total",) for s in ("mean", "std")] + ["per_seed_total"])
    for r in rows:
        writer.writerow([r["type"], r["algorithm"], r["seeds"], f"{r['params_m']:.3f}"]
                        + [f"{v:.3f}" for c in CATEGORIES + ("total",) for v in r[c]] + [" ".join(map(str, r["per_seed_total"]))])
    return buffer.getvalue()


def set_totals(results: dict[str, Any]) -> list[tuple[str, str, list[float]]]:
    """(type, algorithm, per-seed total F1 %) of the teacher and every method, on one set."""
    out = []
    if results.get("teacher"):
        out.append(("T", "teacher", [total_f1(results["teacher"])]))
    for name, by_seed in results["methods"].items():
        kind, label = LABELS.get(name, ("TSD", name))
        out.append((kind, label, [total_f1(by_seed[s]) for s in sorted(by_seed)]))
    return out


def _counts(report: dict[str, Any]) -> np.ndarray:
    """(images, 3) per-image tp, fp, fn of one evaluation report, from the predictions it wrote."""
    predictions = report.get("predictions") or str(Path(report["checkpoint"]).parent / "eval_test" / "predictions")
    return _read_counts(report["data_root"], predictions, report.get("list") or "test.txt")


@functools.lru_cache(maxsize=None)
def _read_counts(data_root: str, predictions: str, list_name: str) -> np.ndarray:
    """Each report's predictions are read once per process, however many pairings use them."""
    counts = per_image_counts(data_root, predictions, list_name)[1]
    counts.flags.writeable = False
    return counts


def view(results: dict[str, Any], extra: str | None) -> dict[str, Any]:
    """The results on the test split (``extra`` None) or on one extra set, in the same shape."""
    if extra is None:
        return results
    pick = lambda report: report["extra"][extra]  # noqa: E731
    return {"teacher": pick(results["teacher"]) if results.get("teacher") else None,
            "methods": {m: {s: pick(r) for s, r in by_seed.items()} for m, by_seed in results["methods"].items()}}


def paired_rows(results: dict[str, Any], baseline: str = "baseline", methods: list[str] | None = None) -> list[dict[str, Any]]:
    """Each method (or those of ``methods``) against ``baseline`` on the seeds both have: total F1
    difference (points) with its 95 % interval over seeds and by bootstrap over test images
    (:mod:`runtime.paired`)."""
    base = results["methods"].get(baseline, {})
    rows = []
    for name, by_seed in results["methods"].items():
        seeds = sorted(set(by_seed) & set(base))
        if name == baseline or len(seeds) < 2 or (methods is not None and name not in methods):
            continue
        mean, low, high = seed_interval([total_f1(by_seed[s]) for s in seeds], [total_f1(base[s]) for s in seeds])
        point, b_low, b_high = bootstrap_interval(np.stack([_counts(by_seed[s]) for s in seeds]),
                                                  np.stack([_counts(base[s]) for s in seeds]))
        rows.append({"algorithm": LABELS.get(name, ("TSD", name))[1], "seeds": seeds, "diff": mean, "seed_ci": (low, high),
                     "pooled_diff": 100 * point, "image_ci": (100 * b_low, 100 * b_high)})
    return rows


def totals_markdown(results: dict[str, Any], title: str) -> str:
    """Total F1 per model, mean ± std over seeds (sets without categories: real frames)."""
    lines = [f"## {title}", "", "| Algorithm | total F1 % | per seed |", "|---|---:|---|"]
    for kind, label, values in set_totals(results):
        if kind == "T":
            lines.append(f"| {label} | {values[0]:.2f} | |")
            continue
        mean, std = mean_std(values)
        lines.append(f"| {label} | {mean:.2f} ± {std:.2f} | {' / '.join(f'{v:.1f}' for v in values)} |")
    return "\n".join(lines) + "\n"


def paired_markdown(rows: list[dict[str, Any]], title: str = "## Paired difference to the student alone") -> str:
    lines = [f"{title} (total F1, points)", "",
             "| Algorithm | seeds | mean of per-seed differences | 95 % interval over seeds | pooled difference | 95 % interval over test images |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['algorithm']} | {len(r['seeds'])} | {r['diff']:+.2f} | [{r['seed_ci'][0]:+.2f}, {r['seed_ci'][1]:+.2f}] "
                     f"| {r['pooled_diff']:+.2f} | [{r['image_ci'][0]:+.2f}, {r['image_ci'][1]:+.2f}] |")
    lines += ["", "Seeds are paired (same seed: same student initialisation and data order). Over seeds: Student-t on the "
              "per-seed differences; over images: 2,000 paired bootstrap resamples of the test images, counts pooled over seeds."]
    return "\n".join(lines) + "\n"


def paired_sections(results: dict[str, Any], heading: str) -> tuple[str, list[dict[str, Any]]]:
    """Markdown of the paired differences to the student alone and of the IntRA-KD rows to AT
    alone (when both ran) on one set; and the rows against the student alone (for the plot)."""
    text, paired = "", paired_rows(results)
    if paired:
        text += "\n" + paired_markdown(paired, f"{heading} paired difference to the student alone")
    if "at" in results["methods"]:
        to_at = paired_rows(results, baseline="at", methods=[m for m in results["methods"] if m.startswith("intra_kd")])
        if to_at:
            text += "\n" + paired_markdown(to_at, f"{heading} paired difference to AT alone")
    return text, paired


def write_report(results: dict[str, Any], report_dir: Path, title: str) -> list[dict[str, Any]]:
    """distillation.md (tables, paired differences, per set), .csv (test split) and .png (every set)."""
    rows = table_rows(results)
    text = markdown(rows, title)
    section, paired = paired_sections(results, "##")
    text += section
    panels = [("synthetic test", set_totals(results), paired)]
    extras = sorted(results["teacher"].get("extra", {})) if results.get("teacher") else []
    for name in extras:
        on_set = view(results, name)
        text += "\n" + totals_markdown(on_set, f"{name} (extra evaluation set: measured, never trained on)")
        section, paired = paired_sections(on_set, f"### {name}:")
        text += section
        panels.append((name, set_totals(on_set), paired))
    notes = method_notes(list(results["methods"]))
    if notes:
        text += "\n" + notes
    atomic_write_text(report_dir / "distillation.md", text)
    atomic_write_text(report_dir / "distillation.csv", csv_text(rows))
    comparison_plot(panels, report_dir / "distillation.png", title)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m training.experiments", description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="experiment YAML")
    parser.add_argument("--only", nargs="+", help="methods to run (default: all)")
    parser.add_argument("--seeds", nargs="+", type=non_negative_int, help="seeds to run (default: the file's)")
    args = parser.parse_args(argv)
    try:
        spec = load_experiment(args.config)
        check_output_dir(spec["runs_dir"], "runs folder")
        check_output_dir(spec["report_dir"], "report folder")
        results = run_grid(spec, args.only, args.seeds)
        title = f"Distillation on {Path(spec['runs_dir']).parent.name}"
        if spec["task"] == "markings":
            for line in write_marking_report(results, Path(spec["report_dir"]), title):
                print(line)
            print(f"report: {Path(spec['report_dir']) / 'distillation.md'}")
            return 0
        rows = write_report(results, Path(spec["report_dir"]), title)
    except (ConfigError, DataError, OSError, RuntimeError) as err:
        return fail(err)
    for r in rows:
        print(f"{r['algorithm']:<28} total F1 {r['total'][0]:6.2f} ± {r['total'][1]:.2f}  ({r['seeds']} seeds)")
    print(f"report: {Path(spec['report_dir']) / 'distillation.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
