"""TuSimple -> CULane layout: images placed, lanes as ``.lines.txt``, lists, labels drawn by
make_labels, resumable runs, one-line errors with nothing written."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import lanedata.tusimple.convert as tusimple
from runtime.culane import read_list
from runtime.lines import read_lines_file
from lanedata.tusimple.convert import convert, main

ROOT = Path(__file__).resolve().parents[2]
W, H = 1280, 720
YS48 = list(range(240, 720, 10))
YS56 = list(range(160, 720, 10))

# the example of the TuSimple readme (doc/lane_detection/readme.md), plus a lane with one point
README_LANES = [
    [-2, -2, -2, -2, 632, 625, 617, 609, 601, 594, 586, 578, 570, 563, 555, 547, 539, 532, 524, 516, 508, 501, 493, 485, 477, 469, 462, 454, 446, 438, 431, 423, 415, 407, 400, 392, 384, 376, 369, 361, 353, 345, 338, 330, 322, 314, 307, 299],
    [-2, -2, -2, -2, 719, 734, 748, 762, 777, 791, 805, 820, 834, 848, 863, 877, 891, 906, 920, 934, 949, 963, 978, 992, 1006, 1021, 1035, 1049, 1064, 1078, 1092, 1107, 1121, 1135, 1150, 1164, 1178, 1193, 1207, 1221, 1236, 1250, 1265, -2, -2, -2, -2, -2],
    [-2, -2, -2, -2, -2, 532, 503, 474, 445, 416, 387, 358, 329, 300, 271, 241, 212, 183, 154, 125, 96, 67, 38, 9, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2],
    [-2, -2, -2, 781, 822, 862, 903, 944, 984, 1025, 1066, 1107, 1147, 1188, 1229, 1269, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2],
    [-2] * 20 + [640.5] + [-2] * 27,
]


def converging(bottom_x: float, ys: list[int] = YS56, vanish: tuple[float, float] = (640.0, 250.0)) -> list[float]:
    """A straight lane from (bottom_x, 710) to the vanishing point; -2 above it and outside the image."""
    out = []
    for y in ys:
        t = (710 - y) / (710 - vanish[1])
        x = bottom_x + (vanish[0] - bottom_x) * t
        out.append(round(x, 1) if y > vanish[1] + 20 and 0 <= x < W else -2)
    return out


FIVE_LANES = [converging(x) for x in (-300, 150, 600, 1050, 1500)]
ENTRIES = {
    "label_data_0313.json": [
        {"raw_file": "clips/0313-1/60/20.jpg", "lanes": README_LANES, "h_samples": YS48},
        {"raw_file": "clips/0313-1/120/20.jpg", "lanes": FIVE_LANES, "h_samples": YS56},
    ],
    "label_data_0531.json": [{"raw_file": "clips/0531/1492626047222176976_0/20.jpg", "lanes": [], "h_samples": YS56}],
}


def valid_points(xs: list[float], ys: list[int]) -> np.ndarray:
    return np.array([(x, y) for x, y in zip(xs, ys) if x >= 0], dtype=float)[::-1]


def make_tusimple_root(tmp_path: Path) -> Path:
    """A small TuSimple root: ENTRIES' label files and random 1280x720 images."""
    root = tmp_path / "tusimple"
    rng = np.random.default_rng(0)
    for name, entries in ENTRIES.items():
        for entry in entries:
            image = root / entry["raw_file"]
            image.parent.mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(image), rng.integers(0, 255, (H, W, 3), dtype=np.uint8))
        (root / name).write_text("".join(json.dumps(e) + "\n" for e in entries))
    return root


@pytest.fixture()
def tusimple_root(tmp_path: Path) -> Path:
    return make_tusimple_root(tmp_path)


def run(root: Path, out: Path, *extra: str) -> int:
    return main(["--tusimple-root", str(root), "--label-json", "label_data_0313.json", "--label-json",
                 "label_data_0531.json", "--out-root", str(out), "--workers", "2", "--no-progress", *extra])


def test_converts_to_the_culane_layout(tusimple_root, tmp_path, capsys):
    out = tmp_path / "culane"
    assert run(tusimple_root, out) == 0, capsys.readouterr().err
    assert "3 frames (images 3 linked, 0 copied, 0 kept)" in capsys.readouterr().out
    images = [e["raw_file"] for entries in ENTRIES.values() for e in entries]
    assert (out / "list" / "train.txt").read_text() == "".join(f"/{i}\n" for i in images)
    gt = read_list(out / "list" / "train_gt.txt").samples
    assert [s.image for s in gt] == images
    for entry, sample in zip([e for entries in ENTRIES.values() for e in entries], gt):
        image = out / entry["raw_file"]
        assert os.path.samefile(image, tusimple_root / entry["raw_file"])  # hard-linked
        # the .lines.txt holds every lane with >= 2 valid points, bottom first, exactly
        lanes = read_lines_file(image.with_suffix(".lines.txt"))
        expected = [valid_points(xs, entry["h_samples"]) for xs in entry["lanes"]]
        expected = [p for p in expected if len(p) >= 2]
        assert len(lanes) == len(expected)
        for got, want in zip(lanes, expected):
            np.testing.assert_array_equal(got, want)
        label = cv2.imread(str(out / sample.label), cv2.IMREAD_UNCHANGED)
        assert label.shape == (H, W) and label.dtype == np.uint8
        assert set(np.unique(label)) <= {0, 1, 2, 3, 4}
        assert sample.exist == tuple(int(i in np.unique(label)) for i in (1, 2, 3, 4))
    readme, five, empty = gt
    label = cv2.imread(str(out / readme.label), cv2.IMREAD_UNCHANGED)
    assert readme.exist == (1, 1, 1, 1)  # four lanes; the one-point lane is dropped
    for xs, lane_id in zip(README_LANES, (2, 3, 1, 4)):  # left to right: 1 = [2], 2 = [0], 3 = [1], 4 = [3]
        x, y = valid_points(xs, YS48)[len(valid_points(xs, YS48)) // 2]
        assert label[int(y), int(x)] == lane_id
    label = cv2.imread(str(out / five.label), cv2.IMREAD_UNCHANGED)
    assert five.exist == (1, 1, 1, 1) and set(np.unique(label)) == {0, 1, 2, 3, 4}
    x, y = valid_points(FIVE_LANES[0], YS56)[2]
    assert label[int(y), int(x)] == 0  # the fifth lane (outermost left) is in the .lines.txt but not labelled
    assert len(read_lines_file(out / five.lines_name)) == 5
    assert empty.exist == (0, 0, 0, 0)
    assert (out / empty.lines_name).read_text() == ""
    assert not np.any(cv2.imread(str(out / empty.label), cv2.IMREAD_UNCHANGED))


def test_a_rerun_keeps_everything_and_a_failed_link_copies(tusimple_root, tmp_path, monkeypatch):
    out = tmp_path / "culane"
    first = tusimple.convert(tusimple_root, ["label_data_0313.json", "label_data_0531.json"], out, workers=2)
    assert (first["linked"], first["lines_written"], first["labels_drawn"]) == (3, 3, 3)
    again = convert(tusimple_root, ["label_data_0313.json", "label_data_0531.json"], out, workers=2)
    assert (again["kept"], again["lines_written"], again["labels_drawn"]) == (3, 0, 0)

    def refuse(*args, **kwargs):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(tusimple.os, "link", refuse)
    other = tmp_path / "copied"
    counts = convert(tusimple_root, ["label_data_0531.json"], other, list_name="val", workers=1)
    assert (counts["copied"], counts["linked"]) == (1, 0)
    raw = ENTRIES["label_data_0531.json"][0]["raw_file"]
    assert not os.path.samefile(other / raw, tusimple_root / raw)
    assert (other / raw).read_bytes() == (tusimple_root / raw).read_bytes()
    assert (other / "list" / "val.txt").is_file() and (other / "list" / "val_gt.txt").is_file()


@pytest.mark.parametrize("case", ["bad json", "length mismatch", "missing image", "missing key", "twice", "no label file"])
def test_bad_input_is_one_line_and_nothing_is_written(tusimple_root, tmp_path, capsys, case):
    label = tusimple_root / "label_data_0313.json"
    rows = label.read_text().splitlines()
    line = 2
    if case == "bad json":
        rows[1] = rows[1][:-10]
    elif case == "length mismatch":
        entry = json.loads(rows[1])
        entry["lanes"][3].pop()
        rows[1] = json.dumps(entry)
    elif case == "missing image":
        (tusimple_root / ENTRIES["label_data_0313.json"][1]["raw_file"]).unlink()
    elif case == "missing key":
        entry = json.loads(rows[1])
        del entry["h_samples"]
        rows[1] = json.dumps(entry)
    elif case == "twice":
        rows[1] = rows[0]
    if case == "no label file":
        label.unlink()
    else:
        label.write_text("\n".join(rows) + "\n")
    out = tmp_path / "culane"
    assert run(tusimple_root, out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    where = "label_data_0313.json" if case == "no label file" else f"{label}:{line}"
    assert len(err) == 1 and err[0].startswith(f"error: {where}: "), err
    assert not out.exists()


def test_the_command_line_runs_as_a_module(tusimple_root, tmp_path):
    out = tmp_path / "culane"
    r = subprocess.run([sys.executable, "-m", "lanedata.tusimple.convert", "--tusimple-root", str(tusimple_root),
                        "--label-json", "label_data_0313.json", "--out-root", str(out), "--list-name", "train_gt"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "must not end in '_gt'" in r.stderr, r.stderr
    assert not out.exists()
