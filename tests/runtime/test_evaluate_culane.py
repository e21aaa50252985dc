import json
import shutil
import subprocess
import sys

import numpy as np

from runtime.culane import CATEGORIES, CulaneDataset, split_list_name
from runtime.culane import default_lists
from runtime.culane_metric import evaluate_lists
from runtime.lines import write_lines_file


def make_predictions(root, pred):
    """Perfect predictions, except: none for 'normal', one false lane per 'cross' image."""
    ds = CulaneDataset(root)
    expected = {}
    for category in CATEGORIES:
        tp = fp = fn = 0
        for s in ds.read_list(f"test_split/{split_list_name(category)}").samples:
            truth = ds.read_lanes(s)
            target = pred / s.lines_name
            target.parent.mkdir(parents=True, exist_ok=True)
            if category == "normal":
                fn += len(truth)
                continue  # missing prediction file = no lanes
            lanes = list(truth)
            if category == "cross":
                lanes.append(np.array([[800.0, 590.0], [820.0, 300.0]]))
                fp += 1
            write_lines_file(target, lanes)
            tp += len(truth)
        expected[category] = (tp, fp, fn)
    return expected


def test_per_category_counts_and_pooled_total(tiny_dataset, tmp_path):
    pred = tmp_path / "pred"
    expected = make_predictions(tiny_dataset, pred)
    results = evaluate_lists(tiny_dataset, pred, default_lists(tiny_dataset), workers=1)
    assert list(results) == list(CATEGORIES) + ["total"]
    for category, (tp, fp, fn) in expected.items():
        c = results[category]
        assert (c.tp, c.fp, c.fn, c.images) == (tp, fp, fn, 3), category
    total = results["total"]
    assert (total.tp, total.fp, total.fn) == tuple(np.sum(list(expected.values()), axis=0))
    assert results["cross"].recall is None and results["cross"].fp == 3
    assert 0 < total.f1 < 1


def test_cli_prints_a_table_and_json_last(tiny_dataset, tmp_path):
    pred = tmp_path / "pred"
    expected = make_predictions(tiny_dataset, pred)
    cmd = [sys.executable, "-m", "runtime.evaluate_culane", "--data-root", str(tiny_dataset), "--pred-dir", str(pred), "--json", "--workers", "2"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    lines = out.strip().splitlines()
    assert lines[0].split()[:2] == ["list", "images"]
    payload = json.loads(lines[-1])
    assert payload["lists"]["curve"]["f1"] == 1.0
    assert payload["lists"]["normal"]["fn"] == expected["normal"][2]
    assert payload["total"]["images"] == 27 and payload["params"]["width"] == 30
    one = subprocess.run(cmd[:-2] + ["--list", str(tiny_dataset / "list/test_split" / split_list_name("night"))], capture_output=True, text=True, check=True)
    assert json.loads(one.stdout.strip().splitlines()[-1])["total"]["f1"] == 1.0


def test_cli_bad_input_is_one_line_and_exit_2(tiny_dataset, tmp_path):
    base = [sys.executable, "-m", "runtime.evaluate_culane", "--data-root", str(tiny_dataset)]
    r = subprocess.run(base + ["--pred-dir", str(tmp_path / "none")], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "prediction folder not found" in r.stderr
    (tmp_path / "p").mkdir()
    r = subprocess.run(base + ["--pred-dir", str(tmp_path / "p"), "--list", "nope.txt"], capture_output=True, text=True)
    assert r.returncode == 2 and "nope.txt: list file not found" in r.stderr
    broken = tmp_path / "root"
    shutil.copytree(tiny_dataset / "list", broken / "list")
    r = subprocess.run([sys.executable, "-m", "runtime.evaluate_culane", "--data-root", str(broken), "--pred-dir", str(tmp_path / "p")], capture_output=True, text=True)
    assert r.returncode == 2 and "annotation file not found" in r.stderr and "Traceback" not in r.stderr


def test_a_bad_file_in_a_worker_process_is_reported_by_name(tmp_path):
    """The parallel path (>= 64 images) must bring the worker's DataError back intact."""
    import pytest

    from runtime.culane_metric import count_images
    from runtime.errors import DataError

    names = [f"clip/{i:05d}.lines.txt" for i in range(80)]
    for name in names:
        write_lines_file(tmp_path / "gt" / name, [np.array([[500.0, 590.0], [600.0, 300.0]])])
    (tmp_path / "pred" / "clip").mkdir(parents=True)
    (tmp_path / "pred" / names[50]).write_text("1 2 x\n")
    with pytest.raises(DataError, match=r"00050.lines.txt:1: not a number"):
        count_images(tmp_path / "gt", tmp_path / "pred", names, workers=2)


def test_cli_rejects_impossible_parameters(tiny_dataset, tmp_path):
    r = subprocess.run([sys.executable, "-m", "runtime.evaluate_culane", "--data-root", str(tiny_dataset),
                        "--pred-dir", str(tmp_path), "--width", "0"], capture_output=True, text=True)
    assert r.returncode == 2 and "--width" in r.stderr and "Traceback" not in r.stderr
