"""Shared fixtures: a tiny synthetic CULane dataset, generated once per test session."""
from __future__ import annotations

from pathlib import Path

import pytest

from training.data.synthetic.dataset import generate_dataset

TINY = {"train": 12, "val": 4, "test_per_category": 3, "seed": 3}


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic CULane dataset: 12 train, 4 val, 3 test images per category (read-only)."""
    root = tmp_path_factory.mktemp("synthetic") / "culane"
    generate_dataset(root, workers=2, progress=False, **TINY)
    return root
