"""F1 per category of a deployed lane model, or mIoU of a marking model (any backend, any precision), torch-free.

    python -m runtime.evaluate --model M --data-root ROOT [--list LIST ...] [--backend auto] [--device cpu]
                               [--threads N] [--max-images N] [--pred-dir DIR] [--group-by drive] [--skip-bad]
                               [--report R.json] [--json]

Reads images through the runtime's reader, preprocesses them as the model's sidecar says, runs
the backend, decodes lanes with the sidecar's parameters, optionally writes predictions in the
CULane layout, and counts them against the annotations exactly as the official evaluator does.
Without ``--list`` every ``list/test_split`` category is scored, plus the pooled total.
``--group-by drive`` also scores the pooled images per drive (the first folder of each image
path, CULane's ``driver_xx_30frame``), in the report's ``groups.drive``.

Before any inference: the report and prediction locations are checked writable, every list must
name images, and every listed image and annotation must exist. A missing, truncated or
undecodable image stops the run with one line naming it, or with ``--skip-bad`` is left out of
every count, listed on stderr and in the report's ``skipped``. Predictions are written into a
temporary folder moved into ``--pred-dir`` only when the whole run succeeded.

A marking model (its sidecar's ``class_table`` has no lanes, e.g. ``apolloscape``) is scored by
mIoU at full label resolution instead, on one ``--list`` (default ``list/test_gt.txt``):
:mod:`runtime.evaluate_markings`.
"""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from pathlib import Path

import numpy as np

from runtime.backends import BACKENDS, DEVICES, Backend, load_backend, probabilities, require_lanes
from runtime.culane import CulaneDataset, Sample, read_list
from runtime.culane_metric import Counts, count_image
from runtime.decode import DecodedLane, LaneDecoder
from runtime.atomic import atomic_write_json, staged_directory
from runtime.cli import Parser, check_output_dir, check_output_file, positive_int, run_main, with_sidecars
from runtime.errors import DataError
from runtime.evaluate_culane import default_lists, format_table
from runtime.lines import write_lines_file
from runtime.parallel import read_ahead


PerImage = Callable[[Sample, list[tuple[list[DecodedLane], dict[str, np.ndarray]]]], None]
OnBad = Callable[[Sample, DataError], None]


def predict_many(backends: list[Backend], data_root: str | os.PathLike[str], samples: list[Sample], batch_size: int = 1,
                 progress: bool = False, on_bad: OnBad | None = None,
                 ) -> Iterable[tuple[Sample, list[tuple[list[DecodedLane], dict[str, np.ndarray]]]]]:
    """Yield (sample, [(lanes, raw outputs) per backend]) in order. Every image is read and
    preprocessed once (one batch ahead, in a background thread) and run by every backend, which
    must share the first backend's preprocessing. An unreadable image raises its :class:`DataError`,
    or, when ``on_bad`` is given, is passed to it (which may raise) and not yielded."""
    data = CulaneDataset(data_root)
    pre = backends[0].sidecar.pre
    for backend in backends:
        require_lanes(backend, "lane scoring")
    for other in backends[1:]:
        if other.sidecar.pre != pre:
            raise DataError(other.path, f"preprocessing differs from {backends[0].path}'s: the two cannot be compared image by image")
    decoders = [LaneDecoder(pre, b.sidecar.decode_params) for b in backends]

    def read(sample: Sample) -> np.ndarray | None:
        try:
            image = data.read_image(sample)
            try:
                pre.check_size(image, "frame")
            except ValueError as err:  # another camera's frames: one line naming the file, not a traceback
                raise DataError(data.path(sample.image), f"{err} (the model's {backends[0].path.name})") from None
            return image
        except DataError as err:
            if on_bad is None:
                raise
            on_bad(sample, err)
            return None

    def load(chunk: list[Sample]) -> tuple[list[Sample], np.ndarray | None]:
        images = [(s, image) for s in chunk if (image := read(s)) is not None]
        return [s for s, _ in images], (pre([image for _, image in images]) if images else None)

    chunks = [samples[i : i + batch_size] for i in range(0, len(samples), batch_size)]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(samples), desc=f"evaluate ({', '.join(b.name for b in backends)})", unit="img", leave=False)
    for whole, (chunk, batch) in zip(chunks, read_ahead(chunks, load)):
        if batch is None:
            if bar:
                bar.update(len(whole))
            continue
        per_backend = []
        for backend, decoder in zip(backends, decoders):
            outputs = backend.infer(batch)
            seg, exist = probabilities(outputs)
            per_backend.append((outputs, seg, exist, decoder))
        for j, sample in enumerate(chunk):
            yield sample, [(decoder(seg[j], exist[j]), {kind: v[j] for kind, v in outputs.items()})
                           for outputs, seg, exist, decoder in per_backend]
        if bar:
            bar.update(len(whole))
    if bar:
        bar.close()


def predict(backend: Backend, data_root: str | os.PathLike[str], samples: list[Sample], batch_size: int = 1,
            progress: bool = False) -> Iterable[tuple[Sample, list[DecodedLane], dict[str, np.ndarray]]]:
    """Yield (sample, lanes, raw outputs of that image) in order (:func:`predict_many` with one backend)."""
    for sample, [(lanes, outputs)] in predict_many([backend], data_root, samples, batch_size, progress):
        yield sample, lanes, outputs




def read_lists(lists: dict[str, Path], max_images: int | None = None) -> dict[str, list[Sample]]:
    """Samples of each list (first ``max_images`` of each when given); :class:`DataError` for an empty list."""
    if max_images is not None and max_images < 1:
        raise DataError(next(iter(lists.values()), "--max-images"), f"--max-images must be >= 1, got {max_images}")
    per_list = {}
    for name, path in lists.items():
        per_list[name] = read_list(path).samples[:max_images]
        if not per_list[name]:
            raise DataError(path, "the list names no images (empty file)")
    return per_list


def check_files_exist(data_root: str | os.PathLike[str], samples: list[Sample], lanes: bool = True) -> list[tuple[Sample, DataError]]:
    """Every sample whose image (or, with ``lanes``, ``.lines.txt`` annotation) is missing, with its
    error (list order); a stat per file, so a list naming missing frames is refused before any work."""
    data = CulaneDataset(data_root)
    missing = []
    for sample in samples:
        files = [(sample.image, "image")] + ([(sample.lines_name, "lane annotation (.lines.txt)")] if lanes else [])
        for relative, what in files:
            if not data.path(relative).is_file():
                missing.append((sample, DataError(sample.source, f"{what} {data.path(relative)} not found", line=sample.line)))
                break
    return missing


def distinct(per_list: dict[str, list[Sample]]) -> list[Sample]:
    """The lists' samples, each image once, in first-seen order."""
    return list({s.image: s for samples in per_list.values() for s in samples}.values())


def count_models(backends: list[Backend], data_root: str | os.PathLike[str], samples: list[Sample], batch_size: int = 1,
                 pred_dir: str | os.PathLike[str] | None = None, progress: bool = False,
                 on_image: PerImage | None = None, on_bad: OnBad | None = None) -> list[dict[str, Counts]]:
    """Per backend: {image path: counts of that image}; ``on_image(sample, [(lanes, outputs) per
    backend])`` sees every image once, as it passes; ``pred_dir`` receives the first backend's
    predictions; ``on_bad(sample, error)`` sees unreadable images instead of raising (see :func:`predict_many`)."""
    root = Path(data_root)
    data = CulaneDataset(root)
    counts: list[dict[str, Counts]] = [{} for _ in backends]
    for sample, results in predict_many(backends, root, samples, batch_size, progress, on_bad):
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
    return [tally(per_list, c) for c in counts]


def tally(per_list: dict[str, list[Sample]], counts: dict[str, Counts]) -> dict[str, Counts]:
    result = {}
    for name, samples in per_list.items():
        total = Counts()
        for s in samples:
            if s.image in counts:  # skipped (unreadable) images are in no total
                total += counts[s.image]
        result[name] = total
    pooled = Counts()
    for c in counts.values():
        pooled += c
    result["total"] = pooled
    return result


def counts_by_image(counts: dict[str, Counts]) -> dict[str, list[int]]:
    """{image: [tp, fp, fn]}: what an image-paired comparison of two reports needs (:mod:`runtime.paired`)."""
    return {image: [c.tp, c.fp, c.fn] for image, c in counts.items()}


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
        if sample.image not in counts:  # skipped (unreadable)
            continue
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


def _parser() -> Parser:
    parser = Parser(prog="python -m runtime.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="a deployed artifact with its .json sidecar")
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--list", action="append", default=[], help="list (repeatable); default: ROOT/list/test_split/* "
                        "(a marking model: one list, default ROOT/list/test_gt.txt)")
    parser.add_argument("--backend", default="auto", choices=BACKENDS)
    parser.add_argument("--device", default="cpu", choices=DEVICES)
    parser.add_argument("--threads", type=positive_int)
    parser.add_argument("--batch-size", type=positive_int, default=1)
    parser.add_argument("--max-images", type=positive_int, help="first N images of each list")
    parser.add_argument("--pred-dir", help="also write predictions (CULane layout) here; filled only when the whole run succeeds")
    parser.add_argument("--group-by", choices=sorted(GROUPS), help="also score the pooled images per group (drive: first folder of the image path)")
    parser.add_argument("--skip-bad", action="store_true",
                        help="leave out missing, truncated or undecodable images (counted, listed on stderr and in the report) "
                             "instead of stopping at the first")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--report", help="also write the results as JSON to this file (atomically)")
    return parser


SKIP_HINT = "--skip-bad leaves such images out"


def _refuse_or_skip(problems: list[tuple[Sample, DataError]], skip_bad: bool) -> None:
    if problems and not skip_bad:
        more = f" (and {len(problems) - 1} more; {SKIP_HINT})" if len(problems) > 1 else f" ({SKIP_HINT})"
        raise DataError(problems[0][1].path, problems[0][1].problem + more, line=problems[0][1].line)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)

    def body() -> int:
        inputs = with_sidecars(args.model) + [args.data_root] + args.list
        if args.report:
            check_output_file(args.report, "report", inputs)
        if args.pred_dir:
            check_output_dir(args.pred_dir, "prediction folder", inputs)  # never into the data root: it holds the annotations
        backend = load_backend(args.model, args.backend, args.device, args.threads)
        if not backend.sidecar.table.existence:  # a marking model: mIoU at full label resolution
            from runtime.evaluate_markings import run

            return run(args, backend)
        per_list = read_lists(resolve_lists(args.data_root, args.list), args.max_images)
        samples = distinct(per_list)
        missing = check_files_exist(args.data_root, samples)
        _refuse_or_skip(missing, args.skip_bad)
        absent = {s.image for s, _ in missing}
        skipped: list[tuple[Sample, DataError]] = list(missing)
        readable = [s for s in samples if s.image not in absent]

        def on_bad(sample: Sample, err: DataError) -> None:
            _refuse_or_skip([(sample, err)], args.skip_bad)
            skipped.append((sample, err))

        with staged_directory(args.pred_dir) if args.pred_dir else nullcontext(None) as pred_dir:
            [counts] = count_models([backend], args.data_root, readable, args.batch_size, pred_dir, sys.stderr.isatty(),
                                    on_bad=on_bad)
            if not counts:
                raise DataError(args.data_root, f"none of the {len(samples)} listed images could be read")
        report(args, backend, per_list, samples, counts, skipped)
        return 0

    return run_main(body)


def report(args, backend: Backend, per_list: dict[str, list[Sample]], samples: list[Sample], counts: dict[str, Counts],
           skipped: list[tuple[Sample, DataError]]) -> None:
    """Print the table (and groups), write ``--report``, print ``--json``; list skipped images on stderr."""
    results = tally(per_list, counts)
    groups = group_counts(samples, counts, GROUPS[args.group_by]) if args.group_by else None
    print(format_table(results))
    if groups is not None:
        print(f"\nper {args.group_by}:\n" + format_table(groups))
    for sample, err in skipped:
        print(f"skipped: {err}", file=sys.stderr)
    if skipped:
        print(f"warning: {len(skipped)} of {len(samples)} images skipped (--skip-bad): not scored", file=sys.stderr)
    record = {"model": args.model, "backend": backend.name, "device": backend.device, "device_name": backend.device_name,
              "precision": backend.sidecar.precision, "data_root": str(args.data_root), "max_images": args.max_images,
              "lists": {k: v.to_dict() for k, v in results.items()},
              "per_image": counts_by_image(counts),
              "skipped": [{"image": s.image, "problem": str(err)} for s, err in skipped]}
    if groups is not None:
        record["groups"] = {args.group_by: {k: v.to_dict() for k, v in groups.items()}}
    if args.report:
        atomic_write_json(Path(args.report), record)
    if args.json:
        print(json.dumps(record))


if __name__ == "__main__":
    sys.exit(main())
