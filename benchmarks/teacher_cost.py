"""Benchmark: what each teacher option costs to train, beside the ERFNet student.

    python benchmarks/teacher_cost.py [--size 320x64] [--batch 8] [--steps 5] [--depths 18 34 50 101]

Times a training step (forward, segmentation + existence loss, backward, AdamW update) of the
ResNet + PSP teacher at each depth and head width (128: the smoke benchmark's; 512: the paper's
ResNet-101 + PSP) and of the student, interleaved round by round so machine drift hits all alike.
Prints parameters, median ms per step, the ratio to the student and the hours an N-iteration
teacher would take (``--iterations``: 750 by default, the pipeline's teacher; the methods
comparison trains its teacher 1,500).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from training.config import load_config
from training.losses import LaneSegLoss
from training.models import build_model


def step_timer(model: torch.nn.Module, batch: int, h: int, w: int):
    """A closure that runs one training step on fixed random data and returns its seconds."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss_fn = LaneSegLoss(background_weight=0.1, exist_weight=0.1)
    x = torch.randn(batch, 3, h, w)
    y = torch.randint(0, 5, (batch, h, w))
    exist = torch.randint(0, 2, (batch, 4)).float()

    def step() -> float:
        start = time.perf_counter()
        seg, ex = model(x)[:2]
        loss = loss_fn(seg, ex, y, exist)["total"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return time.perf_counter() - start

    return step


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="320x64")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5, help="timed rounds (after one warm-up round)")
    parser.add_argument("--depths", type=int, nargs="+", default=[18, 34, 50, 101])
    parser.add_argument("--iterations", type=int, default=750)
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    base = load_config("training/configs/synthetic/erfnet.yaml", [f"input.net_width={w}", f"input.net_height={h}"])
    models = {"ERFNet (student)": build_model(base).train()}
    for depth in args.depths:
        for head in (128, 512):
            cfg = {**base, "model": {**base["model"], "arch": "pspnet", "depth": depth, "head_channels": head}}
            models[f"ResNet-{depth} + PSP, head {head}"] = build_model(cfg).train()
    timers = {name: step_timer(m, args.batch, h, w) for name, m in models.items()}
    times: dict[str, list[float]] = {name: [] for name in models}
    for round_ in range(args.steps + 1):
        for name, timer in timers.items():
            seconds = timer()
            if round_:
                times[name].append(seconds)
    student_ms = 1000 * statistics.median(times["ERFNet (student)"])
    print(f"training step, batch {args.batch} at {w}x{h}, {torch.get_num_threads()} threads, median of {args.steps}")
    print(f"{'model':<28} {'params M':>8} {'ms/step':>8} {'x student':>9} {f'h for {args.iterations} it':>12}")
    for name, model in models.items():
        ms = 1000 * statistics.median(times[name])
        params = sum(p.numel() for p in model.parameters()) / 1e6
        print(f"{name:<28} {params:8.2f} {ms:8.0f} {ms / student_ms:9.1f} {ms * args.iterations / 3.6e6:12.2f}")


if __name__ == "__main__":
    main()
