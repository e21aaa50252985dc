"""Evaluate a checkpoint: predictions in the CULane layout and F1 per category, via the runtime.

    python -m training.evaluate --ckpt CKPT [--data-root ROOT] [--split val|test] [--list LIST] [--out DIR] [--json]

``--split test`` predicts every image of ``list/test.txt`` and scores each
``list/test_split`` category plus the pooled total; ``--split val`` scores the validation list;
``--list LIST`` (under ``ROOT/list``, ``ROOT`` or a path) scores that one list instead, e.g. real
frames: ``--data-root ../shared/data/culane_real_dev --list all.txt --out DIR``.
Writes ``DIR/predictions/<image>.lines.txt`` (readable by the official evaluator too),
``DIR/f1.json`` and ``DIR/f1.md``. ``DIR`` defaults to ``<run folder>/eval_<split>``.

A model of a marking class table (``dataset.classes: apolloscape``) is scored by mIoU instead, at
the network size, over the table's evaluated classes counted as the official evaluation counts
(``--split test``: ``list/test_gt.txt``, image + label lines): ``DIR/miou.json`` and ``DIR/miou.md``
with the IoU per class.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from runtime.atomic import atomic_write_json, atomic_write_text
from runtime.classes import ClassTable, class_table
from runtime.culane import CulaneDataset
from runtime.culane_metric import Counts
from runtime.decode import DecodeParams
from runtime.cli import Parser, check_output_dir, fail, non_negative_int, positive_int
from runtime.errors import DataError
from runtime.culane import default_lists
from runtime.culane_metric import evaluate_lists, format_table
from runtime.lines import write_lines_file
from runtime.miou import iou_report
from runtime.preprocess import Preprocess
from runtime.resources import check_batch, clamp_to_cores
from training.config import ConfigError, parse_override, run_dir
from training.inference import ClassMapPredictor, LanePredictor, confusion_samples, predict_samples
from training.models import count_parameters, load_trained


def markdown(results: dict[str, Counts], title: str) -> str:
    def f(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.2f}"

    rows = [f"# {title}", "", "| list | images | TP | FP | FN | precision | recall | F1 |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, c in results.items():
        rows.append(f"| {name} | {c.images} | {c.tp} | {c.fp} | {c.fn} | {f(c.precision)} | {f(c.recall)} | {f(c.f1)} |")
    rows.append("")
    rows.append("F1 in %; `cross` has no annotated lanes and is judged by its FP count (lower is better).")
    return "\n".join(rows) + "\n"


def evaluate_checkpoint(ckpt_path: str | Path, data_root: str | None = None, split: str = "test", out: str | Path | None = None,
                        device: str | None = None, batch_size: int = 8, workers: int = 2, progress: bool = True,
                        decode: dict | None = None, list_name: str | None = None) -> dict:
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model, ckpt = load_trained(ckpt_path, dev)
    config = ckpt["config"]
    root = Path(data_root or config["dataset"]["root"])
    out_dir = Path(out) if out else run_dir(config) / f"eval_{split}"
    pred_dir = out_dir / "predictions"
    pre = Preprocess.from_dict(config["input"])
    data = CulaneDataset(root)
    table = class_table(config["dataset"].get("classes", "culane"))
    check_batch("--batch-size", batch_size, 3, table.num_classes, pre.net_height, pre.net_width, ckpt_path)
    workers = clamp_to_cores(workers, "workers") if workers else 0
    if not table.existence:
        list_path = data.list_path(list_name or ("test_gt.txt" if split == "test" else config["dataset"]["val_list"]))
        return evaluate_class_maps(model, ckpt_path, ckpt, table, root, list_path, out_dir, pre, dev, batch_size, workers)
    if list_name:
        list_path = data.list_path(list_name)
        samples = data.read_list(str(list_path)).samples
        lists = {list_path.stem: list_path}
    elif split == "test":
        samples = data.read_list("test.txt").samples
        lists = default_lists(root)
    else:
        val_list = data.list_path(config["dataset"]["val_list"])
        samples = data.read_list(str(val_list)).samples
        lists = {"val": val_list}
    if samples:  # frames of another camera: the runtime scores them (frame policy, metric at their size); training does not
        first = data.read_image(samples[0])
        if first.shape[:2] != (pre.src_height, pre.src_width):
            raise DataError(data.path(samples[0].image), f"frame is {first.shape[1]}x{first.shape[0]}, the model's source geometry "
                            f"{pre.src_width}x{pre.src_height}: score the exported model with python -m runtime.evaluate, "
                            "which scores frames of any size")
    decode_params = DecodeParams.from_dict({**config["decode"], **(decode or {})})
    predictor = LanePredictor(model, pre, decode_params, dev, amp=bool(config["train"]["amp"]))
    for sample, lanes in predict_samples(predictor, root, samples, pre, batch_size, workers, progress=progress):
        write_lines_file(pred_dir / sample.lines_name, [lane.points for lane in lanes], durable=False)
    results = evaluate_lists(root, pred_dir, lists, workers=workers)
    if split == "val" and not list_name:  # the one validation list: its total is itself (a test split of one category keeps it)
        results.pop("total")
    report = {
        "checkpoint": str(ckpt_path),
        "iteration": int(ckpt["iteration"]),
        "model": config["name"],
        "arch": config["model"]["arch"],
        "params": count_parameters(model),
        "data_root": str(root),
        "split": split,
        "list": str(data.list_path(list_name)) if list_name else None,
        "predictions": str(pred_dir),
        "decode": decode_params.to_dict(),
        "f1": {k: v.to_dict() for k, v in results.items()},
    }
    atomic_write_json(out_dir / "f1.json", report)
    atomic_write_text(out_dir / "f1.md", markdown(results, f"{config['name']} ({split}, iteration {report['iteration']})"))
    report["table"] = format_table(results)
    return report


def evaluate_class_maps(model: torch.nn.Module, ckpt_path: str | Path, ckpt: dict, table: ClassTable, root: Path, list_path: Path, out_dir: Path,
                        pre: Preprocess, device: torch.device, batch_size: int, workers: int) -> dict:
    """mIoU of a marking model over one list (network size); writes ``miou.json`` and ``miou.md``."""
    config = ckpt["config"]
    samples = CulaneDataset(root, table.num_classes).read_list(str(list_path)).samples
    if not samples:
        raise DataError(list_path, "the list names no images (empty file)")
    predictor = ClassMapPredictor(model, device, amp=bool(config["train"]["amp"]))
    matrix = confusion_samples(predictor, root, samples, pre, table.num_classes, batch_size, workers)
    report = {"checkpoint": str(ckpt_path), "iteration": int(ckpt["iteration"]), "model": config["name"],
              "arch": config["model"]["arch"], "params": count_parameters(model), "data_root": str(root), "list": str(list_path),
              "classes": table.name, "images": len(samples), "resolution": f"{pre.net_width}x{pre.net_height} (network size)",
              **iou_report(matrix, table.names, table.evaluated), "confusion": matrix.tolist()}
    per_class = report["iou"]
    rows = [f"# {config['name']} ({list_path.name}, iteration {report['iteration']})", "",
            f"mIoU **{100 * report['miou']:.2f} %** over {report['classes_scored']} classes, {len(samples)} images, at "
            f"{report['resolution']}", "", "| class | IoU % |", "|---|---:|"]
    rows += [f"| {name} | {'-' if v is None else f'{100 * v:.2f}'} |" for name, v in per_class.items()]
    atomic_write_json(out_dir / "miou.json", report)
    atomic_write_text(out_dir / "miou.md", "\n".join(rows) + "\n")
    report["table"] = "\n".join(rows[2:])
    return report


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m training.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--data-root", help="dataset root (default: the one the checkpoint was trained on)")
    parser.add_argument("--split", choices=("val", "test"), default="test")
    parser.add_argument("--list", help="score this list only (instead of --split's)")
    parser.add_argument("--out", help="output folder (default: <run folder>/eval_<split>)")
    parser.add_argument("--device", choices=("cpu", "cuda"))
    parser.add_argument("--batch-size", type=positive_int, default=8)
    parser.add_argument("--workers", type=non_negative_int, default=2)
    parser.add_argument("--decode", action="append", default=[], metavar="KEY=VALUE",
                        help="override a decoding parameter (e.g. blur_kernel=9, prob_threshold=0.4)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args(argv)
    try:
        if args.out:
            check_output_dir(args.out, "evaluation folder")
        overrides = {k: v for item in args.decode for k, v in parse_override(item).items()}
        report = evaluate_checkpoint(args.ckpt, args.data_root, args.split, args.out, args.device, args.batch_size, args.workers,
                                     progress=sys.stderr.isatty(), decode=overrides, list_name=args.list)
    except (ConfigError, DataError, OSError, ValueError) as err:  # ValueError: a bad --decode value
        return fail(err)
    print(report.pop("table"))
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
