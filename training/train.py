"""Train a lane segmentation network (student or teacher), iteration-based and resumable.

    python -m training.train --config CFG [--set key=value ...] [--resume]
    torchrun --nproc_per_node N -m training.train --config CFG ...     (DistributedDataParallel)

SGD (momentum 0.9, weight decay 1e-4 on weights, none on biases and BatchNorm), linear warm-up
then poly-0.9 decay, AMP on CUDA, DDP under torchrun (gloo on CPU, NCCL on GPU). Validation F1
(lane tables) or mIoU (marking tables, ``dataset.classes``: :mod:`runtime.classes`) every
``train.val_every`` iterations through the runtime's decoding and metric; ``best.pt`` keeps
the best, ``last.pt`` the latest state, both written atomically. ``--resume`` continues from
``last.pt`` exactly: batch order, augmentation and dropout are functions of (seed, iteration),
so on CPU a resumed run ends with the same weights as an uninterrupted one. A non-finite loss
stops the run with the iteration named; the last good checkpoint is left as it was.

Run folder (``output.dir``, default ``runs/<dataset>/<name>``): ``config.yaml``, ``last.pt``,
``best.pt``, ``scalars.csv`` (+ TensorBoard events when installed), ``curves.png``,
``train_summary.json``.
"""
from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from runtime.atomic import atomic_write_json, atomic_write_text
from runtime.classes import class_table
from runtime.cli import Parser, check_output_dir, fail, positive_int
from runtime.culane import CulaneDataset, Sample
from runtime.decode import DecodeParams
from runtime.errors import DataError
from runtime.miou import evaluated_iou, nan_mean
from runtime.parallel import worker_context
from runtime.preprocess import Preprocess
from runtime.resources import check_batch, clamp_to_cores
from runtime.scan import scan_samples
from training import distributed
from training.checkpoint import load_checkpoint, rng_state, save_checkpoint
from training.config import ConfigError, dump, load_config, run_dir, with_defaults
from training.data.culane_dataset import CulaneSegmentation
from training.data.label_input import one_hot_label
from training.distill.distiller import Distiller, resolve
from training.inference import ClassMapPredictor, LanePredictor, confusion_samples, score_samples
from training.losses import LaneSegLoss
from training.models import build_model, count_parameters, freeze_batchnorm
from training.sampling import IterationBatchSampler
from training.scalars import ScalarLog, plot_curves
from training.schedule import make_scheduler

log = logging.getLogger("training.train")

# Keys that may differ between a run and its resumption (they do not change the weights).
RESUME_FREE = {"train.log_every", "train.val_every", "train.checkpoint_every", "dataset.num_workers", "train.threads"}
RESUME_FREE_SECTIONS = ("decode.",)  # decoding only changes how validation scores, never the weights


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


def _diff_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        keys = set(a) | set(b)
        return [k for key in sorted(keys) for k in _diff_keys(a.get(key), b.get(key), f"{prefix}{key}.")]
    return [] if a == b else [prefix.rstrip(".")]


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 else decay).append(p)  # biases and BatchNorm affine: no decay
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def cpu_bf16_enabled(setting: bool | str, cpuinfo: str | None = None) -> bool:
    """``train.cpu_bf16``: true, false, or ``auto``: on when the CPU computes bfloat16 natively
    (AVX512-BF16 or AMX flags in ``cpuinfo``, default /proc/cpuinfo). Emulated bfloat16 is slower
    than float32, so ``auto`` leaves other CPUs in float32. Measured on an AMD EPYC with
    AVX512-BF16 (2 threads, batch 8, 320x64): training steps 1.25x faster for ERFNet, 1.8x for
    ResNet-18 + PSP."""
    if setting != "auto":
        return bool(setting)
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    return bool({"avx512_bf16", "amx_bf16"} & set(cpuinfo.split()))


def make_optimizer(model: torch.nn.Module, t: dict[str, Any]) -> torch.optim.Optimizer:
    """``train.optimizer``: ``sgd`` (the paper's: momentum, weight decay on weights only) or
    ``adamw`` (betas (momentum, 0.999), decoupled weight decay on weights only), at ``train.lr``."""
    groups = _param_groups(model, t["weight_decay"])
    if t["optimizer"] == "adamw":
        return torch.optim.AdamW(groups, lr=t["lr"], betas=(t["momentum"], 0.999))
    return torch.optim.SGD(groups, lr=t["lr"], momentum=t["momentum"])


def _worker_init(_: int) -> None:
    cv2.setNumThreads(1)


class Trainer:
    """One training run (one process of it under DDP)."""

    def __init__(self, config: dict[str, Any], d: distributed.Dist, resume: bool = False) -> None:
        self.config, self.d = config, d
        self.out = run_dir(config)
        t, data = config["train"], config["dataset"]
        for group, key, what in ((t, "threads", "train.threads"), (data, "num_workers", "dataset.num_workers")):
            if group[key]:  # hints: at most the usable cores, said in one line
                group[key] = clamp_to_cores(int(group[key]), what)
        if t["threads"] and d.device.type == "cpu":
            torch.set_num_threads(int(t["threads"]))
        self.pre = Preprocess.from_dict(config["input"])
        self.decode = DecodeParams.from_dict(config["decode"])
        self.cuda = d.device.type == "cuda"
        self.amp = bool(t["amp"]) and self.cuda
        self.bf16 = not self.cuda and cpu_bf16_enabled(t["cpu_bf16"])

        torch.manual_seed(t["seed"])
        self.model = build_model(config).to(d.device)
        self.params = count_parameters(self.model)
        self.table = class_table(data["classes"])
        self.metric = "val/f1" if self.table.existence else "val/miou"  # lanes: CULane F1; markings: mIoU (runtime/classes.py)
        self.loss_fn = LaneSegLoss(self.table.num_classes, config["loss"]["background_weight"], config["loss"]["exist_weight"]).to(d.device)
        if config["model"]["freeze_bn"]:
            freeze_batchnorm(self.model)
        self.optimizer = make_optimizer(self.model, t)
        self.scheduler = make_scheduler(self.optimizer, t["iterations"], t["poly_power"], t["warmup_iters"], t["warmup_factor"])
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.input_kind = config["model"]["input"]
        distill = resolve(config.get("distill"))
        self.distiller = Distiller(distill, config, d.device, cpu_bf16=self.bf16) if distill else None
        if self.distiller is not None and self.distiller.holistic is not None and d.enabled:
            self.distiller.holistic.sync = lambda params: distributed.average_gradients(d, params)
        self.start, self.best = 0, -1.0  # best validation score (self.metric)
        if resume:
            self._resume()
        self._saved = self.start  # iteration of the newest last.pt (0: none)
        self.net = self.model
        if d.enabled:
            self.net = DistributedDataParallel(self.model, device_ids=[d.local_rank] if self.cuda else None)

        self.train_set = CulaneSegmentation(data["root"], data["train_list"], self.pre, config["augment"], t["seed"], data["skip_bad"],
                                            self.table)
        val_samples = CulaneDataset(data["root"]).read_list(data["val_list"], skip_bad=data["skip_bad"]).samples
        if t["max_val_images"]:
            val_samples = val_samples[: t["max_val_images"]]
        train_list = CulaneDataset(data["root"]).list_path(data["train_list"])
        check_batch("train.batch_size", max(1, t["batch_size"] // d.world), 3, self.table.num_classes, self.pre.net_height,
                    self.pre.net_width, train_list)  # before the scan reads every sample
        self.train_set.samples = self._checked(self.train_set.samples, labels=True)
        if len(self.train_set.samples) < t["batch_size"]:  # before any run folder exists
            raise DataError(train_list,
                            f"{len(self.train_set.samples)} training samples, fewer than one batch of {t['batch_size']}: "
                            "lower train.batch_size or list more images")
        lanes = self.table.existence  # lanes are scored on their .lines.txt, class maps on their labels
        val_samples = self._checked(val_samples, labels=not lanes, lanes=lanes)
        self.val_samples = val_samples[d.rank :: d.world]
        self.predictor = (LanePredictor(self.model, self.pre, self.decode, d.device, self.amp) if lanes
                          else ClassMapPredictor(self.model, d.device, self.amp))

    def _checked(self, samples: list[Sample], labels: bool = False, lanes: bool = False) -> list[Sample]:
        """The samples whose files are all good (:mod:`runtime.scan`, before the first step; the main
        process scans first and caches a clean result, the others then find it). A bad file stops the
        run with its one-line error, or with ``dataset.skip_bad`` is listed in the log and left out."""
        data = self.config["dataset"]
        bad: list = []
        for turn in (True, False):
            if self.d.main == turn:
                bad = scan_samples(data["root"], samples, labels=labels, lanes=lanes, num_classes=self.table.num_classes,
                                   workers=max(2, data["num_workers"]),
                                   progress=self.d.main and sys.stderr.isatty())
            distributed.barrier(self.d)
        if not bad:
            return samples
        if not data["skip_bad"]:
            more = f" (and {len(bad) - 1} more bad samples in {bad[0][0].source}; dataset.skip_bad=true leaves them out)" if len(bad) > 1 else ""
            raise DataError(bad[0][1].path, f"{bad[0][1].problem}{more}", line=bad[0][1].line)
        for sample, err in bad:
            log.warning("skipping %s:%d (%s): %s", sample.source, sample.line, sample.image, err)
        log.warning("%s: skipped %d of %d samples with bad files (dataset.skip_bad)", bad[0][0].source, len(bad), len(samples))
        dropped = {id(sample) for sample, _ in bad}
        kept = [s for s in samples if id(s) not in dropped]
        if not kept:
            raise DataError(bad[0][0].source, "every sample of the list has a bad file")
        return kept

    # -- checkpoints ---------------------------------------------------------------------------
    def _resume(self) -> None:
        path = self.out / "last.pt"
        if not path.is_file():
            log.info("no %s: starting from scratch", path)
            return
        try:
            ckpt = load_checkpoint(path, self.d.device)
        except DataError as err:
            raise DataError(err.path, f"{err.problem}; cannot resume from it: move it away to start afresh") from None
        changed = [k for k in _diff_keys(with_defaults(ckpt["config"]), self.config) if k not in RESUME_FREE and not k.startswith(RESUME_FREE_SECTIONS)]
        if changed:
            raise ConfigError(f"{path}: the config differs from the checkpoint's at {', '.join(changed[:5])}; resume with the run's config")
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        if self.distiller is not None:
            self.distiller.load_extra_state(ckpt.get("distiller", {}))
        self.start, self.best = int(ckpt["iteration"]), float(ckpt.get("best_score", ckpt.get("best_f1", -1.0)))
        log.info("resumed %s at iteration %d (best %s %.4f)", path, self.start, self.metric, self.best)

    def _payload(self, iteration: int, metrics: dict[str, float]) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "distiller": self.distiller.extra_state() if self.distiller is not None else {},
            "rng": rng_state(),
            "iteration": iteration,
            "best_score": self.best,
            **({"best_f1": self.best} if self.metric == "val/f1" else {}),
            "config": self.config,
            "metrics": metrics,
            "params": self.params,
        }

    # -- steps ---------------------------------------------------------------------------------
    def validate(self) -> dict[str, float]:
        t = self.config["train"]
        if not self.table.existence:
            return self.validate_class_maps()
        c = score_samples(self.predictor, self.config["dataset"]["root"], self.val_samples, self.pre,
                          batch_size=max(1, t["batch_size"] // self.d.world), workers=self.config["dataset"]["num_workers"],
                          input_kind=self.input_kind)
        tp, fp, fn = distributed.all_sum(self.d, [c.tp, c.fp, c.fn])
        f1 = 2 * tp / (2 * tp + fp + fn) if tp + fn else 0.0
        return {"val/f1": f1, "val/precision": tp / (tp + fp) if tp + fp else 0.0, "val/recall": tp / (tp + fn) if tp + fn else 0.0}

    def validate_class_maps(self) -> dict[str, float]:
        """mIoU at the network size over the table's evaluated classes, counted as the official
        evaluation counts (:func:`runtime.miou.evaluated_iou`), and pixel accuracy."""
        t, n = self.config["train"], self.table.num_classes
        local = confusion_samples(self.predictor, self.config["dataset"]["root"], self.val_samples, self.pre, n,
                                  batch_size=max(1, t["batch_size"] // self.d.world), workers=self.config["dataset"]["num_workers"],
                                  input_kind=self.input_kind)
        matrix = np.array(distributed.all_sum(self.d, local.ravel().tolist())).reshape(n, n)
        miou = nan_mean(evaluated_iou(matrix, np.array(self.table.evaluated)))
        return {"val/miou": 0.0 if np.isnan(miou) else miou, "val/pixel_acc": float(np.trace(matrix) / max(1, matrix.sum()))}

    def run(self, max_steps: int | None = None) -> dict[str, Any]:
        """Train until ``train.iterations`` (or ``max_steps`` more steps, then checkpoint and stop)."""
        t, d = self.config["train"], self.d
        stop = t["iterations"] if max_steps is None else min(t["iterations"], self.start + max_steps)
        if d.main:
            self.out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.out / "config.yaml", dump(self.config))
            precision = "CUDA float16 autocast" if self.amp else "CPU bfloat16 autocast" if self.bf16 else "float32"
            log.info("%s: %s, %s, %d parameters", self.config["name"], d.device, precision, self.params)
        scalars = ScalarLog(self.out, self.start) if d.main else None
        sampler = IterationBatchSampler(len(self.train_set), t["batch_size"], t["iterations"], t["seed"], self.start, d.rank, d.world)
        workers = self.config["dataset"]["num_workers"]
        loader = DataLoader(self.train_set, batch_sampler=sampler, num_workers=workers, pin_memory=self.cuda,
                            worker_init_fn=_worker_init, persistent_workers=False,
                            multiprocessing_context=worker_context() if workers else None)
        bar = None
        if d.main and sys.stderr.isatty():  # a terminal keeps its bar; a log file gets one line every log_every steps
            from tqdm import tqdm

            bar = tqdm(total=t["iterations"], initial=self.start, desc=self.config["name"], unit="it", dynamic_ncols=True)
        metrics: dict[str, float] = {}
        window_loss: dict[str, float] = {}
        window_steps, window_start, window_images = 0, time.perf_counter(), 0
        run_start, trained_images = time.perf_counter(), 0
        try:
            for it, (x, y, e) in enumerate(loader, start=self.start):
                step = it + 1
                torch.manual_seed(t["seed"] * 1_000_003 + it * d.world + d.rank)  # dropout: a function of the step
                self.model.train()
                if self.config["model"]["freeze_bn"]:
                    freeze_batchnorm(self.model)
                x, y, e = (v.to(d.device, non_blocking=True) for v in (x, y, e))
                inp = one_hot_label(y, self.table.num_classes) if self.input_kind == "label" else x
                taps = self.distiller.student_taps if self.distiller is not None else ()
                with torch.autocast(d.device.type, dtype=torch.bfloat16 if self.bf16 else torch.float16, enabled=self.amp or self.bf16):
                    out = self.net(inp, taps=taps) if taps else self.net(inp)
                seg, exist = out[0], out[1]
                if self.bf16:  # losses in float32
                    seg, exist = seg.float(), (exist.float() if exist is not None else None)
                    out = (seg, exist, {k: v.float() for k, v in out[2].items()}) if taps else (seg, exist)
                losses = self.loss_fn(seg, exist, y, e, weight_sum=(lambda w: distributed.mean_tensor(d, w)) if d.enabled else None)
                if self.distiller is not None:
                    extra = self.distiller(x, y, seg, out[2] if taps else {})
                    losses.update(extra)
                    losses["total"] = losses["total"] + sum(extra.values())
                bad = distributed.all_sum(d, [0.0 if torch.isfinite(losses["total"]).item() else 1.0])[0]
                if bad:
                    saved = f"{self.out / 'last.pt'} (iteration {self._saved})" if self._saved else "none written yet"
                    raise TrainingDiverged(
                        f"loss is {losses['total'].item()} at iteration {step}; stopped before the update. Last good checkpoint: {saved}"
                    )
                self.optimizer.zero_grad(set_to_none=True)
                self.scaler.scale(losses["total"]).backward()
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.scheduler.step()
                if self.distiller is not None:
                    self.distiller.after_student_step()  # SKD: the discriminator's step, after the student's
                for key, value in losses.items():
                    window_loss[key] = window_loss.get(key, 0.0) + value.item()
                window_steps += 1
                window_images += x.shape[0] * d.world
                trained_images += x.shape[0] * d.world
                if bar:
                    bar.update()
                    bar.set_postfix(loss=f"{losses['total'].item():.3f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}")
                if step % t["log_every"] == 0 or step == t["iterations"]:
                    keys = sorted(window_loss)
                    sums = distributed.all_sum(d, [window_loss[k] for k in keys])
                    mean = {(k if "/" in k else f"loss/{k}"): v / (window_steps * d.world) for k, v in zip(keys, sums)}
                    rate = window_images / (time.perf_counter() - window_start)
                    if scalars:
                        scalars.add(step, {**mean, "lr": self.scheduler.get_last_lr()[0], "speed/img_per_s": rate})
                    if d.main and bar is None:
                        its = rate / (t["batch_size"])
                        eta = (t["iterations"] - step) / its if its > 0 else float("nan")
                        log.info("[%s] iteration %d/%d: loss %.4f, lr %.2e, %.2f it/s, ETA %dm%02ds", self.config["name"], step,
                                 t["iterations"], mean.get("loss/total", float("nan")), self.scheduler.get_last_lr()[0], its,
                                 int(eta // 60) if eta == eta else 0, int(eta % 60) if eta == eta else 0)
                    window_loss, window_steps, window_start, window_images = {}, 0, time.perf_counter(), 0
                validated = step % t["val_every"] == 0 or step == t["iterations"]
                if validated:
                    metrics = self.validate()
                    improved = metrics[self.metric] > self.best
                    self.best = max(self.best, metrics[self.metric])
                    if d.main:
                        scalars.add(step, metrics)  # type: ignore[union-attr]
                        name = "F1" if self.metric == "val/f1" else "mIoU"
                        line = f"[{self.config['name']}] iteration {step}: val {name} {metrics[self.metric]:.4f} (best {self.best:.4f})"
                        if bar:
                            bar.write(line)
                        else:
                            log.info("%s", line)
                        if improved:
                            save_checkpoint(self.out / "best.pt", self._payload(step, metrics))
                if d.main and (validated or step % t["checkpoint_every"] == 0 or step == stop):
                    save_checkpoint(self.out / "last.pt", self._payload(step, metrics))
                    self._saved = step
                window_start = window_start if not validated else time.perf_counter()
                if step == stop:
                    break
        finally:
            if bar:
                bar.close()
            if scalars and not scalars.closed:
                scalars.close()
        elapsed = time.perf_counter() - run_start
        summary = {
            "name": self.config["name"],
            "completed": stop == t["iterations"],
            "stopped_at": stop,
            "arch": self.config["model"]["arch"],
            "params": self.params,
            "iterations": t["iterations"],
            "resumed_from": self.start,
            "batch_size": t["batch_size"],
            "processes": d.world,
            "device": str(d.device) if not self.cuda else torch.cuda.get_device_name(d.device),
            "input_size": [self.pre.net_width, self.pre.net_height],
            "wall_s": round(elapsed, 1),
            "train_img_per_s": round(trained_images / elapsed, 2) if elapsed > 0 else None,
            f"best_{self.metric.replace('/', '_')}": self.best,
            "last_val": metrics,
        }
        if d.main:
            if summary["completed"]:
                plot_curves(self.out / "scalars.csv", self.out / "curves.png", self.config["name"])
                atomic_write_json(self.out / "train_summary.json", summary)
        distributed.barrier(d)
        return summary


def best_line(summary: dict[str, Any]) -> str:
    """``best val F1 0.5123`` or ``best val mIoU 0.3012`` from a run summary."""
    key = "best_val_f1" if "best_val_f1" in summary else "best_val_miou"
    return f"best val {'F1' if key == 'best_val_f1' else 'mIoU'} {summary[key]:.4f}"


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m training.train", description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="experiment YAML (see training/configs/)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value (repeatable)")
    parser.add_argument("--resume", action="store_true", help="continue from the run folder's last.pt (fresh start if none)")
    parser.add_argument("--max-steps", type=positive_int, help="stop after this many steps (checkpointed; continue with --resume)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    d = distributed.setup()
    if not d.main:
        logging.getLogger().setLevel(logging.WARNING)
    try:
        config = load_config(args.config, args.set)
        check_output_dir(run_dir(config), "run folder")
        summary = Trainer(config, d, resume=args.resume).run(args.max_steps)
        if d.main:
            done = "" if summary["completed"] else f" (stopped at {summary['stopped_at']}/{summary['iterations']}: --resume to go on)"
            print(f"{summary['name']}: iterations {summary['resumed_from']}..{summary['stopped_at']} in {summary['wall_s']} s "
                  f"({summary['train_img_per_s']} img/s), {best_line(summary)} -> {run_dir(config)}{done}")
        return 0
    except (ConfigError, DataError, OSError) as err:
        return fail(err)
    except TrainingDiverged as err:
        print(f"error: training diverged: {err}", file=sys.stderr)
        return 3
    finally:
        distributed.teardown(d)


if __name__ == "__main__":
    sys.exit(main())
