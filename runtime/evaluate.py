"""F1 per category of a deployed model (any backend, any precision), torch-free.

    python -m runtime.evaluate --model M --data-root ROOT [--list LIST ...] [--backend auto] [--device cpu]
                               [--threads N] [--max-images N] [--pred-dir DIR] [--group-by drive] [--json]

Reads images through the runtime's reader, preprocesses them as the model's sidecar says, runs
the backend, decodes lanes with the sidecar's parameters, optionally writes predictions in the
CULane layout, and counts them against the annotations exactly as the official evaluator does.
Without ``--list`` every ``list/test_split`` category is scored, plus the pooled total.
``--group-by drive`` also scores the pooled images per drive (the first folder of each image
path, CULane's ``driver_xx_30frame``), in the report's ``groups.drive``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from runtime.backends import Backend, load_backend, probabilities
from runtime.culane import CulaneDataset, Sample, read_list
from runtime.culane_metric import Counts, count_image
from runtime.decode import DecodedLane, LaneDecoder
from runtime.atomic import atomic_write_json
from runtime.errors import DataError
from runtime.evaluate_culane import default_lists, format_table
from runtime.lines import write_lines_file


def predict_many(backends: list[Backend], data_root: str | os.PathLike[str], samples: list[Sample], batch_size: int = 1,
                 progress: bool = False) -> Iterable[tuple[Sample, list[tuple[list[DecodedLane], dict[str, np.ndarray]]]]]:
    """Yield (sample, [(lanes, raw outputs) per backend]) in order. Every image is read and
    preprocessed once (one batch ahead, in a background thread) and run by every backend, which
    must share the first backend's preprocessing."""
    data = CulaneDataset(data_root)
    pre = backends[0].sidecar.pre
    for other in backends[1:]:
        if other.sidecar.pre != pre:
            raise DataError(other.path, f"preprocessing differs from {backends[0].path}'s: the two cannot be compared image by image")
    decoders = [LaneDecoder(pre, b.sidecar.decode_params) for b in backends]

    def load(chunk: list[Sample]) -> np.ndarray:
        return pre([data.read_image(s) for s in chunk])

    chunks = [samples[i : i + batch_size] for i in range(0, len(samples), batch_size)]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(samples), desc=f"evaluate ({', '.join(b.name for b in backends)})", unit="img", leave=False)
    with ThreadPoolExecutor(max_workers=1) as reader:
        pending = reader.submit(load, chunks[0]) if chunks else None
        for k, chunk in enumerate(chunks):
            batch = pending.result()  # type: ignore[union-attr]
            pending = reader.submit(load, chunks[k + 1]) if k + 1 < len(chunks) else None
            per_backend = []
            for backend, decoder in zip(backends, decoders):
                outputs = backend.infer(batch)
                seg, exist = probabilities(outputs)
                per_backend.append((outputs, seg, exist, decoder))
            for j, sample in enumerate(chunk):
                yield sample, [(decoder(seg[j], exist[j]), {kind: v[j] for kind, v in outputs.items()})
                               for outputs, seg, exist, decoder in per_backend]
            if bar:
                bar.update(len(chunk))
    if bar:
        bar.close()


def predict(backend: Backend, data_root: str | os.PathLike[str], samples: list[Sample], batch_size: int = 1,
            progress: bool = False) -> Iterable[tuple[Sample, list[DecodedLane], dict[str, np.ndarray]]]:
    """Yield (sample, lanes, raw outputs of that image) in order (:func:`predict_many` with one backend)."""
    for sample, [(lanes, outputs)] in predict_many([backend], data_root, samples, batch_size, progress):
        yield sample, lanes, outputs


PerImage = Callable[[Sample, list[tuple[list[DecodedLane], dict[str, np.ndarray]]]], None]


def read_lists(lists: dict[str, Path], max_images: int | None = None) -> dict[str, list[Sample]]:
    """Samples of each list (first ``max_images`` of each when given)."""
    return {name: read_list(path).samples[:max_images] for name, path in lists.items()}


def distinct(per_list: dict[str, list[Sample]]) -> list[Sample]:
    """The lists' samples, each image once, in first-seen order."""
    return list({s.image: s for samples in per_list.values() for s in samples}.values())


def count_models(backends: list[Backend], data_root: str | os.PathLike[str], samples: list[Sample], batch_size: int = 1,
                 pred_dir: str | os.PathLike[str] | None = None, progress: bool = False,
                 on_image: PerImage | None = None) -> list[dict[str, Counts]]:
    """Per backend: {image path: counts of that image}; ``on_image(sample, [(lanes, outputs) per
    backend])`` sees every image once, as it passes; ``pred_dir`` receives the first backend's predictions."""
    root = Path(data_root)
    data = CulaneDataset(root)
    counts: list[dict[str, Counts]] = [{} for _ in backends]
    for sample, results in predict_many(backends, root, samples, batch_size, progress):
        truth = data.read_lanes(sample)
        if pred_dir is not None:
            write_lines_file(Path(pred_dir) / sample.lines_name, [lane.points for lane in results[0][0]], durable=False)
        if on_image is not None:
            on_image(sample, results)
        for per_image, (lanes, _) in zip(counts, results):
            per_image[sample.image] = count_image(truth, [lane.points for lane in lanes])
    return counts


def evaluate_models(backends: list[Backend], data_root: str | os.PathLike[str], lists: dict[str, Path], batch_size: int = 1,
                    max_images: int | None = None, pred_dir: str | os.PathLike[str] | None = None, progress: bool = False,
                    on_image: PerImage | None = None) -> list[dict[str, Counts]]:
    """Per backend: counts per list and the pooled ``"total"``; ``max_images`` caps each list (first
    N); ``on_image(sample, [(lanes, outputs) per backend])`` sees every image once, as it passes;
    ``pred_dir`` receives the first backend's predictions."""
    per_list = read_lists(lists, max_images)
    counts = count_models(backends, data_root, distinct(per_list), batch_size, pred_dir, progress, on_image)
    return [_tally(per_list, c) for c in counts]


def _tally(per_list: dict[str, list[Sample]], counts: dict[str, Counts]) -> dict[str, Counts]:
    result = {}
    for name, samples in per_list.items():
        total = Counts()
        for s in samples:
            total += counts[s.image]
        result[name] = total
    pooled = Counts()
    for c in counts.values():
        pooled += c
    result["total"] = pooled
    return result


def drive_of(sample: Sample) -> str:
    """CULane's drive folder of a sample: the first component of its image path (``driver_23_30frame``;
    ``.`` for an image at the root)."""
    head, sep, _ = sample.image.partition("/")
    return head if sep else "."


GROUPS: dict[str, Callable[[Sample], str]] = {"drive": drive_of}
"""``--group-by`` keys: how images are grouped for per-group counts."""


def group_counts(samples: list[Sample], counts: dict[str, Counts], key: Callable[[Sample], str]) -> dict[str, Counts]:
    """Counts pooled per group (``key(sample)``), groups sorted by name; each image once."""
    groups: dict[str, Counts] = {}
    for sample in {s.image: s for s in samples}.values():
        pooled = groups.setdefault(key(sample), Counts())
        pooled += counts[sample.image]  # in place: the dict's entry grows
    return dict(sorted(groups.items()))


def evaluate_model(backend: Backend, data_root: str | os.PathLike[str], lists: dict[str, Path], batch_size: int = 1,
                   max_images: int | None = None, pred_dir: str | os.PathLike[str] | None = None,
                   progress: bool = False) -> dict[str, Counts]:
    """Counts per list and the pooled ``"total"``; ``max_images`` caps each list (first N)."""
    return evaluate_models([backend], data_root, lists, batch_size, max_images, pred_dir, progress)[0]


def resolve_lists(data_root: str | os.PathLike[str], names: list[str]) -> dict[str, Path]:
    if not names:
        return default_lists(data_root)
    data = CulaneDataset(data_root)
    out = {}
    for name in names:
        path = data.list_path(name)
        key = path.stem
        if key in out:
            raise DataError(name, f"two lists would both be reported as '{key}'")
        out[key] = path
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runtime.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="a deployed artifact with its .json sidecar")
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--list", action="append", default=[], help="list (repeatable); default: ROOT/list/test_split/*")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--max-images", type=int, help="first N images of each list")
    parser.add_argument("--pred-dir", help="also write predictions (CULane layout) here")
    parser.add_argument("--group-by", choices=sorted(GROUPS), help="also score the pooled images per group (drive: first folder of the image path)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--report", help="also write the results as JSON to this file (atomically)")
    args = parser.parse_args(argv)
    try:
        backend = load_backend(args.model, args.backend, args.device, args.threads)
        per_list = read_lists(resolve_lists(args.data_root, args.list), args.max_images)
        samples = distinct(per_list)
        [counts] = count_models([backend], args.data_root, samples, args.batch_size, args.pred_dir, sys.stderr.isatty())
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    results = _tally(per_list, counts)
    groups = group_counts(samples, counts, GROUPS[args.group_by]) if args.group_by else None
    print(format_table(results))
    if groups is not None:
        print(f"\nper {args.group_by}:\n" + format_table(groups))
    record = {"model": args.model, "backend": backend.name, "device": backend.device, "device_name": backend.device_name,
              "precision": backend.sidecar.precision, "data_root": str(args.data_root), "max_images": args.max_images,
              "lists": {k: v.to_dict() for k, v in results.items()}}
    if groups is not None:
        record["groups"] = {args.group_by: {k: v.to_dict() for k, v in groups.items()}}
    if args.report:
        atomic_write_json(Path(args.report), record)
    if args.json:
        print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
