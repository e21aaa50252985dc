"""Benchmark: synthetic CULane generation speed (prints figures; not a pass/fail test).

    python benchmarks/synthetic_speed.py [--images 400] [--workers 1 2]

Reports render-only time per image (one process) and end-to-end images/s (render + JPEG/PNG
encoding + atomic writes) for each worker count.
"""
from __future__ import annotations

import argparse
import tempfile
import time

import cv2
import numpy as np

from runtime.culane import CATEGORIES
from lanedata.synthetic.dataset import generate_dataset
from lanedata.synthetic.render import render_scene
from lanedata.synthetic.scene import sample_scene
from lanedata.synthetic.textures import bank


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    cv2.setNumThreads(1)
    bank()
    per_category = {}
    for category in CATEGORIES:
        scenes = [sample_scene(np.random.default_rng(i), category) for i in range(20)]
        start = time.perf_counter()
        for scene in scenes:
            render_scene(scene)
        per_category[category] = (time.perf_counter() - start) / len(scenes) * 1000
    print("render only, one process (ms/image): " + ", ".join(f"{c} {v:.1f}" for c, v in per_category.items()))
    print(f"render only, mean over categories: {np.mean(list(per_category.values())):.1f} ms/image")
    test = max(1, args.images // 9)
    for workers in args.workers:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            generate_dataset(tmp, 0, 0, test, seed=1, workers=workers, progress=False)
            elapsed = time.perf_counter() - start
        n = 9 * test
        print(f"end to end, {workers} worker(s): {n / elapsed:.0f} images/s ({1000 * elapsed / n:.1f} ms/image wall)")


if __name__ == "__main__":
    main()
