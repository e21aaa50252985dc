"""How much each loss term steers the student: gradient norms and directions per term.

    python -m training.loss_balance --config runs/<ds>/<run>/config.yaml [--ckpt best.pt | --init] [--batches 10]

For a distillation config (a run's own ``config.yaml`` works), draws ``--batches`` training batches
and, for every term of the total loss (task: ``seg`` + ``exist``; each weighted distillation term),
measures on the student's parameters: the loss value, the norm of its gradient, that norm relative
to the task gradient's, and the cosine between the term's gradient and the task gradient. A term
whose gradient is a few per cent of the task's barely moves training at its weight; a cosine near
0 means it pulls in directions the task does not. Prints a table and writes ``--json``.
"""
from __future__ import annotations

import statistics
import sys
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from runtime.atomic import atomic_write_json
from runtime.classes import class_table
from runtime.cli import Parser, check_output_file, fail, positive_int
from runtime.errors import DataError
from runtime.preprocess import Preprocess
from training.checkpoint import load_checkpoint
from training.config import ConfigError, load_config
from training.data.culane_dataset import CulaneSegmentation
from training.data.label_input import one_hot_label
from training.distill.distiller import Distiller, resolve
from training.losses import LaneSegLoss
from training.models import build_model, freeze_batchnorm
from training.sampling import IterationBatchSampler

TASK = "task (seg + exist)"


def _flat_grad(loss: torch.Tensor, params: list[torch.nn.Parameter]) -> torch.Tensor:
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).flatten() for g, p in zip(grads, params)])


def measure(config: dict[str, Any], ckpt: str | None, batches: int, seed: int = 0) -> dict[str, dict[str, float]]:
    """Per term: mean over batches of loss, gradient norm, norm / task norm, cosine with the task."""
    torch.manual_seed(seed)
    device = torch.device("cpu")
    distill = resolve(config.get("distill"))
    if distill is None:
        raise ConfigError("the config distils nothing (no distill.method): there is no balance to measure")
    model = build_model(config)
    distiller = Distiller(distill, config, device).train()
    if ckpt:
        state = load_checkpoint(ckpt)
        model.load_state_dict(state["model"])
        distiller.load_extra_state(state.get("distiller", {}))  # SKD's discriminator as trained
    model.train()
    if config["model"]["freeze_bn"]:
        freeze_batchnorm(model)
    params = [p for p in model.parameters() if p.requires_grad]
    data = config["dataset"]
    table = class_table(data["classes"])
    loss_fn = LaneSegLoss(table.num_classes, config["loss"]["background_weight"], config["loss"]["exist_weight"])
    dataset = CulaneSegmentation(data["root"], data["train_list"], Preprocess.from_dict(config["input"]),
                                 config["augment"], seed, data["skip_bad"], table)
    sampler = IterationBatchSampler(len(dataset), config["train"]["batch_size"], batches, seed)
    rows: dict[str, dict[str, list[float]]] = {}
    for x, y, e in DataLoader(dataset, batch_sampler=sampler, num_workers=0):
        inp = one_hot_label(y, table.num_classes) if config["model"]["input"] == "label" else x
        seg, exist, taps = model(inp, taps=distiller.student_taps) if distiller.student_taps else (*model(inp), {})
        task = loss_fn(seg, exist, y, e)["total"]
        terms = {TASK: task, **distiller(x, y, seg, taps)}
        g_task = _flat_grad(task, params)
        for name, value in terms.items():
            g = g_task if name == TASK else _flat_grad(value, params)
            row = rows.setdefault(name, {"loss": [], "grad_norm": [], "relative_norm": [], "cosine_with_task": []})
            row["loss"].append(value.item())
            row["grad_norm"].append(g.norm().item())
            row["relative_norm"].append((g.norm() / g_task.norm().clamp(min=1e-12)).item())
            row["cosine_with_task"].append(1.0 if name == TASK else torch.nn.functional.cosine_similarity(g, g_task, dim=0).item())
    return {name: {k: statistics.mean(v) for k, v in row.items()} for name, row in rows.items()}


def table(result: dict[str, dict[str, float]]) -> str:
    lines = [f"{'term':<24} {'loss':>10} {'|grad|':>10} {'|grad|/task':>12} {'cos(task)':>10}"]
    for name, r in result.items():
        lines.append(f"{name:<24} {r['loss']:>10.4g} {r['grad_norm']:>10.4g} {r['relative_norm']:>12.4f} {r['cosine_with_task']:>10.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m training.loss_balance", description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="a distillation config (a run's config.yaml works)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (repeatable)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--ckpt", help="student weights (default: best.pt beside the config, if there)")
    which.add_argument("--init", action="store_true", help="measure at initialisation (step 0 of training)")
    parser.add_argument("--batches", type=positive_int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    ckpt = None if args.init else args.ckpt or (str(p) if (p := Path(args.config).with_name("best.pt")).is_file() else None)
    try:
        if args.json:
            check_output_file(args.json, "figures")
        config = load_config(args.config, args.set)
        result = measure(config, ckpt, args.batches, args.seed)
    except (ConfigError, DataError, OSError, ValueError) as err:  # ValueError: a bad distill section
        return fail(err)
    print(f"student: {ckpt or 'initialisation'}; {args.batches} batches of {config['train']['batch_size']}")
    print(table(result))
    if args.json:
        atomic_write_json(args.json, {"config": args.config, "student": ckpt, "batches": args.batches, "terms": result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
