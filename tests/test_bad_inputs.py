"""Bad inputs through the command lines, as a new user makes them: one ``error:`` line naming the
file and the problem, a non-zero exit, no traceback, nothing half-written.

One test per row of the table in the issue "Every command refuses bad input before it works",
the up-front scan of training lists, the truncated-checkpoint message, and a walk over every
command's ``--help`` and a missing input file.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

from runtime.culane import read_list

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


# -- helpers ----------------------------------------------------------------------------------
def cli(*args: str, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """``python -m <args>`` (or a script path) in a fresh process."""
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd or ROOT, env=ENV)


def one_error_line(proc: subprocess.CompletedProcess, *needles: str | os.PathLike[str]) -> str:
    """Assert: non-zero exit, exactly one non-blank stderr line, no traceback, each needle in it."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode not in (0, None), proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr
    for needle in needles:
        assert str(needle) in lines[0], lines[0]
    return lines[0]


def leftovers(folder: Path) -> list[str]:
    """Every file or folder under ``folder`` (relative, sorted)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def small_root(tiny_dataset: Path, dest: Path, n: int = 4) -> Path:
    """A CULane-format root with the first ``n`` test images of the tiny dataset and ``list/test.txt``."""
    samples = read_list(tiny_dataset / "list" / "test.txt").samples[:n]
    for sample in samples:
        for rel in (sample.image, sample.lines_name):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(tiny_dataset / rel, dest / rel)
    (dest / "list").mkdir(parents=True, exist_ok=True)
    (dest / "list" / "test.txt").write_text("".join(f"/{s.image}\n" for s in samples))
    return dest


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _writable(folder: Path) -> bool:
    try:
        (folder / ".probe").write_text("x")
    except OSError:
        return False
    (folder / ".probe").unlink()
    return True


@pytest.fixture
def readonly_dir(tmp_path: Path):
    """A folder nothing can be written in: mode 555, or for root (who ignores modes) a read-only tmpfs."""
    folder = tmp_path / "readonly"
    folder.mkdir()
    folder.chmod(0o555)
    if not _writable(folder):
        yield folder
        folder.chmod(0o755)
        return
    folder.chmod(0o755)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0 or _writable(folder):
        pytest.skip("cannot make a read-only folder here (running as root without mount rights)")
    yield folder
    subprocess.run(["umount", str(folder)], capture_output=True)


@pytest.fixture
def plain_file(tmp_path: Path) -> Path:
    path = tmp_path / "plain.txt"
    path.write_text("a regular file\n")
    return path


@pytest.fixture(scope="module")
def root4(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_root(tiny_dataset, tmp_path_factory.mktemp("root4"))


def evaluate(model: Path, root: Path, *extra: str) -> subprocess.CompletedProcess:
    return cli("-m", "runtime.evaluate", "--model", str(model), "--data-root", str(root), "--list", "test.txt", *extra)


# -- runtime.evaluate -------------------------------------------------------------------------
def test_truncated_jpeg_is_refused_naming_the_file_or_skipped_and_listed(tiny_onnx, tiny_dataset, tmp_path):
    root = small_root(tiny_dataset, tmp_path / "root")
    bad = root / read_list(root / "list" / "test.txt").samples[1].image
    truncate(bad)
    report = tmp_path / "out" / "report.json"
    line = one_error_line(evaluate(tiny_onnx, root, "--report", str(report)), bad, "truncated JPEG", "--skip-bad")
    assert "Premature end" not in line and not report.exists()

    proc = evaluate(tiny_onnx, root, "--report", str(report), "--skip-bad")
    assert proc.returncode == 0, proc.stderr
    assert "Premature end of JPEG" not in proc.stderr  # never handed to libjpeg
    assert f"skipped: {bad}" in proc.stderr and "1 of 4 images skipped" in proc.stderr
    record = json.loads(report.read_text())
    assert [s["image"] for s in record["skipped"]] == [str(bad.relative_to(root))]
    assert record["lists"]["total"]["images"] == 3


def test_training_evaluate_sends_frames_of_another_size_to_the_runtime(tiny_checkpoint, tiny_dataset, tmp_path, capsys):
    """runtime.evaluate scores frames of any size (tests/runtime/test_any_frame_size.py); training.evaluate
    reads the model's source geometry only and says where to go, in one line naming the frame."""
    root = small_root(tiny_dataset, tmp_path / "root")
    first = root / read_list(root / "list" / "test.txt").samples[0].image
    image = cv2.imread(str(first))
    cv2.imwrite(str(first), cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2)))
    from training import evaluate as training_evaluate

    code = training_evaluate.main(["--ckpt", str(tiny_checkpoint), "--data-root", str(root), "--list", "test.txt", "--out", str(tmp_path / "out")])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code != 0 and len(err) == 1
    assert str(first) in err[0] and f"frame is {image.shape[1] // 2}x{image.shape[0] // 2}" in err[0] and "runtime.evaluate" in err[0]


@pytest.mark.parametrize("command", ["runtime.evaluate_culane", "runtime.evaluate"])
def test_an_empty_default_list_is_left_out_and_said_the_others_scored(command, tiny_dataset, tiny_onnx, tmp_path, capsys):
    from runtime import evaluate, evaluate_culane

    root = tmp_path / "root"
    shutil.copytree(tiny_dataset, root, ignore=shutil.ignore_patterns("*.png", "driver_synth_train", "driver_synth_val"))
    splits = sorted((root / "list" / "test_split").glob("test*_*.txt"))
    night = next(p for p in splits if p.name.endswith("_night.txt"))
    night.write_text("")
    (tmp_path / "pred").mkdir()
    if command == "runtime.evaluate_culane":
        code = evaluate_culane.main(["--data-root", str(root), "--pred-dir", str(tmp_path / "pred"), "--workers", "1"])
    else:
        code = evaluate.main(["--model", str(tiny_onnx), "--data-root", str(root), "--threads", "1"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"warning: {night}: the list names no images: 'night' left out" in err
    assert not any(line.startswith("night") for line in out.splitlines()) and any(line.startswith("normal") for line in out.splitlines())
    for path in splits:
        path.write_text("")
    assert evaluate_culane.main(["--data-root", str(root), "--pred-dir", str(tmp_path / "pred")]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "every default list is empty" in err[0]


@pytest.mark.parametrize("command", ["runtime.evaluate", "runtime.evaluate_culane"])
def test_an_empty_list_is_refused(command, tiny_onnx, root4, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    if command == "runtime.evaluate":
        proc = cli("-m", command, "--model", str(tiny_onnx), "--data-root", str(root4), "--list", str(empty))
    else:
        (tmp_path / "pred").mkdir()
        proc = cli("-m", command, "--data-root", str(root4), "--pred-dir", str(tmp_path / "pred"), "--list", str(empty))
    one_error_line(proc, empty, "names no images")


@pytest.mark.parametrize("value", ["-3", "0", "two"])
def test_max_images_must_be_a_positive_count(value, tiny_onnx, root4):
    one_error_line(evaluate(tiny_onnx, root4, "--max-images", value), "--max-images", value)


@pytest.mark.parametrize("option", ["--report", "--pred-dir"])
@pytest.mark.parametrize("where", ["readonly", "under_a_file"])
def test_unwritable_outputs_are_refused_before_any_inference(option, where, tiny_onnx, root4, tmp_path, request):
    parent = request.getfixturevalue("readonly_dir") if where == "readonly" else request.getfixturevalue("plain_file")
    target = parent / ("r.json" if option == "--report" else "pred")
    before = leftovers(tmp_path)
    proc = evaluate(tiny_onnx, root4, option, str(target))
    one_error_line(proc, target, "not writable" if where == "readonly" else "is a file")
    assert proc.stdout == ""  # no table: nothing was evaluated
    assert leftovers(tmp_path) == before


def test_a_list_naming_a_missing_image_is_refused_before_any_prediction_is_written(tiny_onnx, tiny_dataset, tmp_path):
    root = small_root(tiny_dataset, tmp_path / "root")
    listing = root / "list" / "test.txt"
    listing.write_text(listing.read_text() + "/driver_99/gone.MP4/00000.jpg\n")
    pred = tmp_path / "pred"
    one_error_line(evaluate(tiny_onnx, root, "--pred-dir", str(pred)), listing, ":5", "gone.MP4/00000.jpg", "not found")
    assert not pred.exists()


def test_a_failure_mid_run_leaves_no_prediction_folder_and_success_fills_it(tiny_onnx, tiny_dataset, tmp_path):
    root = small_root(tiny_dataset, tmp_path / "root")
    samples = read_list(root / "list" / "test.txt").samples
    truncate(root / samples[-1].image)  # found only when read: after the first predictions were made
    pred = tmp_path / "deep" / "pred"
    one_error_line(evaluate(tiny_onnx, root, "--pred-dir", str(pred)), samples[-1].image)
    assert not (tmp_path / "deep").exists()
    assert evaluate(tiny_onnx, root, "--pred-dir", str(pred), "--skip-bad").returncode == 0
    assert sorted(p.relative_to(pred).as_posix() for p in pred.rglob("*.lines.txt")) == sorted(s.lines_name for s in samples[:-1])
    assert not [p for p in pred.parent.iterdir() if p.name.startswith(".")]  # no staging folder left


@pytest.mark.parametrize("case", ["pred_dir_is_data_root", "report_is_sidecar", "json_is_sidecar"])
def test_outputs_never_overwrite_inputs(case, tiny_onnx, tiny_dataset, tmp_path):
    root = small_root(tiny_dataset, tmp_path / "root")
    model = tmp_path / "m.onnx"
    shutil.copy(tiny_onnx, model)
    shutil.copy(f"{tiny_onnx}.json", f"{model}.json")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    if case == "json_is_sidecar":
        proc = cli("-m", "runtime.benchmark", "--model", str(model), "--json", f"{model}.json", "--iterations", "2")
    else:
        option = ["--pred-dir", str(root)] if case == "pred_dir_is_data_root" else ["--report", f"{model}.json"]
        proc = evaluate(model, root, *option)
    one_error_line(proc, "would overwrite an input")
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


# -- runtime.benchmark: the sidecar against the model's own graph ------------------------------
@pytest.mark.parametrize("edit", ["whole_size", "input_shape_only"])
def test_a_sidecar_edited_to_another_size_is_named(edit, tiny_onnx, tmp_path):
    model = tmp_path / "student.onnx"
    shutil.copy(tiny_onnx, model)
    sidecar = json.loads(Path(f"{tiny_onnx}.json").read_text())
    sidecar["input"]["shape"] = [1, 3, 64, 256]
    if edit == "whole_size":  # a consistent sidecar of another export
        sidecar["preprocess"].update(net_height=64, net_width=256)
    Path(f"{model}.json").write_text(json.dumps(sidecar))
    line = one_error_line(cli("-m", "runtime.benchmark", "--model", str(model), "--iterations", "2", "--warmup", "0"),
                          f"{model}.json", "input.shape")
    assert ("student.onnx has [1, 3, 32, 128]" in line) == (edit == "whole_size"), line
    assert ("preprocess" in line) == (edit == "input_shape_only"), line


# -- infer_video ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (160, 90))
    for i in range(5):
        writer.write(np.full((90, 160, 3), 40 * i, np.uint8))
    writer.release()
    return path


def infer_video(model: Path, video: Path, out: Path | None, report: Path) -> subprocess.CompletedProcess:
    outs = ["--out", str(out)] if out else ["--no-video"]
    return cli(str(ROOT / "runtime" / "infer_video.py"), "--model", str(model), "--video", str(video), *outs, "--report", str(report))


def test_video_out_under_a_regular_file_is_named(tiny_onnx, video, plain_file, tmp_path):
    out = plain_file / "out.mp4"
    report = tmp_path / "r.json"
    one_error_line(infer_video(tiny_onnx, video, out, report), out, "is a file")
    assert not report.exists()


def test_video_report_that_cannot_be_written_is_found_before_the_video(tiny_onnx, video, readonly_dir, tmp_path):
    out, report = tmp_path / "out.mp4", readonly_dir / "r.json"
    one_error_line(infer_video(tiny_onnx, video, out, report), report, "not writable")
    assert not out.exists()


def test_a_still_image_as_video_is_refused(tiny_onnx, tiny_dataset, tmp_path):
    image = tmp_path / "frame.mp4"  # a JPEG, whatever its name
    shutil.copy(tiny_dataset / read_list(tiny_dataset / "list" / "test.txt").samples[0].image, image)
    one_error_line(infer_video(tiny_onnx, image, tmp_path / "o.mp4", tmp_path / "r.json"), image, "still JPEG image")
    assert leftovers(tmp_path) == ["frame.mp4"]


# -- compare_latency --------------------------------------------------------------------------
def _report(path: Path, role: str | None, shape: list[int], p50: float) -> Path:
    records = [{"host": p50 * (1 + 0.01 * i)} for i in range(5)]
    stats = {"p50": p50, "p90": p50, "p99": p50, "mean": p50}
    meta = {"backend": "onnxruntime", "device": "cpu", "role": role, "input_shape": shape}
    path.write_text(json.dumps({"kind": "benchmark", "latency_key": "host", "meta": meta, "summary": {"host": stats}, "records": records}))
    return path


@pytest.mark.parametrize("case", ["sizes", "two_students", "swapped"])
def test_compare_latency_refuses_what_is_not_teacher_vs_student(case, tmp_path):
    teacher = _report(tmp_path / "t.json", "teacher", [1, 3, 64, 320], 20.0)
    student = _report(tmp_path / "s.json", "student", [1, 3, 64, 320], 5.0)
    args = {"sizes": (teacher, _report(tmp_path / "small.json", "student", [1, 3, 32, 128], 1.0)),
            "two_students": (_report(tmp_path / "s2.json", "student", [1, 3, 64, 320], 6.0), student),
            "swapped": (student, teacher)}[case]
    out = tmp_path / "cmp" / "latency.md"
    expected = {"sizes": (args[1], "3x32x128", "3x64x320"), "two_students": (args[1], "both"), "swapped": (args[0], "TEACHER.json first")}
    one_error_line(cli("-m", "runtime.compare_latency", str(args[0]), str(args[1]), "--out", str(out)), *expected[case])
    assert not out.parent.exists()


# -- training ---------------------------------------------------------------------------------
def _training_root(tiny_dataset: Path, dest: Path) -> Path:
    shutil.copytree(tiny_dataset, dest)
    return dest


def test_training_finds_a_bad_label_before_its_first_step(tiny_dataset, tmp_path):
    root = _training_root(tiny_dataset, tmp_path / "data")
    sample = read_list(root / "list" / "train_gt.txt").samples[7]
    label = cv2.imread(str(root / sample.label), cv2.IMREAD_UNCHANGED)
    label[5, 5] = 9
    cv2.imwrite(str(root / sample.label), label)
    out = tmp_path / "run"
    proc = cli("-m", "training.train", "--config", "training/configs/synthetic/erfnet.yaml", "--set", f"dataset.root={root}",
               "--set", f"output.dir={out}", "--set", "train.iterations=2", "--set", "dataset.num_workers=0")
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert last.startswith("error: ") and str(root / sample.label) in last and "label values [9]" in last, last
    assert not out.exists()  # found before the run folder was made


def test_training_with_skip_bad_leaves_bad_samples_out_and_lists_them(tiny_dataset, tmp_path, caplog):
    from tests.helpers import TINY_TRAIN
    from training.config import load_config
    from training.distributed import Dist
    from training.train import Trainer

    root = _training_root(tiny_dataset, tmp_path / "data")
    samples = read_list(root / "list" / "train_gt.txt").samples
    truncate(root / samples[2].image)
    (root / samples[4].label).unlink()
    cfg = load_config(ROOT / "training/configs/synthetic/erfnet.yaml",
                      [f"dataset.root={root}", f"output.dir={tmp_path / 'run'}", "dataset.skip_bad=true", *TINY_TRAIN])
    with caplog.at_level("WARNING", logger="training.train"):
        trainer = Trainer(cfg, Dist())
    assert [s.image for s in trainer.train_set.samples] == [s.image for i, s in enumerate(samples) if i not in (2, 4)]
    assert "skipped 2 of 12 samples" in caplog.text and samples[2].image in caplog.text and samples[4].label in caplog.text


def test_training_refuses_a_batch_larger_than_its_dataset_before_the_run_folder_exists(tiny_dataset, tmp_path):
    out = tmp_path / "run"
    sets = [f"dataset.root={tiny_dataset}", f"output.dir={out}", "train.batch_size=16", "train.iterations=2",
            "input.net_width=128", "input.net_height=32", "dataset.num_workers=0"]
    proc = cli("-m", "training.train", "--config", "training/configs/synthetic/erfnet.yaml", *[a for s in sets for a in ("--set", s)])
    one_error_line(proc, "train_gt.txt", "12 training samples, fewer than one batch of 16")
    assert not out.exists()


def test_a_number_that_is_not_a_number_is_refused_with_its_key(tiny_onnx, tmp_path):
    from runtime.artifacts import read_sidecar
    from runtime.errors import DataError
    from training.config import ConfigError, load_config

    model = tmp_path / "m.onnx"
    shutil.copy(tiny_onnx, model)
    sidecar = json.loads(Path(f"{tiny_onnx}.json").read_text())
    sidecar["preprocess"]["mean"][0] = float("nan")
    Path(f"{model}.json").write_text(json.dumps(sidecar))  # Python writes NaN, as a hand edit might
    with pytest.raises(DataError, match=r"m\.onnx\.json: preprocess\.mean\[0\]: nan"):
        read_sidecar(model)  # every reader of a model: evaluate, benchmark, infer_video, ...
    config = tmp_path / "c.yaml"
    config.write_text("base: " + str(ROOT / "training/configs/synthetic/erfnet.yaml") + "\ntrain:\n  lr: .inf\n")
    with pytest.raises(ConfigError, match=r"train\.lr: inf"):
        load_config(config)


def test_a_thread_count_over_the_cores_is_clamped_and_said(tiny_onnx, capsys):
    """--threads is a hint: 100000 would make ONNX Runtime create the threads (7.7 GB and growing)."""
    from runtime.affinity import usable_cores
    from runtime.backends import load_backend

    backend = load_backend(tiny_onnx, "onnxruntime", "cpu", 100000)  # what every --threads option reaches
    cores = usable_cores()
    assert f"warning: 100000 threads asked for, {cores} usable CPU cores here: using {cores}" in capsys.readouterr().err
    assert backend.settings["threads"] == cores


def test_resume_from_a_truncated_checkpoint_says_so(tiny_checkpoint, tmp_path):
    from training.checkpoint import load_checkpoint
    from runtime.errors import DataError

    broken = tmp_path / "last.pt"
    broken.write_bytes(tiny_checkpoint.read_bytes()[:-5000])
    with pytest.raises(DataError, match="truncated"):
        load_checkpoint(broken)


# -- every command: --help, and a missing input file -----------------------------------------
COMMANDS = {
    # module: arguments naming a missing input (MISSING) and outputs under OUT
    "runtime.evaluate": ["--model", "MISSING.onnx", "--data-root", "OUT"],
    "runtime.evaluate_culane": ["--data-root", "OUT", "--pred-dir", "MISSING"],
    "runtime.evaluate_shifts": ["--model", "MISSING.onnx", "--data-root", "OUT"],
    "lanedata.apolloscape.evaluate": ["--data-root", "MISSING", "--list", "OUT/l.txt", "--pred-dir", "OUT"],
    "lanedata.tusimple.evaluate": ["--pred", "MISSING.json", "--gt", "MISSING.json"],
    "lanedata.llamas.evaluate": ["--labels-root", "MISSING", "--pred-root", "OUT"],
    "runtime.benchmark": ["--model", "MISSING.onnx"],
    "runtime.infer_video": ["--model", "OUT/m.onnx", "--video", "MISSING.mp4", "--report", "OUT/r.json", "--no-video"],
    "runtime.compare_latency": ["MISSING.json", "MISSING.json", "--out", "OUT/x.md"],
    "runtime.contact_sheet": ["--model", "MISSING.onnx", "--data-root", "OUT", "--out", "OUT/x.png"],
    "calibration.calibrate": ["--onnx", "MISSING.onnx", "--data-root", "OUT", "--out", "OUT/x.onnx"],
    "export.to_onnx": ["--ckpt", "MISSING.pt", "--out", "OUT/x.onnx"],
    "export.to_fp16": ["--onnx", "MISSING.onnx"],
    "export.to_tensorrt": ["--onnx", "MISSING.onnx", "--out", "OUT/x.engine"],
    "export.modelopt_int8": ["--onnx", "MISSING.onnx", "--data-root", "OUT", "--out", "OUT/x.onnx"],
    "training.train": ["--config", "MISSING.yaml"],
    "training.evaluate": ["--ckpt", "MISSING.pt"],
    "training.loss_balance": ["--config", "MISSING.yaml"],
    "training.experiments": ["--config", "MISSING.yaml"],
    "lanedata.synthetic": ["--out", "MISSING/ds"],  # MISSING is made a regular file below
    "lanedata.labels.make_labels": ["--data-root", "MISSING", "--list", "train.txt"],
    "lanedata.tusimple.convert": ["--tusimple-root", "MISSING", "--label-json", "label_data_0313.json", "--out-root", "OUT/r"],
    "lanedata.apolloscape.convert": ["--apollo-root", "MISSING", "--list", "train=MISSING/train.txt", "--out-root", "OUT/r"],
    "lanedata.llamas.convert": ["--llamas-root", "MISSING", "--split", "train", "--out-root", "OUT/r"],
    "lanedata.llamas.predict": ["--model", "OUT/m.onnx", "--llamas-root", "MISSING", "--pred-root", "OUT/p"],
    "lanedata.tusimple.predict": ["--model", "OUT/m.onnx", "--tusimple-root", "OUT", "--gt", "MISSING.json", "--out", "OUT/p.json"],
    "pipeline.subset": ["--source", "MISSING", "--out", "OUT/view", "--train", "2", "--val", "1", "--test-per-category", "1"],
    "pipeline.run": ["culane", "--data-root", "MISSING"],
    "pipeline.summary": ["--dataset", "x", "--data-root", "MISSING", "--profile", "tiny", "--base", "OUT"],
}


@pytest.mark.parametrize("args, needle", [(["kitti"], "invalid choice: 'kitti'"), (["culane", "--data-root", ""], "--data-root"),
                                         (["culane", "--extra-eval", " "], "--extra-eval")])
def test_the_pipeline_refuses_an_unknown_dataset_or_an_empty_option_before_any_work(args, needle, tmp_path):
    """A typo is not a 28-minute synthetic run named after it, and an unset variable is not "not given"."""
    proc = cli("-m", "pipeline.run", *args, "--base", str(tmp_path))
    line = one_error_line(proc, needle)
    assert proc.returncode == 2 and ("culane" in line if "kitti" in args else "empty value" in line)
    assert not any(tmp_path.iterdir())  # nothing written


def test_every_command_has_help_and_refuses_a_missing_input_in_one_line(tmp_path):
    def check(module: str) -> tuple[str, str | None]:
        out = tmp_path / module
        out.mkdir()
        help_run = cli("-m", module, "--help")
        if help_run.returncode != 0 or "usage:" not in help_run.stdout:
            return module, f"--help: exit {help_run.returncode}: {help_run.stderr[-300:]}"
        target = str(tmp_path / module / "missing")
        if module == "lanedata.synthetic":
            Path(target).write_text("")
        args = [a.replace("MISSING", target).replace("OUT", str(out)) for a in COMMANDS[module]]
        proc = cli("-m", module, *args)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        ok = proc.returncode != 0 and len(lines) == 1 and "Traceback" not in proc.stderr and target in lines[0]
        return module, None if ok else f"exit {proc.returncode}: {proc.stderr[-400:]}"

    with ThreadPoolExecutor(max_workers=4) as pool:
        failures = [f"{m}: {why}" for m, why in pool.map(check, COMMANDS) if why]
    assert not failures, "\n".join(failures)


# -- resource limits: one rule (runtime/resources.py) -----------------------------------------------
@pytest.fixture
def small_machine(monkeypatch):
    """A machine with 64 MiB of memory available (what /proc/meminfo would say on a small board)."""
    import runtime.resources

    monkeypatch.setattr(runtime.resources, "available_memory", lambda: 64 * 2**20)


def test_a_batch_that_cannot_fit_in_memory_is_refused_before_any_work(tiny_onnx, root4, tmp_path, capsys):
    from runtime import benchmark
    from runtime import evaluate as runtime_evaluate
    from runtime.errors import DataError

    report = tmp_path / "r.json"
    # real memory: 10^8 images at the model's input cannot fit on any machine that runs these tests
    assert runtime_evaluate.main(["--model", str(tiny_onnx), "--data-root", str(root4), "--batch-size", "100000000",
                                  "--report", str(report)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "--batch-size 100000000" in err and "memory available here" in err and "\n" not in err
    assert not report.exists()
    with pytest.raises(DataError, match=r"--batch 100000000: .* of memory available here: at most \d+"):
        benchmark.benchmark(str(tiny_onnx), backend="onnxruntime", device="cpu", iterations=1, warmup=0, batch=100000000)


def test_counts_that_hold_images_are_checked_against_the_memory_available(tiny_onnx, tiny_dataset, small_machine, tmp_path, capsys):
    from export import modelopt_int8
    from runtime import contact_sheet

    out = tmp_path / "int8.onnx"
    code = modelopt_int8.main(["--onnx", str(tiny_onnx), "--data-root", str(tiny_dataset), "--num-images", "5000", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--num-images 5000" in err and "64.0 MiB of memory available here" in err and "\n" not in err
    assert not out.exists()
    sheet = tmp_path / "sheet.png"
    code = contact_sheet.main(["--model", str(tiny_onnx), "--data-root", str(tiny_dataset), "--list", "train_gt.txt",
                               "--frames", "12", "--out", str(sheet)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--frames 12" in err and "\n" not in err and not sheet.exists()


def test_training_sizes_are_checked_before_the_run_folder(tiny_dataset, tmp_path):
    out = tmp_path / "run"
    sets = [f"dataset.root={tiny_dataset}", f"output.dir={out}", "train.batch_size=100000000", "train.iterations=2",
            "input.net_width=128", "input.net_height=32", "dataset.num_workers=0"]
    proc = cli("-m", "training.train", "--config", "training/configs/synthetic/erfnet.yaml", *[a for s in sets for a in ("--set", s)])
    one_error_line(proc, "train_gt.txt", "train.batch_size 100000000", "memory available here")
    assert not out.exists()


def test_worker_and_thread_counts_over_the_cores_are_clamped_and_said(tiny_dataset, tmp_path, capsys):
    from runtime.affinity import usable_cores
    from runtime.resources import worker_count
    from training.config import load_config
    from training.distributed import Dist
    from training.train import Trainer

    cores = usable_cores()
    assert worker_count("999") == cores and worker_count("1") == 1
    assert f"warning: 999 workers asked for, {cores} usable CPU cores here: using {cores}" in capsys.readouterr().err
    with pytest.raises(Exception, match="expected an integer >= 1"):
        worker_count("0")
    cfg = load_config(ROOT / "training/configs/synthetic/erfnet.yaml",
                      [f"dataset.root={tiny_dataset}", f"output.dir={tmp_path / 'run'}", "train.batch_size=2", "input.net_width=128",
                       "input.net_height=32", "dataset.num_workers=64", "train.threads=512"])
    trainer = Trainer(cfg, Dist())
    assert (trainer.config["dataset"]["num_workers"], trainer.config["train"]["threads"]) == (cores, cores)
    err = capsys.readouterr().err
    assert "64 dataset.num_workers asked for" in err and "512 train.threads asked for" in err


def test_a_report_with_a_number_that_is_not_a_number_is_left_out_of_the_summary_and_said(tmp_path, capsys):
    from pipeline.report import read_json

    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps({"summary": {"p50": 1.5}}))
    bad.write_text(json.dumps({"summary": {"host": {"p50": float("inf")}}}))
    assert read_json(good) == {"summary": {"p50": 1.5}} and read_json(bad) is None
    assert f"{bad}: summary.host.p50: inf" in capsys.readouterr().err
