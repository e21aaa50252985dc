"""./pipeline.sh end to end on the tiny profile: artifacts, summary vs stage reports, extra evaluation,
resumability, failures."""
from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline import extra_eval
from pipeline.run import is_fresh, resolve_layout, restart_reason
from pipeline.run import main as run_main
from pipeline.stages import STAGES as PIPELINE_STAGES
from pipeline.report import teacher_vs_student, teacher_warning
from runtime.backends.tensorrt_backend import trt_available
from runtime.contact_sheet import FOOTER_H, GAP, HEADER_H
from tests.runtime.test_contact_sheet import DRIVES, write_two_drive_root

ROOT = Path(__file__).resolve().parents[1]
STAGES = ["data", "teacher", "student", "student_kd", "export", "calibrate", "engines", "evaluate", "map", "video", "compare", "paper", "summary"]
DEPLOYED = ["student.fp32", "student.fp16", "student.int8", "student.int8ort", "student.int8cpu", "teacher.fp32"]
EXTRA = "real dev"  # the extra evaluation root's folder name: two drives, three images each


def pipeline(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([str(ROOT / "pipeline.sh"), *args], capture_output=True, text=True, timeout=timeout)


def tiny_args(base: Path) -> list[str]:
    """The tiny run's arguments: every later call repeats them (another extra set would make stages stale)."""
    return ["culane", "--profile", "tiny", "--base", str(base), "--extra-eval", str(base.parent / EXTRA)]


@pytest.fixture(scope="module")
def tiny_run(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    base = tmp_path_factory.mktemp("pipe") / "a folder with spaces"
    base.mkdir()
    write_two_drive_root(tiny_dataset, base.parent / EXTRA)
    return base, pipeline(*tiny_args(base))


def read(path: Path) -> dict:
    return json.loads(path.read_text())


def test_the_tiny_pipeline_makes_every_artifact(tiny_run):
    base, r = tiny_run
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert r.stdout.startswith("NOTE: no dataset at") and "SYNTHETIC" in r.stdout.splitlines()[0]
    for stage in STAGES:
        assert any(line.split()[1:2] == [stage] for line in r.stdout.splitlines() if line.startswith("[")), stage
    art, rep, runs = base / "artifacts" / "culane-synth", base / "reports" / "culane-synth", base / "runs" / "culane-synth"
    for name in ["student.onnx", "student.pt2", "student.fp16.onnx", "student.int8.onnx", "student.int8ort.onnx", "student.int8cpu.onnx",
                 "teacher.onnx"]:
        assert (art / name).is_file() and (art / f"{name}.json").is_file(), name
    assert (art / "student.int8.onnx.report.md").is_file() and (art / "student.int8ort.onnx.report.md").is_file()
    from runtime.artifacts import read_sidecar  # the TensorRT INT8 artifact is ModelOpt's, the other ONNX Runtime's layout

    assert read_sidecar(art / "student.int8.onnx").extra["quantizer"]["tool"] == "nvidia-modelopt"
    assert "quantizer" not in read_sidecar(art / "student.int8ort.onnx").extra
    for name in DEPLOYED:
        assert (rep / "eval" / f"{name}.json").is_file() and (rep / "bench" / f"{name}.json").is_file(), name
        assert (rep / "extra_eval" / EXTRA / f"{name}.json").is_file(), name
    for role in ("teacher", "student"):
        assert (rep / "video" / f"synthetic.{role}.mp4").stat().st_size > 0 and (rep / "video" / f"synthetic.{role}.csv").is_file()
    for name in ["latency.md", "latency.png", "latency.json", "SUMMARY.md", "summary.json"]:
        assert (rep / name).is_file(), name
    for model in ("teacher", "student", "student_intra_kd"):
        assert (runs / model / "last.pt").is_file(), model
    for stage in ("teacher", "student", "student_kd", "export", "calibrate", "evaluate", "video"):
        assert (runs / "logs" / f"{stage}.log").is_file(), stage
    for log in (runs / "logs").glob("*.log"):  # readable in an editor or a CI log: lines, no progress-bar frames
        assert b"\r" not in log.read_bytes(), log
    assert "[erfnet] iteration 6/6: loss " in (runs / "logs" / "student.log").read_text()
    assert (rep / "extra_eval" / EXTRA / "camera_shift.json").is_file()
    reason = trt_available()
    if reason:  # one clear line, and the rest runs
        assert f"engines    skipped: {reason}" in r.stdout
    else:
        assert "engines    done" in r.stdout and all((art / f"student.{p}.engine").is_file() for p in ("fp32", "fp16", "int8"))


def test_the_summary_agrees_with_the_stage_reports(tiny_run):
    base, r = tiny_run
    assert r.returncode == 0
    rep, runs = base / "reports" / "culane-synth", base / "runs" / "culane-synth"
    s = read(rep / "summary.json")
    assert s["dataset"] == "culane-synth" and s["synthetic"] is True and s["profile"] == "tiny"
    assert set(s["duration_s"]) >= set(STAGES) - {"summary"}
    for name, method in (("teacher", "teacher"), ("student", "baseline"), ("student_intra_kd", "intra_kd")):
        model, evaluation = s["models"][name], read(runs / name / "eval_test" / "f1.json")
        assert model["method"] == method and model["params"] == evaluation["params"]
        assert model["f1"]["total"] == evaluation["f1"]["total"]["f1"] and set(model["f1"]) == set(evaluation["f1"])
    assert s["models"]["teacher"]["role"] == "teacher" and s["models"]["teacher"]["params"] > s["models"]["student"]["params"]
    for precision in ("fp32", "fp16", "int8"):
        entry = s["precisions"]["student"][precision]
        bench, evaluation = read(rep / "bench" / f"student.{precision}.json"), read(rep / "eval" / f"student.{precision}.json")
        assert entry["latency_p50_ms"] == bench["summary"]["host"]["p50"] and entry["backend"] == "onnxruntime"
        assert entry["f1_total"] == evaluation["lists"]["total"]["f1"]
        if precision == "fp32":
            assert entry["change_vs_fp32"] is None
        else:  # the change against FP32 on the same images, with its image-paired interval
            fp32 = read(rep / "eval" / "student.fp32.json")["lists"]["total"]
            assert entry["change_vs_fp32"]["points"] == pytest.approx(100 * (evaluation["lists"]["total"]["f1"] - fp32["f1"]))
            assert entry["change_vs_fp32"]["images"] == fp32["images"]
    latency, comparison = s["latency"], read(rep / "latency.json")
    assert latency["teacher"]["p50_ms"] == read(rep / "bench" / "teacher.fp32.json")["summary"]["host"]["p50"]
    assert latency["ratio_p50"] == pytest.approx(latency["teacher"]["p50_ms"] / latency["student"]["p50_ms"])
    assert latency["ratio_p50"] == comparison["ratio_p50"] and latency["device"]
    pair = s["paper_pair"]  # the paper's architectures (tiny profile: at 256x64), timed interleaved, and in the video loop
    bench = {role: read(rep / "paper" / f"bench.{role}.json") for role in ("teacher", "student")}
    assert bench["teacher"]["meta"]["interleaved_with"] == [bench["student"]["meta"]["model"]]
    assert bench["teacher"]["meta"]["arch"] == "pspnet" and bench["student"]["meta"]["arch"] == "erfnet"
    assert pair["teacher"]["input_shape"] == [1, 3, 64, 256] == pair["student"]["input_shape"]
    assert pair["ratio_model_p50"] == pytest.approx(bench["teacher"]["summary"]["host"]["p50"] / bench["student"]["summary"]["host"]["p50"])
    video = read(rep / "paper" / "video.student.json")
    frames = sorted(r["decode"] + r["total"] for r in video["records"])
    assert pair["student"]["frame_p50_ms"] == pytest.approx(np.percentile(frames, 50))
    assert pair["ratio_frame_p50"] == pytest.approx(pair["teacher"]["frame_p50_ms"] / pair["student"]["frame_p50_ms"])
    md = (rep / "SUMMARY.md").read_text()
    assert "Synthetic data" in md and "| student_intra_kd |" in md and "171.2" in md


def test_every_deployed_model_is_scored_on_the_extra_set_per_drive(tiny_run):
    base, r = tiny_run
    assert r.returncode == 0
    rep, runs = base / "reports" / "culane-synth", base / "runs" / "culane-synth"
    root = (base.parent / EXTRA).resolve()
    assert f"extra evaluation (measurement only): {EXTRA} (list/test.txt, 6 images)" in r.stdout.splitlines()
    assert read(runs / "pipeline_run.json")["extra_eval"] == [{"name": EXTRA, "root": str(root), "list": str(root / "list" / "test.txt")}]
    s = read(rep / "summary.json")["extra_eval"][EXTRA]
    assert s["root"] == str(root) and s["images"] == 6 and [m for m in s["models"] if m != "student_alone.fp32"][:len(DEPLOYED)] == DEPLOYED  # then engines, if any
    assert "student_alone.fp32" in s["models"]  # the student alone is scored on the real frames too
    for name, m in s["models"].items():
        report = read(rep / "extra_eval" / EXTRA / f"{name}.json")
        assert report["data_root"] == str(root)
        assert {k: m[k] for k in ("f1", "precision", "recall", "tp", "fp", "fn")} == {
            k: report["lists"]["total"][k] for k in ("f1", "precision", "recall", "tp", "fp", "fn")}
        assert set(m["drives"]) == set(DRIVES) and all(d["images"] == 3 for d in m["drives"].values())
        assert sum(d["tp"] + d["fp"] + d["fn"] for d in m["drives"].values()) == m["tp"] + m["fp"] + m["fn"]
        assert {d: {k: c[k] for k in ("f1", "images", "tp", "fp", "fn")} for d, c in m["drives"].items()} == {
            d: {k: c[k] for k in ("f1", "images", "tp", "fp", "fn")} for d, c in report["groups"]["drive"].items()}
        empty = [image for image, (tp, fp, _) in report["per_image"].items() if tp + fp == 0]
        assert m["no_lanes"] == report["no_lanes"]["frames"] == len(empty) == sum(d["no_lanes"] for d in m["drives"].values())
    md = (rep / "SUMMARY.md").read_text()
    models_at, extra_at, deployed_at = md.index("## Models (test split"), md.index("## Real frames (extra evaluation)"), md.index("## Deployed student")
    assert models_at < extra_at < deployed_at  # right after the synthetic models table
    section = md[extra_at:deployed_at]
    assert "no model was trained or tuned on these frames" in section
    header = next(line for line in section.splitlines() if line.startswith("| model |"))
    assert all(f"{d} F1 % (3 img)" in header for d in sorted(DRIVES)) and header.count("|") == 6 + len(DRIVES) + 1 and "| no lane |" in header
    assert s["models"]["student.fp32"]["change_vs_fp32"] is None and s["models"]["student.int8cpu"]["change_vs_fp32"]["images"] == 6
    rows = [line for line in section.splitlines() if line.startswith(("| student.", "| student_alone.", "| teacher."))]
    assert [row.split(" | ")[0][2:] for row in rows] == list(s["models"])
    # the contact sheet: student and teacher, one row per frame (all six: fewer than the default eight)
    sheet = rep / "extra_eval" / EXTRA / "contact_sheet.png"
    assert "(extra_eval/real%20dev/contact_sheet.png)" in section
    tile_h = round(590 * 480 / 1640)
    assert cv2.imread(str(sheet)).shape == (HEADER_H + 6 * (tile_h + GAP) + FOOTER_H, 2 * 480 + GAP, 3)
    assert sheet.stat().st_size < 3e6


def test_a_teacher_below_the_student_is_flagged(tiny_run, tmp_path):
    base, r = tiny_run
    assert r.returncode == 0
    rep, runs = base / "reports" / "culane-synth", base / "runs" / "culane-synth"
    teacher, student = (read(runs / m / "train_summary.json")["last_val"]["val/f1"] for m in ("teacher", "student"))
    s = read(rep / "summary.json")
    assert s["teacher_vs_student"]["split"] == "validation"
    assert (s["teacher_vs_student"]["teacher_f1"], s["teacher_vs_student"]["student_f1"]) == (teacher, student)
    assert s["teacher_below_student"] is (teacher < student)
    assert ("WARNING: the teacher's validation F1" in r.stdout) is (teacher < student)
    assert ("**Warning: the teacher's" in (rep / "SUMMARY.md").read_text()) is (teacher < student)
    # a weaker teacher, figures from the run folders' own files: validation first, else the test split
    for model, value in (("teacher", 0.25), ("student", 0.5)):
        (tmp_path / model).mkdir()
        (tmp_path / model / "scalars.csv").write_text(f"iteration,key,value\n3,val/f1,0.9\n6,val/f1,{value}\n6,lr,0.01\n")
    found = teacher_vs_student(tmp_path)
    assert found and found["below"] and (found["teacher_f1"], found["student_f1"]) == (0.25, 0.5)
    assert teacher_warning(found).startswith("WARNING: the teacher's validation F1 (25.0 %) is below the student's (50.0 %")
    (tmp_path / "student" / "scalars.csv").unlink()
    (tmp_path / "student" / "eval_test").mkdir()
    (tmp_path / "student" / "eval_test" / "f1.json").write_text(json.dumps({"f1": {"total": {"f1": 0.1}}}))
    (tmp_path / "teacher" / "eval_test").mkdir()
    (tmp_path / "teacher" / "eval_test" / "f1.json").write_text(json.dumps({"f1": {"total": {"f1": 0.3}}}))
    found = teacher_vs_student(tmp_path)
    assert found["split"] == "test" and not found["below"] and teacher_warning(found) is None


def test_the_warning_line_follows_the_training_stages(tmp_path, capsys):
    runs = tmp_path / "runs" / "culane-synth"
    lay, _ = resolve_layout("culane", None, "tiny", tmp_path)
    stages = {s.name: s for s in PIPELINE_STAGES}
    state = {}
    for model, f1 in (("teacher", 0.2), ("student", 0.4)):  # finished runs (outputs present, no inputs: fresh)
        (runs / model / "eval_test").mkdir(parents=True)
        (runs / model / "last.pt").write_bytes(b"")
        (runs / model / "eval_test" / "f1.json").write_text(json.dumps({"f1": {"total": {"f1": f1}}}))
        (runs / model / "train_summary.json").write_text(json.dumps({"last_val": {"val/f1": f1}}))
        state[model] = {"status": "done", "signature": stages[model].signature(lay)}
    (runs / "pipeline_state.json").write_text(json.dumps(state))
    assert run_main(["culane", "--profile", "tiny", "--base", str(tmp_path), "--no-extra-eval", "--only", "student"]) == 0
    lines = capsys.readouterr().out.splitlines()
    stage = next(i for i, line in enumerate(lines) if "student    up to date" in line)
    assert lines[stage + 1].startswith("WARNING: the teacher's validation F1 (20.0 %) is below the student's (40.0 %")
    assert read(runs / "pipeline_run.json")["extra_eval"] == []


def test_one_pipeline_per_folder_and_a_killed_runs_lock_is_taken_over(tiny_run, capsys):
    from pipeline.lock import FolderLock

    base, r = tiny_run
    assert r.returncode == 0
    path = base / "runs" / "culane-synth" / "pipeline.lock"
    assert path.read_text() == ""  # released at the end of the run
    held = FolderLock(path)  # another run holds it
    try:
        second = pipeline(*tiny_args(base), "--only", "summary", timeout=120)
    finally:
        held.release()
    lines = [line for line in second.stderr.splitlines() if line.strip()]
    assert second.returncode != 0 and len(lines) == 1 and "another pipeline is running in this folder (pid " in lines[0]
    path.write_text("pid 999999 on elsewhere, started 2026-12-07T00:00:00+00:00\n")  # a run killed before it could tidy up
    assert run_main([*tiny_args(base), "--only", "summary"]) == 0  # the run's own arguments: the summary stays fresh
    out = capsys.readouterr().out
    assert "summary    up to date" in out and "taking over the lock of a run that ended without releasing it (pid 999999 on elsewhere" in out
    assert path.read_text() == ""


def test_another_extra_set_makes_evaluate_and_summary_stale(tiny_run, tmp_path):
    base, r = tiny_run
    assert r.returncode == 0
    lay, _ = resolve_layout("culane", None, "tiny", base)
    state = read(lay.runs / "pipeline_state.json")
    stages = {s.name: s for s in PIPELINE_STAGES}
    root = base.parent / EXTRA
    (root / "list" / "night.txt").write_text("".join(f"{line}\n" for line in (root / "list" / "test.txt").read_text().split() if "night" in line))
    for specs, fresh in (([str(root)], True), ([f"{root}:list/night.txt"], False), ([str(root), str(root)], False), ([], False)):
        lay.extra_eval, _ = extra_eval.resolve(specs, use_default=False)
        for name in ("evaluate", "summary"):
            assert is_fresh(stages[name], lay, state[name]) is fresh, (specs, name)
        assert is_fresh(stages["video"], lay, state["video"])  # the rest does not care


def test_the_default_extra_sets_and_unique_names(tmp_path):
    default = write_two_drive_root_listed(tmp_path / "culane_real_dev", "all.txt")
    other = write_two_drive_root_listed(tmp_path / "culane_real_other", "all.txt")
    sets, line = extra_eval.resolve([], True, default_roots=(default, other))
    assert [s.name for s in sets] == ["culane_real_dev", "culane_real_other"] and sets[0].list == default / "list" / "all.txt"
    assert "culane_real_dev (4 images), culane_real_other (4 images)" in line and "--no-extra-eval" in line and "measurement only" in line
    assert extra_eval.resolve([], False, default_roots=(default,)) == ([], None)
    assert extra_eval.resolve([], True, default_roots=(tmp_path / "absent",)) == ([], None)
    (other / "list" / "all.txt").unlink()  # one default set unusable: the other is still scored, the line says why
    sets, line = extra_eval.resolve([], True, default_roots=(default, other))
    assert [s.name for s in sets] == ["culane_real_dev"] and "culane_real_other is unusable, left out" in line
    sets, _ = extra_eval.resolve([str(default), f"{default}:all.txt", f"{default}:{default / 'list' / 'all.txt'}"], True, default_roots=(default,))
    assert [s.name for s in sets] == ["culane_real_dev", "culane_real_dev-2", "culane_real_dev-3"]
    assert sets[0].list == default / "list" / "test.txt" and sets[1].list == sets[2].list == default / "list" / "all.txt"


def write_two_drive_root_listed(root: Path, list_name: str) -> Path:
    """Two drive folders of empty images (existence is all resolve checks), listed in list/test.txt and list/<list_name>."""
    lines = []
    for drive in DRIVES:
        (root / drive / "c.MP4").mkdir(parents=True)
        for k in range(2):
            (root / drive / "c.MP4" / f"{k}.jpg").write_bytes(b"")
            (root / drive / "c.MP4" / f"{k}.lines.txt").write_text("")
            lines.append(f"/{drive}/c.MP4/{k}.jpg\n")
    (root / "list").mkdir()
    for name in ("test.txt", list_name):
        (root / "list" / name).write_text("".join(lines))
    return root.resolve()


def test_a_bad_extra_set_is_one_line_before_any_stage(tmp_path):
    good = write_two_drive_root_listed(tmp_path / "good", "all.txt")
    (good / "list" / "empty.txt").write_text("\n")
    (good / "list" / "gap.txt").write_text(f"/{next(iter(DRIVES))}/c.MP4/7.jpg\n")
    cases = [(str(tmp_path / "nowhere"), str(tmp_path / "nowhere")), (f"{good}:list/none.txt", str(good / "list" / "none.txt")),
             (f"{good}:list/empty.txt", str(good / "list" / "empty.txt")), (f"{good}:gap.txt", "7.jpg")]
    for spec, named in cases:
        r = pipeline("culane", "--profile", "tiny", "--base", str(tmp_path / "out"), "--extra-eval", spec, timeout=60)
        assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("error: ") and named in r.stderr, (spec, r.stderr)
        assert r.stdout == "" and not (tmp_path / "out").exists()


def test_a_second_run_skips_every_stage(tiny_run):
    base, first = tiny_run
    assert first.returncode == 0
    r = pipeline(*tiny_args(base), timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    stage_lines = [line for line in r.stdout.splitlines() if line.startswith("[")]
    assert len(stage_lines) == len(STAGES)
    assert all("up to date" in line or "skipped:" in line for line in stage_lines), stage_lines


def test_a_forced_stage_reruns_and_later_stages_see_it(tiny_run):
    base, first = tiny_run
    assert first.returncode == 0
    r = pipeline(*tiny_args(base), "--only", "compare", "--force", timeout=120)
    assert r.returncode == 0 and "compare    done" in r.stdout
    r = pipeline(*tiny_args(base), "--from", "compare", timeout=120)
    assert r.returncode == 0 and "summary    done" in r.stdout  # the newer comparison makes the summary stale


def test_a_training_stage_resumes_only_the_run_it_started(tmp_path):
    """Interrupted with the same settings: resume. Other settings, newer data, or --force: start afresh."""
    lay, _ = resolve_layout("culane", None, "tiny", tmp_path)
    stage = {s.name: s for s in PIPELINE_STAGES}["student"]
    data = lay.data_root / "list" / "train_gt.txt"
    data.parent.mkdir(parents=True)
    data.write_text("")
    folder = lay.run_dir("student")
    assert restart_reason(stage, lay, {}, force=False) is None  # nothing to resume
    folder.mkdir(parents=True)
    (folder / "last.pt").write_bytes(b"")
    mine = {"status": "running", "signature": stage.signature(lay)}
    assert restart_reason(stage, lay, mine, force=False) is None  # killed mid-run: resume
    assert restart_reason(stage, lay, mine, force=True) == "--force"
    assert restart_reason(stage, lay, {**mine, "signature": "another profile"}, force=False) == "its settings changed"
    os.utime(data, (time.time() + 60, time.time() + 60))  # the dataset was regenerated after the checkpoint
    assert restart_reason(stage, lay, mine, force=False) == "its inputs are newer than its checkpoint"
    other = dict(lay.settings, student=["train.iterations=7"])
    assert stage.signature(replace(lay, settings=other)) != stage.signature(lay)
    assert {s.name: s for s in PIPELINE_STAGES}["data"].signature(replace(lay, settings=dict(lay.settings, data={"train": 1}))) != \
        {s.name: s for s in PIPELINE_STAGES}["data"].signature(lay)


def test_failures_name_the_stage_and_the_log(tmp_path):
    r = pipeline("culane", "--data-root", str(tmp_path / "nowhere"))
    assert r.returncode != 0 and "not a CULane-format dataset root" in r.stderr and "Traceback" not in r.stderr
    root = tmp_path / "empty culane"
    (root / "list").mkdir(parents=True)
    r = pipeline("culane", "--data-root", str(root), "--only", "teacher", "--base", str(tmp_path / "out"), timeout=300)
    assert r.returncode == 1
    assert "stage 'teacher' failed" in r.stderr and "teacher.log" in r.stderr
    assert (tmp_path / "out" / "runs" / "culane" / "logs" / "teacher.log").is_file()
