"""Distillation through the trainer and the comparison harness, end to end on tiny data."""
import csv
import json
from pathlib import Path

import pytest
import torch

from tests.helpers import small_run, torchrun_two_processes
from training.checkpoint import load_checkpoint
from training.config import load_config
from training.distributed import Dist
from training.experiments import load_experiment, paired_rows, run_grid, write_report
from training.loss_balance import TASK, measure
from training.loss_balance import main as loss_balance_main
from training.train import Trainer

CONFIG = "training/configs/synthetic/erfnet.yaml"


def small(root: Path, out: Path, *extra: str) -> list[str]:
    """A 3-iteration run (validated and checkpointed at its end)."""
    return small_run(root, out, "train.iterations=3", "train.warmup_iters=1", *extra)


def test_distilled_training_logs_each_term_and_resumes_the_discriminator(tiny_dataset, tmp_path):
    teacher = load_config(CONFIG, small(tiny_dataset, tmp_path / "t", "model.arch=pspnet", "model.depth=18", "model.head_channels=16"))
    Trainer(teacher, Dist()).run()
    distill = '{method: [intra_kd, at, skd], teacher: "%s"}' % (tmp_path / "t" / "last.pt")
    cfg = load_config(CONFIG, small(tiny_dataset, tmp_path / "s", "distill=" + distill))
    Trainer(cfg, Dist()).run(max_steps=2)
    mid = load_checkpoint(tmp_path / "s" / "last.pt")
    assert set(mid["distiller"]) == {"discriminator", "optimizer"}
    resumed = Trainer(cfg, Dist(), resume=True)
    for key, value in mid["distiller"]["discriminator"].items():
        assert (resumed.distiller.holistic.discriminator.state_dict()[key] == value).all()
    resumed.run()
    with open(tmp_path / "s" / "scalars.csv") as handle:
        keys = {row["key"] for row in csv.DictReader(handle)}
    assert {"distill/intra_kd", "distill/at", "distill/skd_pixel", "distill/skd_pair", "distill/skd_holistic", "loss/total"} <= keys


def test_experiment_grid_report_and_rerun(tiny_dataset, tmp_path):
    spec_path = tmp_path / "exp.yaml"
    student_overrides = small(tiny_dataset, tmp_path / "unused")[2:]  # all but dataset root / output dir
    spec = {
        "student": str(Path(CONFIG).resolve()),
        "teacher": str(Path("training/configs/synthetic/resnet_psp.yaml").resolve()),
        "seeds": [0, 1],
        "overrides": [f"dataset.root={tiny_dataset}"] + student_overrides,
        "teacher_overrides": [f"dataset.root={tiny_dataset}", "model.head_channels=16"] + student_overrides,
        "methods": {"baseline": None, "intra_kd": {"method": ["intra_kd", "at"]}, "at": {"method": ["at"]}},
        "runs_dir": str(tmp_path / "runs"),
        "report_dir": str(tmp_path / "reports"),
        "extra_eval": [f"{tiny_dataset}:val_gt.txt"],  # another set, scored on its own list
    }
    spec_path.write_text(json.dumps(spec))
    loaded = load_experiment(spec_path)
    results = run_grid(loaded)
    rows = write_report(results, tmp_path / "reports", "tiny")
    assert [r["algorithm"] for r in rows] == ["resnet18_psp (teacher)", "ERFNet (student alone)", "ERFNet-IntRA-KD (+AT)", "ERFNet-AT"]
    assert rows[1]["seeds"] == 2 and len(rows[1]["per_seed_total"]) == 2
    md = (tmp_path / "reports" / "distillation.md").read_text()
    assert "| T | resnet18_psp (teacher)" in md and "cross (FP)" in md
    paired = paired_rows(results)  # seed 0 and 1 of each: one paired row, its intervals around its point
    assert [r["algorithm"] for r in paired] == ["ERFNet-IntRA-KD (+AT)", "ERFNet-AT"] and "## paired difference to the student alone" in md
    assert "## paired difference to AT alone" in md  # IntRA-KD + AT against attention transfer alone
    assert paired[0]["seed_ci"][0] <= paired[0]["diff"] <= paired[0]["seed_ci"][1]
    assert paired[0]["image_ci"][0] <= paired[0]["pooled_diff"] <= paired[0]["image_ci"][1]
    extra = results["methods"]["intra_kd"][0]["extra"]["culane"]
    assert extra["list"].endswith("val_gt.txt") and extra["f1"]["total"]["images"] == 4
    assert "## culane (extra evaluation set" in md and "### culane: paired difference to the student alone" in md
    assert "## Methods" in md and "exact in float32" in md and "LGAD" not in md  # notes for the methods run, only
    assert (tmp_path / "reports" / "distillation.png").stat().st_size > 1000
    with open(tmp_path / "reports" / "distillation.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 4
    # the seeds differ, and the distilled runs really used the teacher
    s0 = load_checkpoint(tmp_path / "runs" / "baseline" / "seed0" / "last.pt")["model"]
    s1 = load_checkpoint(tmp_path / "runs" / "baseline" / "seed1" / "last.pt")["model"]
    assert any((s0[k] != s1[k]).any() for k in s0 if s0[k].is_floating_point())
    kd_cfg = load_checkpoint(tmp_path / "runs" / "intra_kd" / "seed0" / "last.pt")["config"]
    assert kd_cfg["distill"]["teacher"].endswith("teacher/best.pt")
    # a second run finds everything done and trains nothing
    logs = {p: p.read_text() for p in (tmp_path / "runs").rglob("train.log")}
    run_grid(loaded)
    assert {p: p.read_text() for p in logs} == logs
    # a partial invocation still reports every finished run of the grid
    partial = run_grid(loaded, only=["intra_kd"], seeds=[1])
    assert {k: sorted(v) for k, v in partial["methods"].items()} == {"baseline": [0, 1], "intra_kd": [0, 1], "at": [0, 1]}
    (tmp_path / "runs" / "baseline" / "seed1" / "train_summary.json").unlink()  # unfinished: not reported
    assert sorted(run_grid(loaded, only=["intra_kd"])["methods"]["baseline"]) == [0]


def test_each_method_alone_trains_a_step(tiny_dataset, tmp_path):
    # A method without feature taps (KD, SKD pixel) calls the teacher without taps: (seg, exist) only.
    teacher = load_config(CONFIG, small(tiny_dataset, tmp_path / "t", "model.arch=pspnet", "model.depth=18", "model.head_channels=16",
                                        "train.iterations=1", "train.val_every=1", "train.checkpoint_every=1"))
    Trainer(teacher, Dist()).run()
    for methods in (["kd"], ["at"], ["skd_pixel"], ["intra_kd"]):
        name = "_".join(methods)
        distill = '{method: %s, teacher: "%s"}' % (json.dumps(methods), tmp_path / "t" / "last.pt")
        cfg = load_config(CONFIG, small(tiny_dataset, tmp_path / name, "distill=" + distill, "train.iterations=1",
                                        "train.val_every=1", "train.checkpoint_every=1"))
        summary = Trainer(cfg, Dist()).run()
        assert summary["completed"], name
        with open(tmp_path / name / "scalars.csv") as handle:
            assert any(row["key"] == f"distill/{methods[0]}" for row in csv.DictReader(handle)), name


def test_loss_balance_measures_each_term_against_the_task(tiny_dataset, tmp_path, capsys):
    teacher = load_config(CONFIG, small(tiny_dataset, tmp_path / "t", "model.arch=pspnet", "model.depth=18", "model.head_channels=16",
                                        "train.iterations=1", "train.val_every=1", "train.checkpoint_every=1"))
    Trainer(teacher, Dist()).run()
    measured = {}
    for weight in (0.1, 1.0):
        distill = '{method: [intra_kd, at], teacher: "%s", weights: {intra_kd: %s}}' % (tmp_path / "t" / "last.pt", weight)
        measured[weight] = measure(load_config(CONFIG, small(tiny_dataset, tmp_path / "s", "distill=" + distill)), None, batches=2)
    low, high = measured[0.1], measured[1.0]
    assert set(low) == {TASK, "distill/intra_kd", "distill/at"}
    assert low[TASK]["grad_norm"] > 0  # same batches: the weights leave the task term alone
    assert high[TASK]["grad_norm"] == pytest.approx(low[TASK]["grad_norm"], rel=1e-6)
    # same batches and initialisation: the weighted term's gradient scales with its weight, the others not
    # (to float rounding: the run may use bfloat16 autocast, whose steps differ at 1e-4 between the two weights)
    assert high["distill/intra_kd"]["relative_norm"] == pytest.approx(10 * low["distill/intra_kd"]["relative_norm"], rel=1e-3)
    assert high["distill/at"]["grad_norm"] == pytest.approx(low["distill/at"]["grad_norm"], rel=1e-5)
    assert 0 < low["distill/intra_kd"]["relative_norm"] and -1 <= low["distill/at"]["cosine_with_task"] <= 1
    # the command line: a config that distils nothing is refused in one line
    plain = tmp_path / "plain.yaml"
    plain.write_text(f"dataset: {{root: {tiny_dataset}}}\n")
    assert loss_balance_main(["--config", str(plain), "--init"]) == 2
    assert "distils nothing" in capsys.readouterr().err


def tiny_teacher(root: Path, out: Path) -> Path:
    """A 3-iteration ResNet-18 + PSP teacher (its features are what matters, not its accuracy)."""
    Trainer(load_config(CONFIG, small(root, out, "model.arch=pspnet", "model.depth=18", "model.head_channels=16")), Dist()).run()
    return out / "last.pt"


def test_a_killed_and_resumed_distillation_equals_an_uninterrupted_one(tiny_dataset, tmp_path):
    """Bit for bit, student, optimiser and SKD's discriminator: IntRA-KD + AT + SKD over 4 steps, killed after 2."""
    teacher = tiny_teacher(tiny_dataset, tmp_path / "t")
    distill = "distill={method: [intra_kd, at, skd], teacher: \"%s\"}" % teacher
    extra = (distill, "train.iterations=4", "train.checkpoint_every=2", "train.val_every=4")
    whole = load_config(CONFIG, small(tiny_dataset, tmp_path / "whole", *extra))
    Trainer(whole, Dist()).run()
    parts = load_config(CONFIG, small(tiny_dataset, tmp_path / "parts", *extra))
    Trainer(parts, Dist()).run(max_steps=2)  # the "kill": the run stops after its step-2 checkpoint
    assert load_checkpoint(tmp_path / "parts" / "last.pt")["iteration"] == 2
    Trainer(parts, Dist(), resume=True).run()
    a, b = load_checkpoint(tmp_path / "whole" / "last.pt"), load_checkpoint(tmp_path / "parts" / "last.pt")
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    for key, value in a["distiller"]["discriminator"].items():
        assert torch.equal(value, b["distiller"]["discriminator"][key]), key


def test_distillation_under_two_process_ddp_equals_one_process(tiny_dataset, tmp_path):
    """IntRA-KD + AT with 2 CPU processes (torchrun, gloo) against one process on the same 4-image
    batches: equal to float rounding (BatchNorm frozen, no dropout, SGD, float32: see
    test_train.test_two_process_ddp_matches_one_process for why)."""
    teacher = tiny_teacher(tiny_dataset, tmp_path / "t")
    extra = ("distill={method: [intra_kd, at], teacher: \"%s\"}" % teacher, "model.freeze_bn=true", "model.dropout=0.0",
             "train.batch_size=4", "train.iterations=2", "train.optimizer=sgd", "train.cpu_bf16=false", "train.lr=0.01",
             "train.warmup_iters=1", "train.val_every=2", "train.checkpoint_every=2")
    Trainer(load_config(CONFIG, small(tiny_dataset, tmp_path / "one", *extra)), Dist()).run()
    torchrun_two_processes(CONFIG, small(tiny_dataset, tmp_path / "two", *extra))
    a, b = load_checkpoint(tmp_path / "one" / "last.pt")["model"], load_checkpoint(tmp_path / "two" / "last.pt")["model"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)
    with open(tmp_path / "two" / "scalars.csv") as handle:
        terms = {row["key"]: float(row["value"]) for row in csv.DictReader(handle) if row["key"].startswith("distill/")}
    assert terms.get("distill/intra_kd", 0) > 0 and terms.get("distill/at", 0) > 0  # the terms really entered the steps


def test_one_seed_gives_every_method_the_same_start_and_data_order(tiny_dataset, tmp_path):
    """The pairing the comparison relies on: with the same seed, a distilled and a plain student
    start from the same weights and see the same batches (a distiller built later draws no
    numbers before the student's initialisation)."""
    teacher = tiny_teacher(tiny_dataset, tmp_path / "t")
    distill = "distill={method: [intra_kd, at, skd], teacher: \"%s\"}" % teacher
    plain = Trainer(load_config(CONFIG, small(tiny_dataset, tmp_path / "a", "train.seed=5")), Dist())
    distilled = Trainer(load_config(CONFIG, small(tiny_dataset, tmp_path / "b", "train.seed=5", distill)), Dist())
    other = Trainer(load_config(CONFIG, small(tiny_dataset, tmp_path / "c", "train.seed=6")), Dist())
    a, b, c = (t.model.state_dict() for t in (plain, distilled, other))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    first = lambda t: t.train_set[0][1]  # noqa: E731  (augmented label of sample 0, epoch 0)
    assert torch.equal(torch.as_tensor(first(plain)), torch.as_tensor(first(distilled)))
