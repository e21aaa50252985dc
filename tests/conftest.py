"""Shared fixtures: a tiny synthetic CULane dataset, generated once per test session."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import TINY_TRAIN, TRAINED_TINY
from lanedata.synthetic.dataset import generate_dataset

TINY = {"train": 12, "val": 4, "test_per_category": 3, "seed": 3}


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic CULane dataset: 12 train, 4 val, 3 test images per category (read-only)."""
    root = tmp_path_factory.mktemp("synthetic") / "culane"
    generate_dataset(root, workers=2, progress=False, **TINY)
    return root




@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ERFNet checkpoint at 128x32 after 4 iterations on the tiny dataset (untrained in effect)."""
    from training.config import load_config
    from training.distributed import Dist
    from training.train import Trainer

    out = tmp_path_factory.mktemp("tiny-ckpt")
    cfg = load_config(Path(__file__).resolve().parents[1] / "training/configs/synthetic/erfnet.yaml", [f"dataset.root={tiny_dataset}", f"output.dir={out}", *TINY_TRAIN])
    Trainer(cfg, Dist()).run()
    return out / "last.pt"


@pytest.fixture(scope="session")
def tiny_onnx(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``student.onnx`` (fixed batch 1, probabilities) + sidecar, and ``student.pt2`` + sidecar, beside it."""
    from export.to_onnx import export_checkpoint

    out = tmp_path_factory.mktemp("tiny-onnx") / "student.onnx"
    export_checkpoint(tiny_checkpoint, out, parity_count=4)
    return out




@pytest.fixture(scope="session")
def trained_tiny_onnx(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ERFNet (256x64) overfitted to the tiny dataset's 12 training images (F1 > 0 there), exported."""
    from export.to_onnx import export_checkpoint
    from training.config import load_config
    from training.distributed import Dist
    from training.train import Trainer

    out = tmp_path_factory.mktemp("trained-tiny")
    cfg = load_config(Path(__file__).resolve().parents[1] / "training/configs/synthetic/erfnet.yaml",
                      [f"dataset.root={tiny_dataset}", f"output.dir={out}", *TRAINED_TINY])
    Trainer(cfg, Dist()).run()
    onnx_path = out / "student.onnx"
    export_checkpoint(out / "last.pt", onnx_path, parity_count=4, save_pt2=False)
    return onnx_path


@pytest.fixture(scope="session")
def marking_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny marking dataset (ApolloScape classes, 160x90): 6 train, 2 val = 2 test images with labels (read-only)."""
    from tests.training.test_marking_classes import marking_root

    return marking_root(tmp_path_factory.mktemp("marking") / "marks")


@pytest.fixture(scope="session")
def marking_onnx(marking_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A marking ERFNet (36 classes, 64x32, 2 iterations) exported: ``marks.onnx`` (fixed batch 1) and
    ``marks.pt2``, each with its sidecar."""
    from export.to_onnx import export_checkpoint
    from tests.training.test_marking_classes import MARKING
    from training.config import load_config
    from training.distributed import Dist
    from training.train import Trainer

    out = tmp_path_factory.mktemp("marking-onnx")
    cfg = load_config(Path(__file__).resolve().parents[1] / "training/configs/synthetic/erfnet.yaml",
                      [f"dataset.root={marking_dataset}", f"output.dir={out}", *TINY_TRAIN, *MARKING, "train.iterations=2",
                       "train.val_every=2", "train.checkpoint_every=2"])
    Trainer(cfg, Dist()).run()
    export_checkpoint(out / "last.pt", out / "marks.onnx", parity_count=2)
    return out / "marks.onnx"
