"""Process-group helpers: one code path for one process and for ``torchrun`` (DDP).

Under ``torchrun`` (``WORLD_SIZE`` > 1) the group uses NCCL on CUDA and gloo on CPU.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def setup(prefer_cuda: bool = True) -> Dist:
    """Initialise from torchrun's environment (or a single process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = prefer_cuda and torch.cuda.is_available()
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return Dist(rank, world, local, device)


def teardown(d: Dist) -> None:
    if d.enabled and dist.is_initialized():
        dist.destroy_process_group()


def all_sum(d: Dist, values: list[float]) -> list[float]:
    """Sum a few numbers over processes (identity in one process)."""
    if not d.enabled:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=d.device)
    dist.all_reduce(t)
    return t.tolist()


def mean_tensor(d: Dist, t: torch.Tensor) -> torch.Tensor:
    """Mean of a tensor over processes (no gradient; identity in one process)."""
    if not d.enabled:
        return t
    t = t.detach().clone()
    dist.all_reduce(t)
    return t / d.world


def average_gradients(d: Dist, params) -> None:
    """Average the gradients of parameters over processes (for modules outside DDP)."""
    if not d.enabled:
        return
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= d.world


def barrier(d: Dist) -> None:
    if d.enabled:
        dist.barrier()
