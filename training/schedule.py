"""Learning-rate schedule: linear warm-up, then polynomial decay (power 0.9).

``factor(i) = warmup_factor + (1 - warmup_factor) * i / warmup_iters`` for ``i < warmup_iters``,
then ``(1 - i / iterations) ** power``; the learning rate is ``lr * factor``.
"""
from __future__ import annotations

import torch


def poly_warmup(iterations: int, power: float = 0.9, warmup_iters: int = 0, warmup_factor: float = 0.1):
    def factor(i: int) -> float:
        if i < warmup_iters:
            return warmup_factor + (1.0 - warmup_factor) * i / warmup_iters
        return max(0.0, 1.0 - i / iterations) ** power

    return factor


def make_scheduler(optimizer: torch.optim.Optimizer, iterations: int, power: float, warmup_iters: int, warmup_factor: float) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, poly_warmup(iterations, power, warmup_iters, warmup_factor))
