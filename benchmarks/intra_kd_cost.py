"""Benchmark: IntRA-KD's own cost as a share of a student training step (teacher forward excluded).

    python benchmarks/intra_kd_cost.py [--size 528x112] [--batch 8] [--steps 10] [--classes culane|apolloscape]

Times a student step (forward + backward + SGD update) with the segmentation loss only, and the
same step with L_m (IntRA-KD) and L_a (attention) added on the paper's tap pairs, the teacher
features being computed once beforehand. Prints both and the share. ``--classes apolloscape``: 36
classes (no existence head), labels of 12 random marking rectangles per image on background (the
AOI loop runs over the classes present).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from runtime.classes import class_table
from training.config import load_config
from training.distill.attention import attention_loss
from training.distill.intra_kd import DEFAULT_SKEW_FLOOR, RegionMaps, intra_kd_loss
from training.losses import LaneSegLoss
from training.models import build_model


def marking_labels(batch: int, h: int, w: int, n: int, rects: int = 12) -> torch.Tensor:
    """(batch, h, w) labels: background with ``rects`` rectangles of random classes 1..n-1."""
    g = torch.Generator().manual_seed(0)
    y = torch.zeros(batch, h, w, dtype=torch.long)
    for i in range(batch):
        for _ in range(rects):
            top, left = int(torch.randint(0, h - 4, (1,), generator=g)), int(torch.randint(0, w - 8, (1,), generator=g))
            y[i, top : top + h // 8 + 2, left : left + w // 10 + 4] = int(torch.randint(1, n, (1,), generator=g))
    return y


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="528x112")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--teacher-depth", type=int, default=18)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument("--classes", default="culane", choices=("culane", "apolloscape"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    w, h = (int(v) for v in args.size.split("x"))
    cfg = load_config("training/configs/synthetic/erfnet.yaml", [f"input.net_width={w}", f"input.net_height={h}",
                                                                 f"dataset.classes={args.classes}"])
    table = class_table(args.classes)
    n = table.num_classes
    student = build_model(cfg).train()
    teacher_cfg = {**cfg, "model": {**cfg["model"], "arch": "pspnet", "depth": args.teacher_depth, "head_channels": 128}}
    teacher = build_model(teacher_cfg).eval()
    x = torch.randn(args.batch, 3, h, w)
    y = torch.randint(0, 5, (args.batch, h, w)) if table.existence else marking_labels(args.batch, h, w, n)
    with torch.no_grad():
        _, _, t = teacher(x, taps=("layer2", "layer4"))
    seg_loss = LaneSegLoss(n)
    opt = torch.optim.SGD(student.parameters(), lr=1e-3, momentum=0.9)
    e = torch.ones(args.batch, table.num_lanes)

    def step(distill: bool) -> float:
        start = time.perf_counter()
        seg, exist, s = student(x, taps=("block2", "block3"))
        loss = seg_loss(seg, exist, y, e)["total"]
        if distill:
            regions = RegionMaps(y, n, 5)  # as the distiller: AOIs once per step, shared by the pairs
            loss = loss + 0.1 * (intra_kd_loss(s["block2"], t["layer2"], y, n, regions=regions, skew_floor=DEFAULT_SKEW_FLOOR)
                                 + intra_kd_loss(s["block3"], t["layer4"], y, n, regions=regions, skew_floor=DEFAULT_SKEW_FLOOR))
            loss = loss + 0.1 * (attention_loss(s["block2"], t["layer2"]) + attention_loss(s["block3"], t["layer4"]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        return time.perf_counter() - start

    for mode in (False, True):
        step(mode)  # warm-up
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.steps):  # interleaved, so that drift in machine load hits both alike
        for mode in (False, True):
            times[mode].append(step(mode))
    plain, with_kd = (statistics.median(times[mode]) for mode in (False, True))
    print(f"student step {w}x{h}, {n} classes, batch {args.batch}, {torch.get_num_threads()} threads: "
          f"{1000 * plain:.0f} ms alone, {1000 * with_kd:.0f} ms with L_m + L_a "
          f"-> IntRA-KD+AT share {100 * (with_kd - plain) / with_kd:.1f} % of the step (teacher forward excluded)")


if __name__ == "__main__":
    main()
