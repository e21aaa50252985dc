"""The pieces behind "refuse bad input before work": truncated image files, the cached list scan,
staged output folders, output-location checks, one-line argument errors."""
from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from runtime.atomic import staged_directory
from runtime.cli import Parser, check_output_dir, check_output_file, positive_int
from runtime.culane import image_size, incomplete, read_image, read_label, read_list
from runtime.errors import DataError
from runtime.scan import scan_samples


def _jpeg(h: int = 40, w: int = 64) -> bytes:
    image = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", image)[1].tobytes()


def _with_thumbnail(main: bytes) -> bytes:
    """``main`` with an EXIF-like APP1 segment holding a whole JPEG (its own end-of-image marker) first."""
    payload = b"Exif\x00\x00" + _jpeg(8, 8)
    return main[:2] + b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload + main[2:]


@pytest.mark.parametrize("progressive", [False, True])
def test_a_complete_jpeg_passes_and_every_cut_is_found(progressive):
    image = np.random.default_rng(1).integers(0, 255, (48, 80, 3), dtype=np.uint8)
    data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_PROGRESSIVE, int(progressive)])[1].tobytes()
    assert incomplete(data) is None and image_size(data) == (80, 48)
    for keep in (0.2, 0.5, 0.9, (len(data) - 1) / len(data)):
        assert "truncated JPEG" in incomplete(data[: int(len(data) * keep)])


def test_a_thumbnail_end_marker_does_not_hide_a_truncated_main_image():
    data = _with_thumbnail(_jpeg())
    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape == (40, 64, 3)
    assert incomplete(data) is None and image_size(data) == (64, 40)
    assert "truncated JPEG" in incomplete(data[:-300])


def test_png_cut_short_and_empty_files_are_found(tmp_path):
    data = cv2.imencode(".png", np.zeros((30, 50), np.uint8))[1].tobytes()
    assert incomplete(data) is None and image_size(data) == (50, 30)
    assert "truncated PNG" in incomplete(data[:-20])
    assert incomplete(b"") == "empty file"
    path = tmp_path / "label.png"
    path.write_bytes(data[:-20])
    with pytest.raises(DataError, match=r"label\.png: corrupt label map: truncated PNG"):
        read_label(path)
    path.write_bytes(b"")
    with pytest.raises(DataError, match="corrupt image: empty file"):
        read_image(path)


# -- the scan ---------------------------------------------------------------------------------
@pytest.fixture
def root(tiny_dataset: Path, tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("LANEDISTILL_CACHE", str(tmp_path / "cache"))
    dest = tmp_path / "data"
    shutil.copytree(tiny_dataset, dest)
    return dest


def _train(root: Path):
    return read_list(root / "list" / "train_gt.txt").samples


def test_a_clean_list_scans_once_then_hits_the_cache_until_a_file_changes(root, tmp_path, monkeypatch):
    samples = _train(root)
    assert scan_samples(root, samples, labels=True) == []
    assert len(list((tmp_path / "cache" / "scans").glob("*.json"))) == 1
    calls = []
    import runtime.scan as scan

    monkeypatch.setattr(scan, "check_sample", lambda *a, **k: calls.append(a))
    assert scan_samples(root, samples, labels=True) == []
    assert calls == []  # cached
    label = root / samples[3].label
    label.write_bytes(label.read_bytes())  # same bytes, new modification time: scanned again
    assert scan_samples(root, samples, labels=True) == [] and len(calls) == len(samples)


@pytest.mark.parametrize("damage, expected", [
    ("label_value", "label values [7]"),
    ("label_missing", "label map not found"),
    ("label_size", "expected 1640x590 (the image's size)"),
    ("image_truncated", "truncated JPEG"),
])
def test_bad_files_are_found_with_their_sample_and_never_cached(root, tmp_path, damage, expected):
    samples = _train(root)
    bad = samples[5]
    label_path, image_path = root / bad.label, root / bad.image
    if damage == "label_value":
        label = cv2.imread(str(label_path), cv2.IMREAD_UNCHANGED)
        label[0, 0] = 7
        cv2.imwrite(str(label_path), label)
    elif damage == "label_missing":
        label_path.unlink()
    elif damage == "label_size":
        cv2.imwrite(str(label_path), np.zeros((100, 200), np.uint8))
    else:
        image_path.write_bytes(image_path.read_bytes()[:5000])
    for _ in range(2):  # a bad result is not cached
        found = scan_samples(root, samples, labels=True)
        assert [s for s, _ in found] == [bad] and expected in str(found[0][1])


def test_lanes_option_finds_a_missing_annotation(root):
    samples = read_list(root / "list" / "val_gt.txt").samples
    (root / samples[0].lines_name).unlink()
    [(sample, err)] = scan_samples(root, samples, lanes=True)
    assert sample == samples[0] and ".lines.txt) not found" in str(err)


# -- staged output folders --------------------------------------------------------------------
def test_a_staged_folder_appears_whole_or_not_at_all(tmp_path):
    target = tmp_path / "a" / "b" / "pred"
    with pytest.raises(RuntimeError):
        with staged_directory(target) as staging:
            (staging / "x.txt").write_text("1")
            raise RuntimeError("failed mid-way")
    assert list(tmp_path.iterdir()) == []  # the parents it made are gone too
    with staged_directory(target) as staging:
        (staging / "d").mkdir()
        (staging / "d" / "x.txt").write_text("1")
    assert (target / "d" / "x.txt").read_text() == "1"
    (target / "keep.txt").write_text("user's")
    with staged_directory(target) as staging:
        (staging / "d").mkdir()
        (staging / "d" / "x.txt").write_text("2")
    assert (target / "d" / "x.txt").read_text() == "2" and (target / "keep.txt").read_text() == "user's"
    assert [p.name for p in target.parent.iterdir()] == ["pred"]


# -- output checks and arguments --------------------------------------------------------------
def test_output_checks_create_nothing_and_name_the_obstacle(tmp_path):
    plain = tmp_path / "plain"
    plain.write_text("x")
    assert check_output_file(tmp_path / "new" / "deeper" / "r.json") == tmp_path / "new" / "deeper" / "r.json"
    assert check_output_dir(tmp_path / "new" / "dir") == tmp_path / "new" / "dir"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain"]
    with pytest.raises(DataError, match="plain is a file, not a folder"):
        check_output_file(plain / "r.json")
    with pytest.raises(DataError, match="is a folder; expected a file path"):
        check_output_file(tmp_path)
    with pytest.raises(DataError, match="plain is a file, not a folder"):
        check_output_dir(plain / "sub")


def test_argument_errors_are_one_line(capsys):
    parser = Parser(prog="tool")
    parser.add_argument("--count", type=positive_int, required=True)
    for argv, needle in ((["--count", "-3"], "expected an integer >= 1, got -3"), ([], "required: --count")):
        with pytest.raises(SystemExit) as stop:
            parser.parse_args(argv)
        err = capsys.readouterr().err
        assert stop.value.code == 2 and err.count("\n") == 1 and needle in err and err.startswith("tool: error:")
