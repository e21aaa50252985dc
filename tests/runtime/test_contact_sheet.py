"""runtime.contact_sheet: frame picking across drives, per-column F1, drawing, the PNG from a list and from a video."""
from __future__ import annotations

import random
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from runtime.contact_sheet import (FOOTER_H, GAP, GT_COLOR, HEADER_H, Column, allocate, column_counts, header_lines, main,
                                   pick_frames, render_tile, spread)
from runtime.culane import Sample, read_list
from runtime.culane_metric import count_image
from runtime.decode import DecodedLane
from runtime.draw import LANE_COLORS
from runtime.lines import read_lines_file

DRIVES = {"driver_day_30frame": "test0_normal.txt", "driver_night_30frame": "test8_night.txt"}


def write_two_drive_root(source: Path, root: Path, per_drive: int = 3) -> Path:
    """A CULane-format root with two drive folders (normal and night images of ``source``'s test
    split, with their annotations) and ``list/test.txt``; returns ``root``."""
    lines = []
    for drive, split in DRIVES.items():
        for k, sample in enumerate(read_list(source / "list" / "test_split" / split).samples[:per_drive]):
            stem = f"{drive}/0001.MP4/{k:05d}"
            (root / stem).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / sample.image, root / f"{stem}.jpg")
            shutil.copyfile(source / sample.lines_name, root / f"{stem}.lines.txt")
            lines.append(f"/{stem}.jpg")
    (root / "list").mkdir(parents=True, exist_ok=True)
    (root / "list" / "test.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def two_drives(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_two_drive_root(tiny_dataset, tmp_path_factory.mktemp("two-drives") / "real dev")


def samples(drive: str, n: int) -> list[Sample]:
    return [Sample(f"{drive}/clip.MP4/{i:05d}.jpg") for i in range(n)]


# -- which frames ---------------------------------------------------------------------------
def test_spread_is_even_and_distinct():
    assert spread(10, 1) == [5]
    assert spread(180, 7) == [12, 38, 64, 90, 115, 141, 167]
    assert spread(3, 5) == [0, 1, 2]
    for count in range(1, 40):
        for k in range(1, count + 1):
            picks = spread(count, k)
            assert len(set(picks)) == k and 0 <= min(picks) and max(picks) < count


def test_allocate_is_proportional_with_one_frame_per_drive():
    assert allocate([180, 10], 8) == [7, 1]  # the real dev set: 180 day, 10 night frames
    assert allocate([5, 1, 1], 3) == [1, 1, 1]
    assert allocate([4, 4], 3) in ([2, 1], [1, 2]) and sum(allocate([4, 4], 3)) == 3
    assert allocate([3, 2], 50) == [3, 2]  # never more than a drive holds
    assert allocate([2, 9, 1], 1) == [0, 1, 0]  # fewer frames than drives: the largest
    assert allocate([0, 6], 4) == [0, 4]


def test_frames_are_picked_from_both_drives_deterministically():
    day, night = samples("driver_23_30frame", 180), samples("driver_182_30frame", 10)
    shuffled = day + night
    random.Random(0).shuffle(shuffled)
    picked = pick_frames(shuffled, 8)
    assert picked == pick_frames(list(reversed(shuffled)), 8)  # order of the list does not matter
    assert [s.image for s in picked] == sorted(s.image for s in picked)
    assert sum(s.image.startswith("driver_182") for s in picked) == 1
    days = [int(s.image[-9:-4]) for s in picked if s.image.startswith("driver_23")]
    assert len(days) == 7 and min(days) < 30 and max(days) > 150  # spread over the drive, not the first seven
    assert len(pick_frames(day[:3] + day[:3], 8)) == 3  # duplicates once, never more than the list


# -- F1 per column and drawing -----------------------------------------------------------------
def lane(x: float) -> np.ndarray:
    ys = np.arange(589, 300, -10, dtype=np.float64)
    return np.stack([np.full_like(ys, x), ys], axis=1)


def test_column_f1_counts_like_the_metric():
    truth = [[lane(400), lane(900)], [lane(700)], []]
    predictions = [[DecodedLane(2, lane(402))], [DecodedLane(3, lane(700)), DecodedLane(4, lane(1400))], [DecodedLane(1, lane(200))]]
    sizes = [(1640, 590)] * 3
    counts = column_counts(truth, predictions, sizes)
    per_image = [count_image(t, [p.points for p in ps]) for t, ps in zip(truth, predictions)]
    expected = tuple(sum(getattr(c, k) for c in per_image) for k in ("tp", "fp", "fn", "images"))
    assert (counts.tp, counts.fp, counts.fn, counts.images) == expected == (2, 2, 1, 3)
    first, second = header_lines(Column("after", predictions, counts), 3)
    assert first == "after" and f"F1 {100 * counts.f1:.1f}%" in second and "3 frames" in second
    assert "no ground truth" in header_lines(Column("clip", predictions), 3)[1]
    assert header_lines(Column("x", [[]], column_counts([[]], [[]], [(1640, 590)])), 1)[1].startswith("F1 -")
    with pytest.raises(ValueError):
        column_counts(truth, predictions[:2], sizes)
    # a half-size frame is scored at its size with a 15 px lane: 2 px off at full size is 1 px off there
    half = [[(lane(400) + 0.5) / 2 - 0.5]], [[DecodedLane(2, (lane(402) + 0.5) / 2 - 0.5)]]
    assert column_counts(*half, [(820, 295)]).tp == 1


def test_a_tile_shows_predictions_in_lane_colours_and_the_truth_in_white():
    frame = np.zeros((590, 1640, 3), np.uint8)
    tile = render_tile(frame, [DecodedLane(3, lane(820))], [lane(400)], width=410)  # scale 1/4
    assert tile.shape == (148, 410, 3)
    row = tile[110].astype(int)  # source row ~441, inside both lanes
    assert np.abs(row[204:206] - LANE_COLORS[3]).max() <= 10  # thick prediction at x = (820 + .5) / 4 - .5
    grey = np.flatnonzero((row.min(axis=1) > 60) & (row.max(axis=1) - row.min(axis=1) <= 2))
    assert grey.size and set(grey) <= {98, 99, 100, 101}  # thin white ground truth at x = 99.6
    assert row[grey].max() <= max(GT_COLOR) and not row[150:190].any()  # nothing else drawn


# -- the PNG ----------------------------------------------------------------------------------
def test_a_sheet_from_a_list_has_a_row_per_frame_and_a_column_per_model(tiny_onnx, two_drives, tmp_path, capsys):
    out = tmp_path / "sheet.png"
    code = main(["--model", str(tiny_onnx), "--label", "before", "--model", str(tiny_onnx), "--label", "after",
                 "--data-root", str(two_drives), "--list", "test.txt", "--frames", "4", "--tile-width", "200", "--out", str(out)])
    assert code == 0
    image = cv2.imread(str(out))
    tile_h = round(590 * 200 / 1640)
    assert image.shape == (HEADER_H + 4 * (tile_h + GAP) + FOOTER_H, 2 * 200 + GAP, 3)
    assert out.stat().st_size < 3e6
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("before: F1 ") and lines[1].startswith("after: F1 ") and "4 frames" in lines[0]
    # the two columns ran the same model: the same F1, computed over the frames of both drives
    assert lines[0].split(": ", 1)[1] == lines[1].split(": ", 1)[1]
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write left nothing behind


def test_a_sheet_from_a_video_has_no_ground_truth(tiny_onnx, two_drives, tmp_path, capsys):
    clip = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10, (960, 540))
    for path in sorted(two_drives.rglob("*.jpg")):
        writer.write(cv2.resize(cv2.imread(str(path)), (960, 540)))
    writer.release()
    out = tmp_path / "video sheet.png"
    assert main(["--model", str(tiny_onnx), "--video", str(clip), "--frames", "3", "--tile-width", "240", "--out", str(out)]) == 0
    assert cv2.imread(str(out)).shape == (HEADER_H + 3 * (135 + GAP) + FOOTER_H, 240, 3)
    assert "no ground truth" in capsys.readouterr().out


def test_bad_input_is_one_line(tiny_onnx, two_drives, tmp_path, capsys):
    base = ["--model", str(tiny_onnx), "--out", str(tmp_path / "s.png")]
    assert main(base + ["--label", "a", "--label", "b", "--data-root", str(two_drives)]) == 2
    assert main(base + ["--data-root", str(two_drives), "--list", "nothing.txt"]) == 2
    assert main(base + ["--video", str(tmp_path / "missing.mp4")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("error: ") for line in err)
    assert "nothing.txt" in err[1] and "missing.mp4" in err[2]
    assert not (tmp_path / "s.png").exists()


def test_the_two_drive_root_is_valid(two_drives):
    listed = read_list(two_drives / "list" / "test.txt").samples
    assert {s.image.split("/")[0] for s in listed} == set(DRIVES) and len(listed) == 6
    assert all(isinstance(read_lines_file(two_drives / s.lines_name), list) for s in listed)
