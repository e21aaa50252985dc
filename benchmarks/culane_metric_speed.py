"""Benchmark: CULane F1 throughput (prints figures; not a pass/fail test).

    python benchmarks/culane_metric_speed.py [--per-category 100] [--workers 1 2]

Generates a synthetic test split, writes perturbed predictions (jitter, shifts, truncation,
misses, false alarms: about as many lanes as CULane has per image), and times the evaluator.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from runtime.culane import CulaneDataset
from runtime.culane_metric import count_images, totals
from runtime.lines import write_lines_file
from lanedata.synthetic.dataset import generate_dataset


def perturbed_predictions(root: Path, pred: Path, rng: np.random.Generator) -> list[str]:
    ds = CulaneDataset(root)
    names = []
    for sample in ds.read_list("test.txt").samples:
        lanes = []
        for lane in ds.read_lanes(sample):
            if rng.random() < 0.1:
                continue
            lane = lane.copy()
            lane[:, 0] += rng.normal(0, 5, len(lane)) + rng.uniform(-25, 25)
            lanes.append(lane[: max(2, int(len(lane) * rng.uniform(0.6, 1.0)))])
        for _ in range(int(rng.poisson(0.5))):
            y = np.arange(590, 300, -10.0)
            lanes.append(np.stack([rng.uniform(0, 1640) + rng.uniform(-4, 4) * (590 - y) / 10, y], 1))
        write_lines_file(pred / sample.lines_name, lanes)
        names.append(sample.lines_name)
    return names


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-category", type=int, default=100)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root, pred = Path(tmp) / "data", Path(tmp) / "pred"
        generate_dataset(root, 0, 0, args.per_category, seed=2, progress=False)
        names = perturbed_predictions(root, pred, np.random.default_rng(0))
        for workers in args.workers:
            start = time.perf_counter()
            rows = count_images(root, pred, names, workers=workers)
            elapsed = time.perf_counter() - start
            c = totals(rows)
            lanes = (c.tp + c.fn + c.tp + c.fp) / len(names)
            print(f"{workers} worker(s): {len(names) / elapsed:.0f} images/s over {len(names)} images "
                  f"({lanes:.1f} lanes per image, F1 {c.f1:.3f})")


if __name__ == "__main__":
    main()
