"""The marking experiment's report: mIoU per model over seeds, IoU per class, paired differences over seeds."""
import statistics

import pytest

from training.config import ConfigError
from training.experiments import load_experiment
from training.marking_report import class_means, paired, write_marking_report
from runtime.paired import seed_interval


def report(miou: float, iou: dict) -> dict:
    return {"miou": miou, "iou": iou, "params": 2_000_000, "model": "erfnet"}


def results() -> dict:
    base = {s: report(v, {"s_w_d": v, "c_wy_z": None}) for s, v in enumerate((0.30, 0.32, 0.31))}
    kd = {s: report(v, {"s_w_d": v + 0.1, "c_wy_z": 0.2}) for s, v in enumerate((0.33, 0.36, 0.34))}
    return {"teacher": report(0.5, {"s_w_d": 0.6, "c_wy_z": 0.4}), "methods": {"baseline": base, "intra_kd": kd}}


def test_the_paired_difference_is_over_the_same_seeds():
    rows = paired(results())
    assert len(rows) == 1 and rows[0]["seeds"] == [0, 1, 2]
    mean, low, high = seed_interval([33.0, 36.0, 34.0], [30.0, 32.0, 31.0])
    assert rows[0]["diff"] == pytest.approx(mean) and rows[0]["seed_ci"] == pytest.approx((low, high))
    assert rows[0]["per_seed"] == [3.0, 4.0, 3.0]


def test_class_means_skip_seeds_that_do_not_score_a_class():
    means = class_means([report(0.3, {"a": 0.2, "b": None}), report(0.3, {"a": 0.4, "b": 0.5})])
    assert means == {"a": pytest.approx(30.0), "b": pytest.approx(50.0)}


def test_the_report_files(tmp_path):
    lines = write_marking_report(results(), tmp_path, "Distillation on marks")
    md = (tmp_path / "distillation.md").read_text()
    assert f"**{statistics.mean([33, 36, 34]):.2f} ± {statistics.stdev([33, 36, 34]):.2f}**" in md
    assert "Paired difference to the student alone" in md and "+3.00 / +4.00 / +3.00" in md
    assert (tmp_path / "distillation.csv").read_text().count("\n") == 4 and (tmp_path / "distillation.png").stat().st_size > 0
    assert len(lines) == 3 and "mIoU" in lines[1]


def test_a_marking_experiment_file_is_checked(tmp_path):
    path = tmp_path / "e.yaml"
    path.write_text("task: markings\nstudent: a.yaml\nteacher: b.yaml\nseeds: [0]\nmethods: {baseline: null}\nextra_eval: [x]\n")
    with pytest.raises(ConfigError, match="extra_eval scores lanes"):
        load_experiment(path)
    path.write_text("task: boxes\nstudent: a.yaml\nteacher: b.yaml\nseeds: [0]\nmethods: {baseline: null}\n")
    with pytest.raises(ConfigError, match="task 'boxes'"):
        load_experiment(path)
