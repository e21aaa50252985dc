"""Reading CULane-format datasets: list files, images, label PNGs and ``.lines.txt`` files.

Layout (paths inside the lists are relative to the dataset root, with or without a leading ``/``)::

    ROOT/driver_xx/clip.MP4/00000.jpg            image, 1640x590 for CULane
    ROOT/driver_xx/clip.MP4/00000.lines.txt      lanes, one per line, ``x y x y ...``
    ROOT/laneseg_label_w16/driver_xx/clip.MP4/00000.png   label map, values 0..4 (255 = ignore)
    ROOT/list/train_gt.txt   ``/img.jpg /label.png e1 e2 e3 e4`` (lane existence flags)
    ROOT/list/test.txt, ROOT/list/test_split/test{0..8}_<category>.txt   ``img.jpg`` per line

Every problem raises :class:`runtime.errors.DataError` naming the file (and line). With
``skip_bad=True`` a malformed list line is counted, logged and skipped instead; never silently.
"""
from __future__ import annotations

import logging
import os
import sys
import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from runtime.errors import DataError
from runtime.lines import Lane, read_lines_file

log = logging.getLogger(__name__)

CULANE_WIDTH, CULANE_HEIGHT = 1640, 590
"""px: CULane's frame (every dataset is converted to this layout; the models' default source size)."""

NUM_LANES = 4
"""CULane annotates at most four lanes: IDs 1, 2 left of the ego vehicle, 3, 4 right of it."""
NUM_CLASSES = NUM_LANES + 1
IGNORE_LABEL = 255

CATEGORIES = ("normal", "crowd", "hlight", "shadow", "noline", "arrow", "curve", "cross", "night")
"""CULane test categories, in the order of ``list/test_split/test{0..8}_<category>.txt``."""


def split_list_name(category: str) -> str:
    """File name of a category's test-split list, e.g. ``test7_cross.txt``."""
    return f"test{CATEGORIES.index(category)}_{category}.txt"


@dataclass(frozen=True)
class Sample:
    """One entry of a CULane list file.

    ``image`` and ``label`` are relative to the dataset root, without a leading ``/``.
    ``exist`` holds the four lane-existence flags of ``*_gt.txt`` lists (None in image-only lists).
    """

    image: str
    label: str | None = None
    exist: tuple[int, ...] | None = None
    source: str = ""
    line: int = 0

    @property
    def stem(self) -> str:
        """Image path without its extension, e.g. ``driver_23/clip.MP4/00000``."""
        return os.path.splitext(self.image)[0]

    @property
    def row(self) -> str:
        """The sample as a list line: ``/image``, ``/image /label`` or ``/image /label e1 e2 e3 e4``."""
        parts = [f"/{self.image}"] + ([f"/{self.label}"] if self.label else []) + [str(e) for e in self.exist or ()]
        return " ".join(parts)

    @property
    def lines_name(self) -> str:
        """Relative path of the image's ``.lines.txt`` (annotation or prediction)."""
        return self.stem + ".lines.txt"


@dataclass
class ListFile:
    """A parsed list: its samples and the lines that ``skip_bad`` skipped (``"line N: why"``)."""

    path: Path
    samples: list[Sample]
    skipped: list[str] = field(default_factory=list)


_IMAGE_EXT = (".jpg", ".jpeg", ".png")
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_TRAILING_FLAGS = re.compile(r"(\s+\d+){%d}\s*$" % NUM_LANES)
_TWO_PATHS = re.compile(r"^(\S.*?\.(?:jpg|jpeg|png))\s+(\S.*\.png)$", re.IGNORECASE)


def _parse_list_line(text: str, path: Path, number: int) -> Sample:
    """``image``, ``image label`` or ``image label e1 e2 e3 e4``. Paths may contain spaces (the
    official evaluator reads whole lines): flags are taken from the right, and the image/label
    boundary is the image extension followed by white space."""
    form = "expected 'image', 'image label' or 'image label e1 e2 e3 e4'"
    tokens = text.split()
    exist = None
    body = text.strip()
    if len(tokens) >= 2 + NUM_LANES and all(t.isdigit() for t in tokens[-NUM_LANES:]):
        flags = tokens[-NUM_LANES:]
        if any(f not in ("0", "1") for f in flags):
            raise DataError(path, f"existence flags must be 0 or 1, got {' '.join(flags)}", line=number)
        exist = tuple(int(f) for f in flags)
        body = _TRAILING_FLAGS.sub("", body)
    pair = _TWO_PATHS.match(body)
    if pair:
        image, label = pair.group(1), pair.group(2)
    elif exist is None and body.lower().endswith(_IMAGE_EXT):
        image, label = body, None
    else:
        raise DataError(path, f"{form}, got {len(tokens)} fields", line=number)
    image, label = image.lstrip("/"), label.lstrip("/") if label else None
    if not image:
        raise DataError(path, "empty image path", line=number)
    return Sample(image=image, label=label, exist=exist, source=str(path), line=number)


def read_list(path: str | os.PathLike[str], skip_bad: bool = False) -> ListFile:
    """Parse a CULane list file (any of its forms). Blank lines are ignored."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # tolerate a byte-order mark
    except FileNotFoundError:
        raise DataError(path, "list file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(path, f"cannot read list file ({err.__class__.__name__})") from None
    result = ListFile(path=path, samples=[])
    for number, row in enumerate(text.splitlines(), start=1):
        if not row.strip():
            continue
        try:
            result.samples.append(_parse_list_line(row, path, number))
        except DataError as err:
            if not skip_bad:
                raise
            result.skipped.append(f"line {number}: {err.problem}")
            log.warning("skipping %s", err)
    if result.skipped:
        log.warning("%s: skipped %d malformed line(s)", path, len(result.skipped))
    return result


class CulaneDataset:
    """Random access to the files of a CULane-format dataset rooted at ``root``."""

    def __init__(self, root: str | os.PathLike[str], num_classes: int = NUM_CLASSES) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(self.root, "dataset root is not a directory")
        self.num_classes = num_classes

    def path(self, relative: str) -> Path:
        return self.root / relative.lstrip("/")

    def list_path(self, name: str) -> Path:
        """Resolve a list given as a name under ``ROOT/list`` (``train_gt.txt``), under ``ROOT``,
        or as a path of its own, in that order."""
        for candidate in (self.root / "list" / name, self.root / name, Path(name)):
            if candidate.is_file():
                return candidate
        raise DataError(name, f"list file not found (looked in {self.root / 'list'}, {self.root} and as given)")

    def read_list(self, name: str, skip_bad: bool = False) -> ListFile:
        return read_list(self.list_path(name), skip_bad=skip_bad)

    def read_image(self, sample: Sample) -> np.ndarray:
        """The image as an (H, W, 3) uint8 BGR array."""
        return read_image(self.path(sample.image))

    def read_label(self, sample: Sample, expected_shape: tuple[int, int] | None = None) -> np.ndarray:
        """The label map as an (H, W) uint8 array with values in 0..num_classes-1 or 255;
        ``expected_shape`` (H, W), e.g. the image's, is checked when given."""
        if sample.label is None:
            raise DataError(sample.source, f"no label path for {sample.image}", line=sample.line)
        return read_label(self.path(sample.label), self.num_classes, expected_shape)

    def read_lanes(self, sample: Sample) -> list[Lane]:
        """The annotated lanes (``.lines.txt`` next to the image)."""
        return read_lines_file(self.path(sample.lines_name))


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's or PNG's header, without decoding; None for other formats."""
    if data[:8] == _PNG_MAGIC and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 9 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
            return int.from_bytes(data[i + 7 : i + 9], "big"), int.from_bytes(data[i + 5 : i + 7], "big")
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None


def incomplete(data: bytes) -> str | None:
    """Why an encoded image is cut short, or None: an empty file, a JPEG without an end-of-image
    marker after its last scan (libjpeg would decode it with grey rows and only a warning), a PNG
    without its IEND chunk at the end. Other formats are left to the decoder."""
    if not data:
        return "empty file"
    if data[:3] == b"\xff\xd8\xff":
        if data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda"):
            return "truncated JPEG (no end-of-image marker after its last scan)"
    elif data[:8] == _PNG_MAGIC and b"IEND" not in data[-64:]:
        return "truncated PNG (no IEND chunk at its end)"
    return None


def read_encoded(path: str | os.PathLike[str], what: str = "image") -> bytes:
    """A file's bytes, checked to be a complete image file; :class:`DataError` if missing, unreadable or cut short."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, f"{what} not found")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DataError(path, f"cannot read {what} ({err.strerror or err.__class__.__name__})") from None
    problem = incomplete(data)
    if problem:
        raise DataError(path, f"corrupt {what}: {problem}")
    return data


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a colour image as (H, W, 3) uint8 BGR; :class:`DataError` if missing, truncated or unreadable."""
    data = read_encoded(path)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(path, "cannot decode image (corrupt or not an image)")
    return image


def read_label(path: str | os.PathLike[str], num_classes: int = NUM_CLASSES, expected_shape: tuple[int, int] | None = None) -> np.ndarray:
    """Read a label PNG as (H, W) uint8; values must lie in 0..num_classes-1 or be 255, and the
    size must be ``expected_shape`` (H, W) when given."""
    label = cv2.imdecode(np.frombuffer(read_encoded(path, "label map"), np.uint8), cv2.IMREAD_UNCHANGED)
    if label is None:
        raise DataError(path, "cannot decode label map (corrupt or not an image)")
    if label.ndim == 3:
        # Some tools save labels as 3 identical channels; anything else is not a label map.
        if not (np.array_equal(label[..., 0], label[..., 1]) and np.array_equal(label[..., 0], label[..., 2])):
            raise DataError(path, "label map has differing colour channels; expected one channel of class ids")
        label = label[..., 0]
    if label.dtype != np.uint8:
        raise DataError(path, f"label map must be 8-bit, got {label.dtype}")
    if expected_shape is not None and label.shape != tuple(expected_shape):
        raise DataError(path, f"label map is {label.shape[1]}x{label.shape[0]}, expected {expected_shape[1]}x{expected_shape[0]} (the image's size)")
    if label.max(initial=0) < num_classes:  # the common case, ~10x cheaper than counting values
        return label
    counts = np.bincount(label.ravel(), minlength=256)
    bad = [int(v) for v in np.flatnonzero(counts) if v >= num_classes and v != IGNORE_LABEL]
    if bad:
        raise DataError(path, f"label values {bad[:5]} outside 0..{num_classes - 1} and {IGNORE_LABEL}")
    return label


_SPLIT_RE = re.compile(r"^test(\d+)_(\w+)\.txt$")


def default_lists(data_root: str | os.PathLike[str]) -> dict[str, Path]:
    """The category lists under ``ROOT/list/test_split``, keyed by category, in CULane order."""
    if not Path(data_root).is_dir():
        raise DataError(data_root, "dataset root is not a directory")
    split_dir = Path(data_root) / "list" / "test_split"
    found = []
    for path in split_dir.glob("test*_*.txt"):
        m = _SPLIT_RE.match(path.name)
        if m:
            found.append((int(m.group(1)), m.group(2), path))
    if not found:
        raise DataError(split_dir, "no test_split lists (test<N>_<category>.txt) found; pass --list")
    return {name: path for _, name, path in sorted(found)}


def without_empty(lists: dict[str, Path]) -> dict[str, Path]:
    """The default lists that name images; each empty one is said on stderr in one line and left out
    (a root whose night list is empty still scores its other categories). :class:`DataError` when
    every list is empty. A list the user named is never dropped: :func:`read_lists` refuses it."""
    kept = {name: path for name, path in lists.items() if read_list(path).samples}
    if not kept:
        raise DataError(next(iter(lists.values())).parent, "every default list is empty")
    for name in lists.keys() - kept.keys():
        print(f"warning: {lists[name]}: the list names no images: '{name}' left out", file=sys.stderr)
    return kept


def split_category(path: Path) -> str:
    """The category a test-split list reports as (``test7_cross.txt`` -> ``cross``); else the file's stem."""
    m = _SPLIT_RE.match(path.name)
    return m.group(2) if m and m.group(2) in CATEGORIES else path.stem
