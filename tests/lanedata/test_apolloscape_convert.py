"""ApolloScape release layout -> trainable root: images linked, colour labels as train IDs, lists; resume; bad input."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from lanedata.apolloscape import labels as apolloscape
from runtime import marking_classes
from runtime.culane import CulaneDataset, read_list
from lanedata.apolloscape.convert import convert, main

ROOT = Path(__file__).resolve().parents[2]


def release(root: Path, count: int = 3) -> tuple[Path, list[np.ndarray]]:
    """Images and colour labels in the release layout (a camera folder with a space), and an
    IntRA-KD style list ``image label 1 1 1 1``."""
    rng = np.random.default_rng(0)
    rows, ids = [], []
    for i in range(count):
        image = Path("ColorImage_road02/ColorImage/Record001/Camera 5") / f"170927_06381{i}_Camera_5.jpg"
        label = apolloscape.label_path(image)
        for path in (root / image, root / label):
            path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / image), np.full((27, 34, 3), 80 + i, np.uint8))
        train = rng.integers(0, 36, (27, 34)).astype(np.uint8)
        train[0, :5] = 255
        cv2.imwrite(str(root / label), apolloscape.color_label(train)[..., ::-1])
        rows.append(f"/{image} /{label} 1 1 1 1" if i % 2 == 0 else f"/{image}")  # the label column is optional
        ids.append(train)
    (root / "lists").mkdir()
    (root / "lists" / "train.txt").write_text("\n".join(rows[:2]) + "\n")
    (root / "lists" / "val.txt").write_text(rows[2] + "\n")
    return root, ids


def test_a_release_becomes_a_trainable_root_and_a_rerun_keeps_it(tmp_path):
    source, ids = release(tmp_path / "apollo")
    out = tmp_path / "root"
    assert convert(source, {"train": source / "lists/train.txt", "val": source / "lists/val.txt"}, out) == {"train": 2, "val": 1}
    data = CulaneDataset(out, marking_classes.NUM_CLASSES)
    samples = data.read_list("train_gt.txt").samples + data.read_list("val_gt.txt").samples
    for sample, expected in zip(samples, ids):
        assert (out / sample.image).samefile(source / sample.image)  # hard-linked, not copied
        np.testing.assert_array_equal(data.read_label(sample), expected)
        assert sample.exist is None and sample.label.startswith("labels_trainid/ColorImage_road02/")
    label = out / samples[0].label
    before = label.stat().st_mtime_ns
    convert(source, {"train": source / "lists/train.txt"}, out)
    assert label.stat().st_mtime_ns == before  # up to date: kept


@pytest.mark.parametrize("case", ["missing-label", "bad-colour", "bad-list-arg", "outside-root"])
def test_bad_input_is_one_line_and_writes_no_list(case, tmp_path, capsys):
    source, _ = release(tmp_path / "apollo")
    args = ["--apollo-root", str(source), "--list", f"train={source / 'lists/train.txt'}", "--out-root", str(tmp_path / "root")]
    first = read_list(source / "lists/train.txt").samples[0]
    label = source / first.label
    if case == "missing-label":
        label.unlink()
        expected = f"train.txt:1: label map {label} not found"
    elif case == "bad-colour":
        image = cv2.imread(str(label))
        image[3, 3] = (7, 7, 7)
        cv2.imwrite(str(label), image)
        expected = f"{label}: 1 pixels of colours outside the ApolloScape table"
    elif case == "bad-list-arg":
        args[3] = "train"
        expected = "train: expected --list NAME=PATH"
    else:
        (source / "lists/train.txt").write_text("/../elsewhere/x.jpg\n")
        expected = "train.txt:1: paths must stay inside the ApolloScape root"
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and expected in err
    assert not (tmp_path / "root" / "list").exists()


def test_the_command_runs_as_a_module(tmp_path):
    source, _ = release(tmp_path / "apollo")
    proc = subprocess.run([sys.executable, "-m", "lanedata.apolloscape.convert", "--apollo-root", str(source),
                           "--list", f"val={source / 'lists/val.txt'}", "--out-root", str(tmp_path / "root")],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "val: 1 images" in proc.stdout and (tmp_path / "root/list/val_gt.txt").is_file()
