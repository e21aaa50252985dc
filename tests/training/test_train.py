import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers import small_run, torchrun_two_processes
from training.checkpoint import load_checkpoint
from training.config import ConfigError, load_config
from training.distributed import Dist
from training.sampling import IterationBatchSampler
from training.schedule import poly_warmup
from training.train import Trainer

CONFIG = "training/configs/synthetic/erfnet.yaml"


small = small_run


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model"]


def test_union_of_process_batches_is_the_single_process_batch():
    single = IterationBatchSampler(10, 4, 7, seed=3)
    ranks = [IterationBatchSampler(10, 4, 7, seed=3, rank=r, world=2) for r in (0, 1)]
    for full, a, b in zip(single, *ranks):
        assert sorted(full) == sorted(a + b) and len(a) == len(b) == 2
    # epochs: 2 batches of 4 per epoch (remainder dropped), a new permutation each epoch
    batches = list(IterationBatchSampler(10, 4, 6, seed=3))
    assert [b[0][1] for b in batches] == [0, 0, 1, 1, 2, 2]
    assert len({i for b in batches[:2] for i, _ in b}) == 8
    # starting later reproduces the tail of the stream
    assert list(IterationBatchSampler(10, 4, 6, seed=3, start=4)) == batches[4:]
    with pytest.raises(ValueError, match="not divisible"):
        IterationBatchSampler(10, 4, 6, world=3)


def test_warmup_then_poly():
    f = poly_warmup(100, power=0.9, warmup_iters=10, warmup_factor=0.1)
    assert f(0) == pytest.approx(0.1) and f(5) == pytest.approx(0.55)
    assert f(10) == pytest.approx(0.9**0.9) and f(50) == pytest.approx(0.5**0.9) and f(100) == 0.0


def test_config_layers_and_errors(tmp_path):
    c = load_config("training/configs/synthetic/resnet_psp.yaml", ["train.lr=0.02", "model.depth=34", "decode.prob_threshold=0.4"])
    assert c["model"]["arch"] == "pspnet" and c["model"]["depth"] == 34 and c["train"]["lr"] == 0.02
    assert c["input"]["net_width"] == 528 and c["loss"]["background_weight"] == 0.4  # from the bases and defaults
    paper = load_config("training/configs/culane/erfnet.yaml")
    assert (paper["input"]["net_width"], paper["input"]["net_height"], paper["train"]["batch_size"], paper["train"]["iterations"]) == (976, 208, 12, 80000)
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  lr_rate: 0.1\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown config key 'train.lr_rate'"):
        load_config(bad)
    with pytest.raises(ConfigError, match="unknown config key 'model.deepth'"):
        load_config(CONFIG, ["model.deepth=50"])
    with pytest.raises(ConfigError, match="train.iterations"):
        load_config(CONFIG, ["train.iterations=0"])


def test_resume_equals_an_uninterrupted_run(tiny_dataset, tmp_path):
    straight = load_config(CONFIG, small(tiny_dataset, tmp_path / "a"))
    Trainer(straight, Dist()).run()
    split = load_config(CONFIG, small(tiny_dataset, tmp_path / "b", "dataset.num_workers=2"))  # workers do not matter
    first = Trainer(split, Dist()).run(max_steps=3)
    assert first["stopped_at"] == 3 and not first["completed"]
    assert load_checkpoint(tmp_path / "b" / "last.pt")["iteration"] == 3
    resumed = Trainer(split, Dist(), resume=True)
    assert resumed.start == 3
    summary = resumed.run()
    assert summary["completed"] and summary["resumed_from"] == 3
    a, b = weights(tmp_path / "a" / "last.pt"), weights(tmp_path / "b" / "last.pt")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    ca, cb = load_checkpoint(tmp_path / "a" / "last.pt"), load_checkpoint(tmp_path / "b" / "last.pt")
    assert ca["optimizer"]["state"].keys() == cb["optimizer"]["state"].keys()
    for run in ("a", "b"):
        assert (tmp_path / run / "curves.png").stat().st_size > 0 and (tmp_path / run / "train_summary.json").exists()
    csv_rows = (tmp_path / "b" / "scalars.csv").read_text().splitlines()
    assert sum(1 for r in csv_rows if r.startswith("6,loss/total")) == 1  # no duplicated rows after resume


def test_resume_refuses_another_config(tiny_dataset, tmp_path):
    cfg = load_config(CONFIG, small(tiny_dataset, tmp_path / "r"))
    Trainer(cfg, Dist()).run(max_steps=1)
    other = load_config(CONFIG, small(tiny_dataset, tmp_path / "r", "train.lr=0.5"))
    with pytest.raises(ConfigError, match="differs from the checkpoint's at train.lr"):
        Trainer(other, Dist(), resume=True)


def test_resume_accepts_a_checkpoint_written_before_a_new_default_key(tiny_dataset, tmp_path):
    """A config key added later with a default that keeps old behaviour must not block resuming."""
    cfg = load_config(CONFIG, small(tiny_dataset, tmp_path / "o", "augment.blur_p=0"))
    Trainer(cfg, Dist()).run(max_steps=1)
    ckpt = load_checkpoint(tmp_path / "o" / "last.pt")
    del ckpt["config"]["augment"]["blur_p"]  # as written by a version without the key
    torch.save(ckpt, tmp_path / "o" / "last.pt")
    defaults_only = load_config(CONFIG, small(tiny_dataset, tmp_path / "o", "augment.blur_p=0"))
    assert Trainer(defaults_only, Dist(), resume=True).start == 1
    changed = load_config(CONFIG, small(tiny_dataset, tmp_path / "o", "augment.blur_p=0.5"))
    with pytest.raises(ConfigError, match="augment.blur_p"):
        Trainer(changed, Dist(), resume=True)


def test_two_process_ddp_matches_one_process(tiny_dataset, tmp_path):
    # BatchNorm frozen and dropout off: then averaging the processes' gradients (with the global
    # loss normaliser) is the full-batch gradient, and the runs agree to float rounding. Two steps
    # at a small rate: the existence head's sharp curvature amplifies rounding ~30x per step
    # (measured: 3e-7 after one step, 8e-6 after two, 2e-5 after four at lr 0.05). SGD and float32:
    # AdamW's first steps are ~lr * sign(gradient), which turns the rounding of a near-zero
    # gradient into a full-size difference, and bfloat16 autocast rounds differently per batch size.
    extra = ("model.freeze_bn=true", "model.dropout=0.0", "train.batch_size=4", "train.iterations=2",
             "train.optimizer=sgd", "train.cpu_bf16=false",
             "train.lr=0.01", "train.warmup_iters=1", "train.val_every=2", "train.checkpoint_every=2")
    single = load_config(CONFIG, small(tiny_dataset, tmp_path / "one", *extra))
    one = Trainer(single, Dist()).run()
    torchrun_two_processes(CONFIG, small(tiny_dataset, tmp_path / "two", *extra))
    a, b = weights(tmp_path / "one" / "last.pt"), weights(tmp_path / "two" / "last.pt")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)
    two = load_checkpoint(tmp_path / "two" / "last.pt")
    assert two["metrics"]["val/f1"] == pytest.approx(one["last_val"]["val/f1"])
    assert '"processes": 2' in (tmp_path / "two" / "train_summary.json").read_text()


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "training.train", "--config", CONFIG, *args], capture_output=True, text=True, timeout=600)


def sets(items: list[str]) -> list[str]:
    return [a for item in items for a in ("--set", item)]


def test_a_diverging_loss_stops_with_the_iteration_and_keeps_the_checkpoint(tiny_dataset, tmp_path):
    r = run_cli(*sets(small(tiny_dataset, tmp_path / "nan", "train.lr=1e30", "train.warmup_iters=0", "train.checkpoint_every=1")))
    assert r.returncode == 3, r.stderr[-2000:]
    message = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(message) == 1 and "training diverged" in message[0] and "at iteration" in message[0]
    failed_at = int(message[0].split("at iteration ")[1].split(";")[0])
    ckpt = load_checkpoint(tmp_path / "nan" / "last.pt")
    assert ckpt["iteration"] == failed_at - 1
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())


def test_corrupt_image_and_malformed_list_are_clear_errors(tiny_dataset, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(tiny_dataset, root)
    first = (root / "list" / "train_gt.txt").read_text().splitlines()[0].split()[0].lstrip("/")
    (root / first).write_bytes(b"\xff\xd8 truncated")
    r = run_cli(*sets(small(root, tmp_path / "c", "dataset.num_workers=2")))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert first in r.stderr and "cannot decode image" in r.stderr
    lines = (root / "list" / "train_gt.txt").read_text().splitlines()
    lines[2] = lines[2].rsplit(" ", 1)[0]  # drop one existence flag
    (root / "list" / "train_gt.txt").write_text("\n".join(lines) + "\n")
    r = run_cli(*sets(small(root, tmp_path / "d")))
    assert r.returncode == 2 and "train_gt.txt:3:" in r.stderr and "Traceback" not in r.stderr


def test_evaluate_writes_predictions_and_per_category_f1(tiny_dataset, tmp_path):
    cfg = load_config(CONFIG, small(tiny_dataset, tmp_path / "run", "train.iterations=2", "train.val_every=2"))
    Trainer(cfg, Dist()).run()
    out = tmp_path / "eval"
    r = subprocess.run([sys.executable, "-m", "training.evaluate", "--ckpt", str(tmp_path / "run" / "last.pt"), "--out", str(out),
                        "--json", "--workers", "0"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    import json

    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert set(report["f1"]) == {"normal", "crowd", "hlight", "shadow", "noline", "arrow", "curve", "cross", "night", "total"}
    assert report["f1"]["total"]["images"] == 27 and report["iteration"] == 2
    assert len(list((out / "predictions").rglob("*.lines.txt"))) == 27
    assert json.loads((out / "f1.json").read_text())["f1"] == report["f1"]
    assert "| total |" in (out / "f1.md").read_text()
    bad = subprocess.run([sys.executable, "-m", "training.evaluate", "--ckpt", str(tmp_path / "none.pt")], capture_output=True, text=True)
    assert bad.returncode == 2 and "checkpoint not found" in bad.stderr and "Traceback" not in bad.stderr


def test_cpu_bf16_setting_and_a_bf16_step(tiny_dataset, tmp_path):
    from training.train import cpu_bf16_enabled

    assert cpu_bf16_enabled(True) and not cpu_bf16_enabled(False)
    assert not cpu_bf16_enabled("auto", "flags : fpu avx2 fma avx512f")  # emulated bf16 only: float32
    assert cpu_bf16_enabled("auto", "flags : avx512f avx512_bf16") and cpu_bf16_enabled("auto", "flags : amx_bf16 amx_tile")
    with pytest.raises(ConfigError, match="train.cpu_bf16"):
        load_config(CONFIG, small(tiny_dataset, tmp_path / "x", "train.cpu_bf16=maybe"))
    cfg = load_config(CONFIG, small(tiny_dataset, tmp_path / "b", "train.cpu_bf16=true"))
    trainer = Trainer(cfg, Dist())
    assert trainer.bf16
    summary = trainer.run(max_steps=2)
    assert summary["stopped_at"] == 2
    assert all(v.dtype == torch.float32 for v in load_checkpoint(tmp_path / "b" / "last.pt")["model"].values() if v.is_floating_point())
