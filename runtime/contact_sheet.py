"""Contact sheet: a few frames (rows) x several models (columns), lanes (or classes) drawn, in one PNG.

    python -m runtime.contact_sheet --model A.onnx [--model B.onnx ...] [--label NAME ...]
        --data-root ROOT [--list LIST] [--frames N] --out sheet.png
    python -m runtime.contact_sheet --model A.onnx [...] --video clip.mp4 [--frames N] --out sheet.png

To compare models by eye, e.g. two pipelines' students: ``--model old.onnx --label before --model
new.onnx --label after``. Frames are picked deterministically: the list sorted by image path,
each drive (first folder of the path, CULane's ``driver_xx_30frame``) given a share of ``N``
proportional to its size but at least one frame, evenly spaced within the drive; from a video,
``N`` frames evenly spaced over it. Every model runs through the runtime (its backend, the
sidecar's preprocessing and decoding; video frames through :mod:`runtime.frame_policy`).

Each tile is the frame scaled to ``--tile-width`` px (default 480) with the model's lanes drawn in
the CULane lane-ID colours of :mod:`runtime.draw` (thick) and, with a list, the ground truth drawn
on top as a thin white line. Column headers: the label and, with ground truth, the model's CULane
F1 over the sheet's frames (few frames: a picture, not a measurement). Written atomically.
Bad input: one ``error:`` line naming the file, exit status 2.

Marking models (sidecar ``class_table`` without lanes, e.g. ``apolloscape``; every ``--model`` of
one sheet has the same task): each tile shows the model's class map blended in the table's
colours, with a legend of the classes present (top right); from a list (default
``test_gt.txt``: ``/image /label`` lines) the header gives the mIoU over the sheet's frames at
full label resolution (:mod:`runtime.marking_scoring`); no ground truth is drawn.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from runtime.artifacts import read_sidecar
from runtime.atomic import atomic_write_bytes
from runtime.cli import Parser, check_output_file, fail, positive_int, with_sidecars
from runtime.backends import BACKENDS, DEVICES, Backend, load_backend, probabilities
from runtime.class_map import ClassOverlay, class_map
from runtime.culane import CULANE_HEIGHT, CULANE_WIDTH, CulaneDataset, Sample, image_size
from runtime.culane_metric import Counts, count_image, frame_metric
from runtime.decode import DecodedLane
from runtime.draw import LANE_COLORS, blend_classes, class_legend, draw_hud, draw_lanes, draw_legend
from runtime.errors import DataError
from runtime.resources import array_bytes, check_memory
from runtime.scoring import drive_of, predict
from runtime.marking_scoring import image_confusion, read_pair
from runtime.frame_policy import FramePolicy
from runtime.predictor import FramePredictor
from runtime.lines import Lane
from runtime.miou import iou_report
from runtime.video_io import FrameReader, quiet_opencv

DEFAULT_FRAMES = 8
TILE_WIDTH = 480  # px; 8 rows x 2 columns of real 1640x590 CULane frames: a PNG of about 1.3 MB
GT_COLOR = (255, 255, 255)  # BGR: ground truth, thin white (no lane ID colour is white)
HEADER_H, FOOTER_H, GAP = 44, 22, 2  # px
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_SHIFT = 4  # fractional bits for sub-pixel polylines


# -- which frames ---------------------------------------------------------------------------
def spread(count: int, k: int) -> list[int]:
    """``min(k, count)`` distinct indices evenly spaced over ``range(count)``, each centred in its equal part."""
    k = min(k, count)
    return [(2 * i + 1) * count // (2 * k) for i in range(k)]


def allocate(sizes: Sequence[int], n: int) -> list[int]:
    """Frames per group: ``n`` (at most all) split in proportion to the group sizes, at least one per
    non-empty group while ``n`` allows (else one each for the ``n`` largest groups)."""
    n = min(n, sum(sizes))
    groups = [i for i, s in enumerate(sizes) if s > 0]
    if n < len(groups):
        chosen = set(sorted(groups, key=lambda i: (-sizes[i], i))[:n])
        return [1 if i in chosen else 0 for i in range(len(sizes))]
    picks = [min(1, s) for s in sizes]
    total = sum(sizes)
    while sum(picks) < n:  # one more frame for the group furthest below its proportional share
        i = max((i for i in groups if picks[i] < sizes[i]), key=lambda i: (n * sizes[i] / total - picks[i], -i))
        picks[i] += 1
    return picks


def pick_frames(samples: Sequence[Sample], n: int = DEFAULT_FRAMES, key: Callable[[Sample], str] = drive_of) -> list[Sample]:
    """Up to ``n`` samples sorted by image path, spread over the groups (drives) as :func:`allocate` says."""
    ordered = sorted({s.image: s for s in samples}.values(), key=lambda s: s.image)
    groups: dict[str, list[Sample]] = {}
    for sample in ordered:
        groups.setdefault(key(sample), []).append(sample)
    members = [groups[name] for name in sorted(groups)]
    picked = [m[j] for m, k in zip(members, allocate([len(m) for m in members], n)) for j in spread(len(m), k)]
    return sorted(picked, key=lambda s: s.image)


# -- what each column shows -----------------------------------------------------------------
@dataclass
class Column:
    """One model's column: its header label, its lanes per row (frame pixels), its counts (None without
    ground truth); a marking model's: no lanes, its class map per row (``classes``) and its
    confusion matrix over the rows (``confusion``, None without ground truth)."""

    label: str
    lanes: list[list[DecodedLane]]
    counts: Counts | None = None
    classes: list[ClassOverlay] | None = None
    confusion: np.ndarray | None = None


def column_counts(truth: Sequence[Sequence[Lane]], predictions: Sequence[Sequence[DecodedLane]],
                  frame_sizes: Sequence[tuple[int, int]]) -> Counts:
    """CULane counts of one model over the sheet's frames (annotations and predictions in each
    frame's pixels, scored at its (width, height): :func:`runtime.culane_metric.frame_metric`)."""
    total = Counts()
    for annotated, lanes, size in zip(truth, predictions, frame_sizes, strict=True):
        m = frame_metric(*size)
        total += count_image(list(annotated), [lane.points for lane in lanes], m.width, m.iou_threshold, m.im_width, m.im_height)
    return total


def header_lines(column: Column, frames: int) -> list[str]:
    """The column header's two lines: label; F1 with P/R (mIoU for a marking model) over the frames, or why there is none."""
    if column.classes is not None:
        return [column.label, miou_line(column, frames)]
    c = column.counts
    if c is None:
        return [column.label, f"{frames} frames, no ground truth"]
    if c.f1 is None:
        return [column.label, f"F1 -: no lanes annotated in these {frames} frames (FP {c.fp})"]
    p = "-" if c.precision is None else f"{100 * c.precision:.1f}%"
    r = "-" if c.recall is None else f"{100 * c.recall:.1f}%"
    return [column.label, f"F1 {100 * c.f1:.1f}%  P {p}  R {r}  ({frames} frames)"]


# -- drawing --------------------------------------------------------------------------------
def _scaled(points: np.ndarray, s: float) -> np.ndarray:
    """Frame pixels -> tile pixels (pixel-centre convention)."""
    return (np.asarray(points, dtype=np.float64).reshape(-1, 2) + 0.5) * s - 0.5


def miou_line(column: Column, frames: int) -> str:
    """A marking column's second header line: mIoU over the frames, or why there is none."""
    if column.confusion is None or not column.classes:
        return f"{frames} frames, no ground truth"
    table = column.classes[0].table
    report = iou_report(column.confusion, table.names, table.evaluated)
    if not report["classes_scored"]:
        return f"mIoU -: no evaluated class in these {frames} frames"
    return f"mIoU {100 * report['miou']:.1f}% over {report['classes_scored']} classes ({frames} frames)"


def render_tile(frame: np.ndarray, lanes: Sequence[DecodedLane], truth: Sequence[Lane] | None, width: int,
                classes: ClassOverlay | None = None) -> np.ndarray:
    """(H, W, 3) uint8 frame -> (h, width, 3) tile: predictions (thick, lane-ID colours), ground truth on top (thin white);
    a marking model's ``classes`` blended at the frame's resolution, their legend on the tile."""
    s = width / frame.shape[1]
    height = max(1, int(round(frame.shape[0] * s)))
    frame_classes = classes.frame_classes() if classes is not None else None
    if frame_classes is not None:
        frame = blend_classes(frame.copy(), frame_classes, classes.table.colors)
    tile = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
    if frame_classes is not None:
        draw_legend(tile, class_legend(frame_classes, classes.table))
    draw_lanes(tile, [DecodedLane(lane.lane_id, _scaled(lane.points, s)) for lane in lanes], thickness=3)
    for lane in truth or []:
        pts = _scaled(lane, s)
        if len(pts) >= 2 and np.all(np.isfinite(pts)):
            cv2.polylines(tile, [np.round(pts * (1 << _SHIFT)).astype(np.int32).reshape(-1, 1, 2)], False, GT_COLOR, 1,
                          cv2.LINE_AA, _SHIFT)
    return tile


def _text(canvas: np.ndarray, text: str, x: int, y: int, scale: float = 0.45, color: tuple[int, int, int] = (255, 255, 255)) -> None:
    cv2.putText(canvas, text, (x, y), _FONT, scale, color, 1, cv2.LINE_AA)


def compose(frames: Sequence[np.ndarray], names: Sequence[str], columns: Sequence[Column], truth: Sequence[Sequence[Lane]] | None,
            width: int = TILE_WIDTH) -> np.ndarray:
    """The sheet, (H, W, 3) uint8 BGR: a header row, one row per frame (its name on the first tile), a legend."""
    rows = [[render_tile(f, col.lanes[r], truth[r] if truth is not None else None, width,
                         col.classes[r] if col.classes is not None else None) for col in columns]
            for r, f in enumerate(frames)]
    heights = [row[0].shape[0] for row in rows]
    sheet_w = len(columns) * width + (len(columns) - 1) * GAP
    sheet_h = HEADER_H + sum(heights) + GAP * len(rows) + FOOTER_H
    sheet = np.full((sheet_h, sheet_w, 3), 40, dtype=np.uint8)
    for c, column in enumerate(columns):
        first, second = header_lines(column, len(frames))
        _text(sheet, first, c * (width + GAP) + 6, 18, 0.55)
        _text(sheet, second, c * (width + GAP) + 6, 37, 0.45, (200, 230, 255))
    y = HEADER_H
    for row, name, h in zip(rows, names, heights):
        draw_hud(row[0], [name])
        for c, tile in enumerate(row):
            sheet[y : y + h, c * (width + GAP) : c * (width + GAP) + width] = tile
        y += h + GAP
    legend = "lanes by CULane ID: " + ", ".join(f"{i} {n}" for i, n in zip(LANE_COLORS, ("blue", "green", "amber", "magenta")))
    if truth is not None:
        legend = "thin white: ground truth; thick: " + legend
    if columns and columns[0].classes:
        legend = f"classes blended in the {columns[0].classes[0].table.name} colours; legend top right: the classes present"
    _text(sheet, legend, 6, sheet_h - 7, 0.42, (220, 220, 220))
    return sheet


def write_png(path: str | os.PathLike[str], image: np.ndarray) -> int:
    """Encode ``image`` as PNG (maximum compression) and write it atomically; the file size in bytes."""
    ok, data = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise DataError(path, "PNG encoding failed")
    atomic_write_bytes(path, data.tobytes())
    return int(data.size)


# -- sources --------------------------------------------------------------------------------
def first_image_size(data: CulaneDataset, sample: Sample) -> tuple[int, int]:
    """(w, h) of a sample's image from its header (CULane's 1640x590 when unreadable here: the read
    that follows names the problem)."""
    try:
        return image_size(data.path(sample.image).read_bytes()) or (CULANE_WIDTH, CULANE_HEIGHT)
    except OSError:
        return CULANE_WIDTH, CULANE_HEIGHT


def from_list(models: Sequence[str], labels: Sequence[str], data_root: str, list_name: str, n: int, backend: str, device: str,
              threads: int | None) -> tuple[list[np.ndarray], list[str], list[Column], list[list[Lane]] | None]:
    """Frames, row names, columns (with counts) and ground truth for ``n`` frames picked from a list
    (marking models: ground truth label maps scored in the columns, none returned to draw)."""
    data = CulaneDataset(data_root)
    samples = pick_frames(data.read_list(list_name).samples, n)
    if not samples:
        raise DataError(data.list_path(list_name), "the list names no images")
    w, h = first_image_size(data, samples[0])
    check_memory("--frames", len(samples), array_bytes(h, w, 3 * (1 + len(models)), itemsize=1), "frames (drawn once per model)",
                 data.list_path(list_name))
    runners = [load_backend(model, backend, device, threads) for model in models]
    names = [s.image for s in samples]
    if not runners[0].sidecar.table.existence:
        return *marking_list_columns(runners, labels, data_root, samples), None
    frames = [data.read_image(s) for s in samples]
    truth = [data.read_lanes(s) for s in samples]
    columns = []
    for runner, label in zip(runners, labels):
        lanes = [found for _, found, _ in predict(runner, data.root, samples)]
        columns.append(Column(label, lanes, column_counts(truth, lanes, [(f.shape[1], f.shape[0]) for f in frames])))
    return frames, names, columns, truth


def marking_list_columns(runners: Sequence[Backend], labels: Sequence[str], data_root: str, samples: Sequence[Sample]
                         ) -> tuple[list[np.ndarray], list[str], list[Column]]:
    """Frames, row names and the marking models' columns (class maps, confusion against the labels at full resolution)."""
    pre, table = runners[0].sidecar.pre, runners[0].sidecar.table
    data = CulaneDataset(data_root, table.num_classes)
    for sample in samples:
        if sample.label is None:
            raise DataError(sample.source, f"no label for {sample.image}: marking models need '/image /label' lines",
                            line=sample.line)
    pairs = [read_pair(data, s, pre) for s in samples]
    columns = []
    for runner, label in zip(runners, labels):
        r_pre, r_table = runner.sidecar.pre, runner.sidecar.table
        policy = FramePolicy(r_pre, r_pre.src_width, r_pre.src_height)
        overlays, matrix = [], np.zeros((r_table.num_classes, r_table.num_classes), np.int64)
        for image, truth in pairs:
            seg, _ = probabilities(runner.infer(r_pre(image)))
            overlays.append(ClassOverlay(class_map(seg[0]), policy, r_table))
            matrix += image_confusion(seg[0], truth, r_pre, r_table.num_classes)
        columns.append(Column(label, [[] for _ in pairs], classes=overlays, confusion=matrix))
    return [image for image, _ in pairs], [s.image for s in samples], columns


def from_video(models: Sequence[str], labels: Sequence[str], video: str, n: int, backend: str, device: str,
               threads: int | None) -> tuple[list[np.ndarray], list[str], list[Column]]:
    """Frames, row names and columns for ``n`` frames evenly spaced over a video (no ground truth)."""
    with FrameReader(Path(video)) as reader:
        (w, h), count = reader.size, reader.info.frame_count
        check_memory("--frames", min(n, count or n), array_bytes(h, w, 3 * (1 + len(models)), itemsize=1),
                     "frames (drawn once per model)", video)
        count = count or sum(1 for _ in reader)
    wanted = set(spread(count, n))
    frames, names = [], []
    with FrameReader(Path(video), max_frames=max(wanted) + 1) as reader:
        fps = reader.info.fps
        for frame in reader:
            if frame.index in wanted:
                frames.append(frame.image)
                names.append(f"frame {frame.index}" + (f" ({frame.index / fps:.1f} s)" if fps else ""))
    if not frames:
        raise DataError(video, "no frames could be decoded")
    h, w = frames[0].shape[:2]
    columns = []
    for model, label in zip(models, labels):
        runner = load_backend(model, backend, device, threads)
        pipeline = FramePredictor(runner, FramePolicy(runner.sidecar.pre, w, h))
        overlays = [pipeline(f)[1] for f in frames]
        if isinstance(overlays[0], ClassOverlay):
            columns.append(Column(label, [[] for _ in frames], classes=overlays))
        else:
            columns.append(Column(label, overlays))
    return frames, names, columns


def one_task(models: Sequence[str]) -> str:
    """The task all ``models`` share (lanes or markings), from their sidecars; :class:`DataError` otherwise."""
    tasks = {}
    for model in models:  # every model and its sidecar before any frame is read
        if not Path(model).is_file():
            raise DataError(model, "model file not found")
        tasks.setdefault(read_sidecar(model).table.task, model)
    if len(tasks) > 1:
        (task_a, a), (task_b, b) = list(tasks.items())[:2]
        raise DataError(b, f"a {task_b} model, and {a} a {task_a} model: one sheet compares models of one task")
    return next(iter(tasks))


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m runtime.contact_sheet", description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", required=True, help="a deployed artifact with its .json sidecar (repeatable: one column each)")
    parser.add_argument("--label", action="append", default=[], help="column header per --model, in order (default: the file name)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data-root", help="a CULane-format root (frames with ground truth)")
    source.add_argument("--video", help="a video (frames without ground truth)")
    parser.add_argument("--list", help="list under ROOT/list, ROOT or as given (default: test.txt; marking models: test_gt.txt)")
    parser.add_argument("--frames", type=positive_int, default=DEFAULT_FRAMES, help=f"rows (default {DEFAULT_FRAMES})")
    parser.add_argument("--tile-width", type=int, default=TILE_WIDTH, help=f"px per tile (default {TILE_WIDTH})")
    parser.add_argument("--backend", default="auto", choices=BACKENDS)
    parser.add_argument("--device", default="cpu", choices=DEVICES)
    parser.add_argument("--threads", type=positive_int)
    parser.add_argument("--out", required=True, help="the PNG to write")
    args = parser.parse_args(argv)
    if args.label and len(args.label) != len(args.model):
        print(f"error: {len(args.label)} --label for {len(args.model)} --model: give one per model or none", file=sys.stderr)
        return 2
    if args.frames < 1 or not 16 <= args.tile_width <= CULANE_WIDTH:
        print(f"error: --frames must be >= 1 and --tile-width within 16..{CULANE_WIDTH}", file=sys.stderr)
        return 2
    labels = args.label or [Path(m).name for m in args.model]
    quiet_opencv()
    try:
        check_output_file(args.out, "contact sheet", with_sidecars(*args.model) + [args.video])
        task = one_task(args.model)
        if args.video:
            frames, names, columns = from_video(args.model, labels, args.video, args.frames, args.backend, args.device, args.threads)
            truth = None
        else:
            list_name = args.list or ("test.txt" if task == "lanes" else "test_gt.txt")
            frames, names, columns, truth = from_list(args.model, labels, args.data_root, list_name, args.frames, args.backend,
                                                      args.device, args.threads)
        sheet = compose(frames, names, columns, truth, args.tile_width)
        size = write_png(args.out, sheet)
    except (DataError, OSError) as err:
        return fail(err)
    for column in columns:
        print(f"{column.label}: " + header_lines(column, len(frames))[1])
    print(f"{args.out}: {sheet.shape[1]}x{sheet.shape[0]} px, {len(frames)} frames x {len(columns)} models, {size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
