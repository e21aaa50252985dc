"""Helpers shared by test modules (import these, not conftest)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def small_run(root: Path, out: Path, *extra: str) -> list[str]:
    """Training overrides for a seconds-long run: 128x32 input, batch 2, 6 iterations (``extra`` wins)."""
    return [
        f"dataset.root={root}", f"output.dir={out}", "input.net_width=128", "input.net_height=32",
        "dataset.num_workers=0", "train.batch_size=2", "train.iterations=6", "train.val_every=3",
        "train.checkpoint_every=3", "train.max_val_images=4", "train.warmup_iters=2", "train.log_every=1",
        "train.threads=1", *extra,
    ]


TINY_TRAIN = [
    "input.net_width=128", "input.net_height=32", "dataset.num_workers=0", "train.batch_size=2", "train.iterations=4",
    "train.val_every=4", "train.checkpoint_every=4", "train.max_val_images=2", "train.warmup_iters=1", "train.threads=1",
]


TRAINED_TINY = [
    # Learns lanes in ~300 steps (measured: F1 0 at 100, 0.18 at 200, 0.58 at 300 on its 12 training
    # images): 256x64, no augmentation, background weighted 0.05 so lanes appear early.
    "input.net_width=256", "input.net_height=64", "dataset.num_workers=0", "train.batch_size=4", "train.iterations=300",
    "train.val_every=300", "train.checkpoint_every=300", "train.warmup_iters=20", "augment.enabled=false",
    "dataset.val_list=train_gt.txt", "train.max_val_images=12", "train.threads=2", "loss.background_weight=0.05", "train.log_every=50",
]


def torchrun_two_processes(config: str, overrides: list[str]) -> None:
    """``training.train`` under ``torchrun --nproc_per_node 2`` (CPU, gloo); fails with its stderr."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "training.train",
           "--config", config]
    for item in overrides:
        cmd += ["--set", item]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
