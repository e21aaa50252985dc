"""runtime.evaluate --group-by drive: counts per drive folder that add up to the pooled total."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime.culane import Sample
from runtime.culane_metric import Counts
from runtime.evaluate import main
from runtime.scoring import drive_of, group_counts
from tests.runtime.test_contact_sheet import DRIVES, write_two_drive_root


def test_the_drive_is_the_first_folder_of_the_image_path():
    assert drive_of(Sample("driver_23_30frame/05151649_0422.MP4/00000.jpg")) == "driver_23_30frame"
    assert drive_of(Sample("top.jpg")) == "."


def test_group_counts_pool_each_image_once():
    samples = [Sample("b/x/1.jpg"), Sample("a/x/2.jpg"), Sample("b/x/3.jpg"), Sample("b/x/1.jpg")]
    counts = {"b/x/1.jpg": Counts(1, 0, 1, 1), "a/x/2.jpg": Counts(0, 2, 0, 1), "b/x/3.jpg": Counts(3, 1, 0, 1)}
    groups = group_counts(samples, counts, drive_of)
    assert list(groups) == ["a", "b"]
    assert (groups["b"].tp, groups["b"].fp, groups["b"].fn, groups["b"].images) == (4, 1, 1, 2)
    assert (groups["a"].fp, groups["a"].images) == (2, 1)


@pytest.fixture(scope="module")
def two_drives(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_two_drive_root(tiny_dataset, tmp_path_factory.mktemp("groups") / "real")


def test_the_report_holds_each_drive_and_they_add_up(tiny_onnx, two_drives, tmp_path, capsys):
    report = tmp_path / "r.json"
    assert main(["--model", str(tiny_onnx), "--data-root", str(two_drives), "--list", "test.txt", "--group-by", "drive",
                 "--report", str(report)]) == 0
    record = json.loads(report.read_text())
    drives, total = record["groups"]["drive"], record["lists"]["total"]
    assert set(drives) == set(DRIVES) and all(d["images"] == 3 for d in drives.values())
    for key in ("tp", "fp", "fn", "images"):
        assert sum(d[key] for d in drives.values()) == total[key]
    per_image = record["per_image"]  # what an image-paired comparison of two reports reads
    assert len(per_image) == total["images"]
    assert [sum(c[k] for c in per_image.values()) for k in range(3)] == [total["tp"], total["fp"], total["fn"]]
    assert "per drive:" in capsys.readouterr().out
    assert main(["--model", str(tiny_onnx), "--data-root", str(two_drives), "--list", "test.txt", "--report", str(report)]) == 0
    assert "groups" not in json.loads(report.read_text())  # only when asked
