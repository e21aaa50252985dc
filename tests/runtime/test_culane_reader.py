import cv2
import numpy as np
import pytest

from runtime.culane import CATEGORIES, CulaneDataset, read_label, read_list, split_list_name
from runtime.errors import DataError


def test_list_forms(tmp_path):
    path = tmp_path / "l.txt"
    path.write_text(
        "/driver_23/a.MP4/00000.jpg /laneseg_label_w16/driver_23/a.MP4/00000.png 1 1 0 1\n"
        "\n"
        "driver_37/b.MP4/00030.jpg\n"
        "/driver_37/b.MP4/00060.jpg /lbl/b.png\n"
    )
    samples = read_list(path).samples
    assert [s.image for s in samples] == ["driver_23/a.MP4/00000.jpg", "driver_37/b.MP4/00030.jpg", "driver_37/b.MP4/00060.jpg"]
    assert samples[0].exist == (1, 1, 0, 1) and samples[0].label == "laneseg_label_w16/driver_23/a.MP4/00000.png"
    assert samples[1].exist is None and samples[1].label is None
    assert samples[2].label == "lbl/b.png"
    assert samples[0].lines_name == "driver_23/a.MP4/00000.lines.txt"
    assert samples[1].line == 3


@pytest.mark.parametrize(
    "row, problem",
    [("a.jpg b.png 1 1 1\n", "got 5 fields"), ("a.jpg b.png 1 2 0 1\n", "existence flags must be 0 or 1")],
)
def test_malformed_list_line_names_file_and_line(tmp_path, row, problem):
    path = tmp_path / "train_gt.txt"
    path.write_text("ok.jpg\n" + row)
    with pytest.raises(DataError) as err:
        read_list(path)
    assert f"{path}:2:" in str(err.value) and problem in str(err.value)


def test_skip_bad_counts_and_keeps_the_rest(tmp_path, caplog):
    path = tmp_path / "l.txt"
    path.write_text("a.jpg\nb.jpg x.png 1 1\nc.jpg\n")
    result = read_list(path, skip_bad=True)
    assert [s.image for s in result.samples] == ["a.jpg", "c.jpg"]
    assert len(result.skipped) == 1 and result.skipped[0].startswith("line 2:")
    assert "skipped 1 malformed" in caplog.text


def test_missing_list(tmp_path):
    with pytest.raises(DataError, match="list file not found"):
        read_list(tmp_path / "none.txt")


def test_corrupt_and_missing_images(tmp_path):
    (tmp_path / "x.jpg").write_bytes(b"this is not a jpeg")
    ds = CulaneDataset(tmp_path)
    sample = read_list_from(tmp_path, "x.jpg\nmissing.jpg\n")
    with pytest.raises(DataError, match="cannot decode image") as err:
        ds.read_image(sample[0])
    assert "x.jpg" in str(err.value)
    with pytest.raises(DataError, match="image not found"):
        ds.read_image(sample[1])


def read_list_from(root, text):
    path = root / "list.txt"
    path.write_text(text)
    return read_list(path).samples


def test_label_values_are_checked(tmp_path):
    good = np.zeros((4, 5), np.uint8)
    good[0, 0], good[1, 1] = 4, 255
    cv2.imwrite(str(tmp_path / "good.png"), good)
    np.testing.assert_array_equal(read_label(tmp_path / "good.png"), good)
    bad = good.copy()
    bad[2, 2] = 7
    cv2.imwrite(str(tmp_path / "bad.png"), bad)
    with pytest.raises(DataError, match=r"label values \[7\] outside 0..4"):
        read_label(tmp_path / "bad.png")
    cv2.imwrite(str(tmp_path / "rgb.png"), np.dstack([good, good, good]))
    np.testing.assert_array_equal(read_label(tmp_path / "rgb.png"), good)


def test_generated_dataset_reads_back_through_the_reader(tiny_dataset):
    ds = CulaneDataset(tiny_dataset)
    train = ds.read_list("train_gt.txt").samples
    assert len(train) == 12
    for sample in train:
        image = ds.read_image(sample)
        label = ds.read_label(sample)
        lanes = ds.read_lanes(sample)
        assert image.shape == (590, 1640, 3) and label.shape == (590, 1640)
        assert len(lanes) == sum(sample.exist)
    for category in CATEGORIES:
        tests = ds.read_list(f"test_split/{split_list_name(category)}").samples
        assert len(tests) == 3
        for sample in tests:
            ds.read_lanes(sample)
            assert ds.read_image(sample).shape == (590, 1640, 3)
    assert len(ds.read_list("test.txt").samples) == 27


def test_paths_with_spaces_and_a_byte_order_mark(tmp_path):
    path = tmp_path / "l.txt"
    path.write_bytes("\ufeff/my clip/0.jpg /lbl/my clip/0.png 1 0 0 1\r\nmy clip/1.jpg\r\n".encode("utf-8"))
    first, second = read_list(path).samples
    assert (first.image, first.label, first.exist) == ("my clip/0.jpg", "lbl/my clip/0.png", (1, 0, 0, 1))
    assert second.image == "my clip/1.jpg" and second.label is None


def test_label_of_another_size_names_the_file(tmp_path):
    cv2.imwrite(str(tmp_path / "small.png"), np.zeros((295, 820), np.uint8))
    with pytest.raises(DataError, match="820x295, expected 1640x590") as err:
        read_label(tmp_path / "small.png", expected_shape=(590, 1640))
    assert "small.png" in str(err.value)
