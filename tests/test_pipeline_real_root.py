"""./pipeline.sh on a real-format root that had lane points only: labelled with
``lanedata.labels.make_labels``, run with the tiny profile on a seeded subset of its lists (real
CULane frames of ``../shared/data/culane_real_dev`` when present, else synthetic frames); bad roots
refused in one line before any stage."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from pipeline.subset_view import plan
from runtime.culane import read_list
from runtime.lines import read_lines_file
from tests.helpers import real_format_root
from lanedata.labels.label_maps import make_labels

ROOT = Path(__file__).resolve().parents[1]


def pipeline(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([str(ROOT / "pipeline.sh"), *args], capture_output=True, text=True, timeout=timeout)


def lanes_only_root(dest: Path, fallback: Path, label: tuple[str, ...] = ("train", "val")) -> Path:
    root = real_format_root(dest, fallback)
    for name in label:
        make_labels(root, f"{name}.txt", workers=2)
    return root


@pytest.fixture(scope="module")
def real_run(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    tmp = tmp_path_factory.mktemp("real_root")
    root, base = lanes_only_root(tmp / "lanes only", tiny_dataset), tmp / "base"
    # the paper's pair is timed by the synthetic tiny run (tests/test_pipeline.py): skipped here, as a user may
    return root, base, pipeline("culane", "--data-root", str(root), "--profile", "tiny", "--base", str(base), "--no-extra-eval",
                                "--skip", "paper")


def test_the_tiny_profile_runs_on_a_root_labelled_with_make_labels(real_run):
    root, base, r = real_run
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert "SEEDED SUBSET" in r.stdout.splitlines()[0] and "profile 'tiny'" in r.stdout.splitlines()[0]
    assert "paper      skipped: --skip" in r.stdout and not (base / "reports" / "culane-tiny" / "paper").exists()
    view = base / "data" / "culane-tiny"
    drawn = json.loads((view / "subset.json").read_text())
    assert drawn["source"] == str(root.resolve()) and drawn["seed"] == 7
    # tiny draws 24 training images: this root has fewer, so its whole labelled list, in its order
    assert (view / "list" / "train_gt.txt").read_text() == (root / "list" / "train_gt.txt").read_text()
    for path in sorted((root / "list" / "test_split").glob("*.txt")):
        ours = read_list(view / "list" / "test_split" / path.name).samples
        theirs = [s.image for s in read_list(path).samples]
        assert len(ours) == min(2, len(theirs)) and [s.image for s in ours] == [i for i in theirs if i in {s.image for s in ours}]
        assert all((view / s.image).is_file() and (view / s.lines_name).is_file() for s in ours)
    summary = json.loads((base / "reports" / "culane-tiny" / "summary.json").read_text())
    assert summary["dataset"] == "culane-tiny" and summary["synthetic"] is False and summary["subset"]["seed"] == 7
    assert set(summary["models"]) == {"teacher", "student", "student_intra_kd"}
    categories = {p.stem.split("_", 1)[1] for p in (root / "list" / "test_split").glob("*.txt")} | {"total"}
    assert all(set(m["f1"]) == categories for m in summary["models"].values())
    assert "Seeded subset of a real root" in (base / "reports" / "culane-tiny" / "SUMMARY.md").read_text()
    total = json.loads((base / "reports" / "culane-tiny" / "eval" / "student.fp32.json").read_text())["lists"]["total"]
    tests = read_list(view / "list" / "test.txt").samples
    assert total["images"] == len(tests)  # scored against the real root's own lanes
    assert total["tp"] + total["fn"] == sum(len(read_lines_file(view / s.lines_name)) for s in tests) > 0
    assert not (base / "runs" / "culane").exists()  # the full-scale run's folders stay apart


def test_subsets_are_seeded_draws_in_list_order(tiny_dataset):
    a, again, other = (plan(tiny_dataset, 5, 2, 2, seed) for seed in (1, 1, 2))
    assert {k: v.rows for k, v in a.items()} == {k: v.rows for k, v in again.items()}
    assert a["train_gt"].rows != other["train_gt"].rows
    source = (tiny_dataset / "list" / "train_gt.txt").read_text().splitlines()
    positions = [source.index(row) for row in a["train_gt"].rows]
    assert len(positions) == 5 and positions == sorted(positions) and a["train_gt"].of == len(source)
    assert len(plan(tiny_dataset, 10_000, 2, 2, 1)["train_gt"].rows) == len(source)  # more than there is: all of it


@pytest.mark.parametrize("case", ["no labels", "missing frame", "missing label map", "empty list", "unknown profile", "no test split"])
def test_a_bad_real_root_is_one_line_before_any_stage(tiny_dataset, tmp_path, case):
    root = lanes_only_root(tmp_path / "root", tiny_dataset, label=("val",) if case == "no labels" else ("train", "val"))
    train = read_list(root / "list" / "train_gt.txt").samples if case != "no labels" else []
    profile = "tiny"
    named = {"no labels": root / "list" / "train_gt.txt", "empty list": root / "list" / "train_gt.txt",
             "no test split": root / "list" / "test_split"}.get(case)
    if case == "missing frame":
        named = root / train[0].image
        named.unlink()
    elif case == "missing label map":
        named = root / train[-1].label
        named.unlink()
    elif case == "empty list":
        named.write_text("")
    elif case == "no test split":
        for path in named.iterdir():
            path.unlink()
    elif case == "unknown profile":
        profile = "huge"
    base = tmp_path / "base"
    r = pipeline("culane", "--data-root", str(root), "--profile", profile, "--base", str(base), "--no-extra-eval", timeout=120)
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0 and len(lines) == 1, r.stderr
    assert (f"error: {named}" in lines[0]) if named else "invalid choice: 'huge'" in lines[0], lines[0]
    if case == "no labels":
        assert "python -m lanedata.labels.make_labels" in lines[0]
    assert not base.exists()  # nothing made: no data view, no runs, no reports
