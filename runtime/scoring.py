"""Score deployed lane models on a CULane-layout root, torch-free: the loop behind
:mod:`runtime.evaluate`, :mod:`runtime.contact_sheet` and :mod:`calibration`.

Each image is read and preprocessed once (one batch ahead, in a background thread), run by every
backend, decoded with the sidecar's parameters, and counted against its ``.lines.txt``
annotation exactly as the official evaluator counts (:func:`runtime.culane_metric.count_image`).
Counts are kept per image (``{image path: Counts}``) so that lists, drives and paired comparisons
(:mod:`runtime.paired`) pool them as they need.

Frames of any size are scored: each goes through the model's frame policy
(:class:`runtime.frame_policy.FramePolicy`, the crop/resize ``infer_video`` applies to any video),
its lanes are mapped back into the frame, and the metric runs at the frame's own size with the lane
width scaled to its width (:func:`runtime.culane_metric.frame_metric`). CULane-size frames take the
training preprocessing and the official 1640x590 / 30 px metric, as before.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from runtime.backends import Backend, probabilities, require_lanes
from runtime.culane import CulaneDataset, Sample, default_lists, read_list, without_empty
from runtime.culane_metric import Counts, count_image, frame_metric
from runtime.decode import DecodedLane, LaneDecoder
from runtime.errors import DataError
from runtime.frame_policy import DEFAULT_MODE, FramePolicy
from runtime.lines import write_lines_file
from runtime.parallel import read_ahead
from runtime.preprocess import Preprocess


PerImage = Callable[[Sample, list[tuple[list[DecodedLane], dict[str, np.ndarray]]]], None]
OnBad = Callable[[Sample, DataError], None]
FrameSize = tuple[int, int]
"""(width, height) of a frame in pixels."""


class FramePolicies:
    """One :class:`runtime.frame_policy.FramePolicy` per frame size met: how frames of any size are
    fed to a model and its lanes mapped back, exactly as :mod:`runtime.infer_video` does."""

    def __init__(self, pre: Preprocess, mode: str = DEFAULT_MODE) -> None:
        self.pre, self.mode = pre, mode
        self._by_size: dict[FrameSize, FramePolicy] = {}

    def __call__(self, image: np.ndarray) -> FramePolicy:
        size = (int(image.shape[1]), int(image.shape[0]))
        if size not in self._by_size:
            self._by_size[size] = FramePolicy(self.pre, *size, self.mode)
        return self._by_size[size]

    @property
    def sizes(self) -> list[FrameSize]:
        """Frame sizes met so far, in first-seen order."""
        return list(self._by_size)


def to_frame(lanes: list[DecodedLane], policy: FramePolicy) -> list[DecodedLane]:
    """Lanes decoded in the model's source pixels -> the same lanes in frame pixels (as they are
    when the frame has the source geometry: no float round trip)."""
    if policy.identity:
        return lanes
    return [DecodedLane(lane.lane_id, policy.points_to_frame(lane.points)) for lane in lanes]


def predict_many(backends: list[Backend], data_root: str | os.PathLike[str], samples: list[Sample], batch_size: int = 1,
                 progress: bool = False, on_bad: OnBad | None = None, frame_policy: str = DEFAULT_MODE,
                 ) -> Iterable[tuple[Sample, list[tuple[list[DecodedLane], dict[str, np.ndarray]]], FrameSize]]:
    """Yield (sample, [(lanes in frame pixels, raw outputs) per backend], (frame width, height)) in
    order. Every image is read and preprocessed once (one batch ahead, in a background thread) and
    run by every backend, which must share the first backend's preprocessing. A frame of any size
    goes through the model's frame policy (:class:`runtime.frame_policy.FramePolicy`, as in
    ``infer_video``) and its lanes come back in its own pixels; a frame of the source size is
    preprocessed as in training. An unreadable image raises its :class:`DataError`, or, when
    ``on_bad`` is given, is passed to it (which may raise) and not yielded. ``frame_policy``: the
    policy's mode (:data:`runtime.frame_policy.MODES`)."""
    data = CulaneDataset(data_root)
    pre = backends[0].sidecar.pre
    for backend in backends:
        require_lanes(backend, "lane scoring")
    for other in backends[1:]:
        if other.sidecar.pre != pre:
            raise DataError(other.path, f"preprocessing differs from {backends[0].path}'s: the two cannot be compared image by image")
    decoders = [LaneDecoder(pre, b.sidecar.decode_params) for b in backends]
    policies = FramePolicies(pre, frame_policy)

    def read(sample: Sample) -> np.ndarray | None:
        try:
            return data.read_image(sample)  # (H, W, 3): decoded as colour
        except DataError as err:
            if on_bad is None:
                raise
            on_bad(sample, err)
            return None

    def load(chunk: list[Sample]) -> tuple[list[Sample], list[FramePolicy], np.ndarray | None]:
        images = [(s, image) for s in chunk if (image := read(s)) is not None]
        if not images:
            return [], [], None
        batch = np.empty((len(images), 3, pre.net_height, pre.net_width), dtype=np.float32)
        used = []
        for i, (_, image) in enumerate(images):
            policy = policies(image)
            pre.normalize(policy.to_net(image), out=batch[i])  # the source size: pre.resize_image, as in training
            used.append(policy)
        return [s for s, _ in images], used, batch

    chunks = [samples[i : i + batch_size] for i in range(0, len(samples), batch_size)]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(samples), desc=f"evaluate ({', '.join(b.name for b in backends)})", unit="img", leave=False)
    for whole, (chunk, used, batch) in zip(chunks, read_ahead(chunks, load)):
        if batch is None:
            if bar:
                bar.update(len(whole))
            continue
        per_backend = []
        for backend, decoder in zip(backends, decoders):
            outputs = backend.infer(batch)
            seg, exist = probabilities(outputs)
            per_backend.append((outputs, seg, exist, decoder))
        for j, (sample, policy) in enumerate(zip(chunk, used)):
            yield sample, [(to_frame(decoder(seg[j], exist[j]), policy), {kind: v[j] for kind, v in outputs.items()})
                           for outputs, seg, exist, decoder in per_backend], (policy.frame_w, policy.frame_h)
        if bar:
            bar.update(len(whole))
    if bar:
        bar.close()


def predict(backend: Backend, data_root: str | os.PathLike[str], samples: list[Sample], batch_size: int = 1,
            progress: bool = False) -> Iterable[tuple[Sample, list[DecodedLane], dict[str, np.ndarray]]]:
    """Yield (sample, lanes in frame pixels, raw outputs of that image) in order (:func:`predict_many` with one backend)."""
    for sample, [(lanes, outputs)], _ in predict_many([backend], data_root, samples, batch_size, progress):
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
                 on_image: PerImage | None = None, on_bad: OnBad | None = None, frame_policy: str = DEFAULT_MODE) -> list[dict[str, Counts]]:
    """Per backend: {image path: counts of that image}; ``on_image(sample, [(lanes, outputs) per
    backend])`` sees every image once, as it passes; ``pred_dir`` receives the first backend's
    predictions; ``on_bad(sample, error)`` sees unreadable images instead of raising (see :func:`predict_many`)."""
    root = Path(data_root)
    data = CulaneDataset(root)
    counts: list[dict[str, Counts]] = [{} for _ in backends]
    for sample, results, frame_size in predict_many(backends, root, samples, batch_size, progress, on_bad, frame_policy):
        truth = data.read_lanes(sample)
        metric = frame_metric(*frame_size)
        if pred_dir is not None:
            write_lines_file(Path(pred_dir) / sample.lines_name, [lane.points for lane in results[0][0]], durable=False)
        if on_image is not None:
            on_image(sample, results)
        for per_image, (lanes, _) in zip(counts, results):
            per_image[sample.image] = count_image(truth, [lane.points for lane in lanes], metric.width, metric.iou_threshold,
                                                  metric.im_width, metric.im_height)
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


def frames_without_lanes(counts: dict[str, Counts]) -> dict[str, int]:
    """How many scored frames got no lane at all (``frames``), and how many of those have annotated
    lanes (``annotated``: a model that finds nothing on a camera shows here first), of ``images``."""
    empty = [c for c in counts.values() if c.tp + c.fp == 0]
    return {"frames": len(empty), "annotated": sum(1 for c in empty if c.fn > 0), "images": len(counts)}


def drive_of(sample: Sample) -> str:
    """CULane's drive folder of a sample: the first component of its image path (``driver_23_30frame``;
    ``.`` for an image at the root)."""
    return drive_of_path(sample.image)


def drive_of_path(image: str) -> str:
    """:func:`drive_of` for an image path relative to the root (a report's ``per_image`` key)."""
    head, sep, _ = image.partition("/")
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
    """The named lists (each under ROOT/list or ROOT), or without names the default test_split lists that name images."""
    if not names:
        return without_empty(default_lists(data_root))
    data = CulaneDataset(data_root)
    out = {}
    for name in names:
        path = data.list_path(name)
        key = path.stem
        if key in out:
            raise DataError(name, f"two lists would both be reported as '{key}'")
        out[key] = path
    return out
