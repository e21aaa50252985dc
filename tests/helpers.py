"""Helpers shared by test modules (import these, not conftest)."""
from __future__ import annotations

import json
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


REAL_DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "culane_real_dev"
"""190 real CULane frames with their lanes (never trained on by a default; tests train on a few only)."""


def real_format_root(dest: Path, fallback: Path) -> Path:
    """A CULane-format root as users with lane points only have it: images and ``.lines.txt``, lists
    ``train.txt``, ``val.txt``, ``test.txt`` and ``test_split`` (day frames ``normal``, night
    frames ``night``), no labels and no ``*_gt.txt``. Frames: a few of the real ones in
    :data:`REAL_DEV` when present, else the synthetic frames of the root ``fallback``."""
    import shutil

    from runtime.culane import read_list

    source = REAL_DEV if (REAL_DEV / "list" / "all.txt").is_file() else fallback
    if source == REAL_DEV:
        frames = [s.image for s in read_list(REAL_DEV / "list" / "all.txt").samples]
        day, night = [f for f in frames if f.startswith("driver_23")], [f for f in frames if f.startswith("driver_182")]
        lists = {"train.txt": day[0:60:6] + night[:2], "val.txt": day[5:60:20], "test_split/test0_normal.txt": day[100:130:10],
                 "test_split/test8_night.txt": night[5:8]}
    else:
        lists = {"train.txt": [s.image for s in read_list(fallback / "list" / "train.txt").samples][:10],
                 "val.txt": [s.image for s in read_list(fallback / "list" / "val.txt").samples][:3],
                 **{f"test_split/{p.name}": [s.image for s in read_list(p).samples][:2] for p in sorted((fallback / "list" / "test_split").glob("*.txt"))[:2]}}
    lists["test.txt"] = [f for name, items in lists.items() if name.startswith("test_split/") for f in items]
    for name, images in lists.items():
        (dest / "list" / name).parent.mkdir(parents=True, exist_ok=True)
        (dest / "list" / name).write_text("".join(f"/{image}\n" for image in images))
        for image in images:
            for suffix in (Path(image).suffix, ".lines.txt"):
                relative = str(Path(image).with_suffix(suffix))
                (dest / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source / relative, dest / relative)
    return dest


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())
