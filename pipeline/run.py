"""``./pipeline.sh DATASET [--data-root PATH] [--profile tiny|smoke|paper] [--from STAGE] [--only STAGE] [--force]
[--skip paper|video ...] [--extra-eval ROOT[:LIST] ...] [--no-extra-eval]``

DATASET ``culane``, ``apolloscape`` (36 marking classes, mIoU) or ``llamas`` (4 lanes, F1 and LLAMAS'
official mAP) picks the synthetic default, the configs of each profile and the paper's pair; any
other name runs CULane's on its own root.

Runs the stages of :mod:`pipeline.stages` in order, each as its own CLI with its log under
``runs/<dataset>/logs/<stage>.log``; prints one line per stage with its duration. A stage whose
outputs exist and are newer than its inputs is skipped, so a killed run restarts where it stopped
(training itself resumes from its last checkpoint). On failure: the stage, the last lines of its
log, the log's path, exit 1.

No ``--data-root`` and nothing at ``data/<dataset>``: the synthetic CULane dataset is generated at
``data/<dataset>-synth`` and the smoke profile used, and the output says so first. A real root
runs the ``paper`` profile by default; ``tiny`` or ``smoke`` on it draw a seeded subset of its lists
(:mod:`pipeline.subset`), and the output says so first too.

``--extra-eval ROOT[:LIST]`` (repeatable; :mod:`pipeline.extra_eval`): the evaluate stage also
scores every deployed lane model and the student alone on that CULane-format root (frames of any
size), in total and per drive, with frames-without-lanes counts, a contact sheet of the student and
the teacher, and the student's camera-shift table; by default the real dev sets
``../shared/data/culane_real_dev`` and ``culane_real_other`` where present. After the training stages a WARNING line says
when the teacher's validation F1 is below the student's.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

import yaml

from pipeline import extra_eval, subset_view
from pipeline.lock import FolderLock
from pipeline.report import teacher_vs_student, teacher_warning
from pipeline.stages import BENCHMARKS, ROOT, STAGE_NAMES, STAGES, TASKS, Layout, Stage
from runtime.atomic import atomic_write_json
from runtime.cli import Parser, check_output_dir, fail
from runtime.errors import DataError

PROFILES = Path(__file__).with_name("profiles.yaml")
TAIL_LINES = 25
TRAINING_STAGES = ("teacher", "student", "student_kd")
SKIPPABLE = ("paper", "video")  # measurement stages no later stage needs: --skip


def load_profile(name: str, dataset: str = "culane") -> dict[str, Any]:
    """The profile's settings, with its ``datasets.<dataset>`` section (if any) laid over them key by key."""
    profiles = yaml.safe_load(PROFILES.read_text(encoding="utf-8"))
    if name not in profiles:
        raise SystemExit(f"error: {PROFILES}: no profile {name!r}; choose from {', '.join(profiles)}")
    settings = dict(profiles[name])
    return {**settings, **(settings.pop("datasets", None) or {}).get(dataset, {})}


def given(value: str) -> str:
    """An option's value, refused when empty: ``--data-root ""`` (an unset variable) never reads as "not given"."""
    if not value.strip():
        raise argparse.ArgumentTypeError("an empty value (an unset variable?); leave the option out instead")
    return value


def resolve_layout(dataset: str, data_root: str | None, profile: str | None, base: Path) -> tuple[Layout, str | None]:
    """The run's layout, and a banner line when the data is drawn (synthetic, or a subset of a real root).

    A real root (``--data-root``, or ``data/<dataset>``) runs the ``paper`` profile by default; a
    reduced profile on it trains on a seeded subset of its lists, built at ``data/<dataset>-<profile>``
    (runs, artifacts and reports under that name too, apart from the full-scale run's)."""
    default = base / "data" / dataset
    task = TASKS.get(dataset, "lanes")
    benchmark = dataset if dataset in BENCHMARKS else "culane"
    real = Path(data_root).resolve() if data_root else default.resolve() if (default / "list").is_dir() and not (default / "synthetic.json").exists() else None
    if real is not None:
        if not (real / "list").is_dir():
            raise SystemExit(f"error: {real}: not a CULane-format dataset root (no list/ folder)")
        name = profile or "paper"
        settings = load_profile(name, dataset)
        if not settings["reduced"]:
            return Layout(dataset, real, False, name, settings, base, task=task, benchmark=benchmark), None
        if task == "markings" or benchmark == "llamas":
            raise SystemExit(f"error: {real}: profile {name!r} draws a subset by CULane's test categories; a {dataset} root runs "
                             "the paper profile (--profile paper) or the synthetic set (no --data-root)")
        view = f"{dataset}-{name}"
        d = settings["data"]
        banner = (f"NOTE: profile '{name}' on the real root {real}: training and scoring on a SEEDED SUBSET of its lists "
                  f"({d['train']} train, {d['val']} val, {d['test_per_category']} test per category, seed {d['seed']}) at "
                  f"data/{view} (reduced scale; figures are not the paper's).")
        return Layout(view, (base / "data" / view).resolve(), False, name, settings, base, source_root=real, task=task,
                      benchmark=benchmark), banner
    name = profile or "smoke"
    settings = load_profile(name, dataset)
    if not settings["reduced"]:
        raise SystemExit(f"error: no dataset at {default} and no --data-root: profile {name!r} needs real data")
    synth = f"{dataset}-synth"
    what = {"apolloscape": "ApolloScape-style lane-marking set (36 classes)", "llamas": "LLAMAS-style lane dataset (mAP)"}.get(
        benchmark, "CULane dataset")
    banner = (f"NOTE: no dataset at {default} and no --data-root: generating the SYNTHETIC {what} at "
              f"data/{synth} and running the '{name}' profile (reduced scale, CPU-sized; figures are not the paper's).")
    return Layout(synth, (base / "data" / synth).resolve(), True, name, settings, base, task=task, benchmark=benchmark), banner


def check_subset(lay: Layout) -> None:
    """A subset's source, before any stage: its lists, and every file the subset draws (:func:`pipeline.subset_view.plan`)."""
    if lay.source_root is not None:
        d = lay.settings["data"]
        subset_view.plan(lay.source_root, d["train"], d["val"], d["test_per_category"], d["seed"])


def is_fresh(stage: Stage, lay: Layout, recorded: dict[str, Any] | None = None) -> bool:
    """Outputs all there, none older than the newest input, and the stage's signature (e.g. the extra
    evaluation sets) the one ``recorded`` with its last run."""
    recorded = recorded or {}
    if recorded.get("status", "done") != "done" or stage.signature(lay) != recorded.get("signature"):
        return False  # an interrupted or failed run, or other settings
    outputs = stage.outputs(lay)
    if not outputs or not all(p.exists() for p in outputs):
        return False
    inputs = [p for p in stage.inputs(lay) if p.exists()]
    return not inputs or min(p.stat().st_mtime for p in outputs) >= max(p.stat().st_mtime for p in inputs)


def restart_reason(stage: Stage, lay: Layout, recorded: dict[str, Any], force: bool) -> str | None:
    """Why a training stage must not resume its run folder's checkpoint (None: resume, or nothing
    to resume): ``--force``, other settings than the folder's run was started with, or inputs
    (data, teacher) newer than its checkpoint."""
    folder = stage.restart_dir(lay)
    if folder is None or not folder.exists():
        return None
    if force:
        return "--force"
    if recorded.get("signature") != stage.signature(lay):
        return "its settings changed"
    checkpoint = folder / "last.pt"
    inputs = [p for p in stage.inputs(lay) if p.exists()]
    if checkpoint.exists() and inputs and max(p.stat().st_mtime for p in inputs) > checkpoint.stat().st_mtime:
        return "its inputs are newer than its checkpoint"
    return None


def run_stage(stage: Stage, lay: Layout, log_path: Path) -> int:
    """Run the stage's commands, output to the log (and to a terminal as it comes); the exit code."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    echo = sys.stderr.isatty()
    # TQDM_DISABLE: a stage's log is a file, read in an editor or a CI log: no progress-bar frames (carriage returns);
    # training writes one line every log_every steps instead (training/train.py)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TQDM_DISABLE": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with open(log_path, "w", encoding="utf-8") as log:
        for command in stage.commands(lay):
            log.write("$ " + " ".join(_quote(c) for c in command) + "\n")
            log.flush()
            proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
            assert proc.stdout is not None
            while chunk := proc.stdout.read1(65536):
                text = chunk.decode("utf-8", "replace")
                log.write(text)
                log.flush()
                if echo:
                    sys.stderr.write(text)
                    sys.stderr.flush()
            if proc.wait() != 0:
                log.write(f"\n[pipeline] command exited with {proc.returncode}\n")
                return proc.returncode
    return 0


def _quote(arg: str) -> str:
    return f"'{arg}'" if any(c in arg for c in " \t'\"$") else arg


def tail(path: Path, n: int = TAIL_LINES) -> str:
    lines: deque[str] = deque(maxlen=n)
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            lines.append(line.rstrip("\n").split("\r")[-1])
    return "\n".join(lines)


def fmt_seconds(s: float) -> str:
    return f"{s:.1f}s" if s < 60 else f"{int(s // 60)}m{int(s % 60):02d}s"


def record(state_path: Path, stage: str, entry: dict[str, Any]) -> None:
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    state[stage] = entry
    atomic_write_json(state_path, state)


def warn_weak_teacher(lay: Layout) -> None:
    """Print the WARNING line when the teacher scores below the student alone (see :func:`pipeline.report.teacher_vs_student`)."""
    line = teacher_warning(teacher_vs_student(lay.runs, lay.task))
    if line:
        print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="./pipeline.sh", description="Train, distil, export, calibrate, deploy and measure, in one command.")
    parser.add_argument("dataset", choices=BENCHMARKS, help="the benchmark: culane, apolloscape or llamas")
    parser.add_argument("--data-root", type=given, help="a CULane-format dataset root (default: data/<dataset>, else synthetic)")
    parser.add_argument("--profile", choices=("tiny", "smoke", "paper"), help="default: paper with real data, smoke on synthetic")
    parser.add_argument("--from", dest="start", choices=STAGE_NAMES, help="start at this stage (earlier ones must be done)")
    parser.add_argument("--only", choices=STAGE_NAMES, help="run just this stage")
    parser.add_argument("--force", action="store_true", help="redo the selected stages even when their outputs are fresh")
    parser.add_argument("--skip", action="append", default=[], choices=SKIPPABLE,
                        help="leave out this measurement stage (repeatable), e.g. --skip paper where the paper's pair takes too long")
    parser.add_argument("--extra-eval", action="append", default=[], metavar="ROOT[:LIST]", type=given,
                        help="also score every deployed lane model on this CULane-format root, frames of any size (repeatable; LIST default "
                             "list/test.txt, relative to ROOT); default: ../shared/data/culane_real_dev and culane_real_other where present")
    parser.add_argument("--no-extra-eval", action="store_true", help="no default extra evaluation set")
    parser.add_argument("--base", default=str(ROOT), help=argparse.SUPPRESS)  # tests: run in another folder
    args = parser.parse_args(argv)
    if args.extra_eval and args.no_extra_eval:
        parser.error("--extra-eval and --no-extra-eval exclude each other")
    lay, banner = resolve_layout(args.dataset, args.data_root, args.profile, Path(args.base).resolve())
    if args.extra_eval and lay.markings:
        parser.error(f"--extra-eval scores lane models by CULane F1: not for a {args.dataset} model (36 marking classes)")
    # the default dev sets are CULane-annotated real frames: scored for CULane models (any lane model with --extra-eval)
    lay.extra_eval, extra_line = extra_eval.resolve(args.extra_eval, not args.no_extra_eval and not lay.markings and lay.benchmark == "culane")
    try:
        for folder, what in ((lay.runs, "runs folder"), (lay.reports, "reports folder")):
            check_output_dir(folder, what)
        check_subset(lay)
    except DataError as err:
        return fail(err)
    try:
        lock = FolderLock(lay.runs / "pipeline.lock")  # one pipeline per output folder
    except DataError as err:
        return fail(err)
    try:
        return run_stages(args, lay, banner, extra_line)
    finally:
        lock.release()


def run_stages(args: argparse.Namespace, lay: Layout, banner: str | None, extra_line: str | None) -> int:
    """The selected stages in order, each skipped when fresh; 0, or 1 at the first failed stage."""
    if banner:
        print(banner, flush=True)
    kind = "synthetic" if lay.synthetic else f"subset of {lay.source_root}" if lay.source_root else "real"
    print(f"pipeline: dataset {lay.dataset} ({kind}) at {lay.data_root}, profile {lay.profile}", flush=True)
    if extra_line:
        print(extra_line, flush=True)
    selected = [args.only] if args.only else STAGE_NAMES[STAGE_NAMES.index(args.start):] if args.start else STAGE_NAMES
    state_path = lay.runs / "pipeline_state.json"
    (lay.runs).mkdir(parents=True, exist_ok=True)
    atomic_write_json(lay.runs / "pipeline_run.json", {"dataset": lay.dataset, "data_root": str(lay.data_root), "synthetic": lay.synthetic,
                                                      "source_root": str(lay.source_root) if lay.source_root else None, "profile": lay.profile, "banner": banner,
                                                      "extra_eval": [e.to_dict() for e in lay.extra_eval]})
    last_training = max((n for n in TRAINING_STAGES if n in selected), key=STAGE_NAMES.index, default=None)
    started = time.perf_counter()
    reached: list[str] = []
    for i, stage in enumerate(s for s in STAGES if s.name in selected):
        label = f"[{i + 1}/{len(selected)}] {stage.name:<10}"
        if reached and reached[-1] == last_training:  # the training stages are behind us
            warn_weak_teacher(lay)
        reached.append(stage.name)
        reason = stage.optional(lay) or ("--skip" if stage.name in args.skip else None)
        if reason:
            print(f"{label} skipped: {reason}", flush=True)
            record(state_path, stage.name, {"status": "skipped", "reason": reason, "duration_s": 0.0})
            continue
        previous = json.loads(state_path.read_text()).get(stage.name, {}) if state_path.is_file() else {}
        if not args.force and is_fresh(stage, lay, previous):
            print(f"{label} up to date (--force to redo)", flush=True)
            record(state_path, stage.name, {**previous, "status": previous.get("status", "done"), "skipped_fresh": True})
            continue
        log_path = lay.logs / f"{stage.name}.log"
        signature = stage.signature(lay)
        why = restart_reason(stage, lay, previous, args.force)
        if why:
            shutil.rmtree(stage.restart_dir(lay))  # type: ignore[arg-type]
            print(f"{label} training from scratch ({why}): cleared {stage.restart_dir(lay)}", flush=True)
        keep = {"signature": signature} if signature is not None else {}
        record(state_path, stage.name, {"status": "running", "log": str(log_path), **keep})  # a killed run resumes with these settings
        print(f"{label} {stage.description} ...", flush=True)
        t0 = time.perf_counter()
        code = run_stage(stage, lay, log_path)
        took = time.perf_counter() - t0
        if code != 0:
            record(state_path, stage.name, {"status": "failed", "duration_s": round(took, 1), "log": str(log_path), **keep})
            print(f"{label} FAILED after {fmt_seconds(took)} (exit {code}); last lines of {log_path}:", file=sys.stderr)
            print(tail(log_path), file=sys.stderr)
            print(f"pipeline: stage '{stage.name}' failed; full log: {log_path}", file=sys.stderr)
            return 1
        record(state_path, stage.name, {"status": "done", "duration_s": round(took, 1), "log": str(log_path), "skipped_fresh": False, **keep})
        print(f"{label} done in {fmt_seconds(took)}", flush=True)
    if reached and reached[-1] == last_training:
        warn_weak_teacher(lay)
    print(f"pipeline: finished in {fmt_seconds(time.perf_counter() - started)}; summary: {lay.reports / 'SUMMARY.md'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
