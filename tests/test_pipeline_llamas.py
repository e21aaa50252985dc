"""./pipeline.sh llamas end to end on the tiny profile: the synthetic LLAMAS-style set in the official
layout, converted with IntRA-KD's val / test split of valid, three lane models trained, exported and
scored through the runtime by CULane's F1 and by LLAMAS' official mAP (the student alone too), and a
summary that agrees with the reports; the paper's LLAMAS pair at 960x288 in the smoke profile."""
from __future__ import annotations


import pytest

from pipeline.run import resolve_layout
from pipeline.stages import STAGES, map_models, paper_commands
from lanedata.llamas import metric as llamas
from runtime.artifacts import read_sidecar
from tests.helpers import read_json as read
from tests.test_pipeline import pipeline

MAPPED = ["student.fp32", "student.fp16", "student.int8", "teacher.fp32", "student_alone.fp32"]


@pytest.fixture(scope="module")
def llamas_run(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("llamas")
    return base, pipeline("llamas", "--profile", "tiny", "--base", str(base))


def test_the_llamas_pipeline_scores_every_model_by_the_official_map(llamas_run):
    base, r = llamas_run
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert "SYNTHETIC LLAMAS-style lane dataset" in r.stdout.splitlines()[0] and "extra evaluation" not in r.stdout
    name = "llamas-synth"
    root, art, rep = base / "data" / name, base / "artifacts" / name, base / "reports" / name
    assert (base / "data" / f"{name}-src" / "labels" / "valid").is_dir()
    tests = llamas.list_labels(root / "labels", "test")
    assert len(tests) == 4 and len(llamas.list_labels(root / "labels", "val")) == 4  # 8 valid frames: the halves
    for artifact in ("student.onnx", "student_alone.onnx", "teacher.onnx"):
        pre = read_sidecar(art / artifact).pre
        assert (pre.src_width, pre.src_height, pre.crop_top) == (1276, 717, 333)
    s = read(rep / "summary.json")
    assert s["benchmark"] == "llamas" and set(s["map"]) == set(MAPPED)
    for model in MAPPED:
        report = read(rep / "map" / f"{model}.json")
        assert report["split"] == "test" and report["images"] == len(tests) and 0.0 <= report["mAP"] <= 1.0
        assert s["map"][model]["mAP"] == report["mAP"]
    assert not any((base / "runs" / name / "llamas_pred").iterdir())  # the probability maps, removed once scored
    assert set(s["models"]) == {"teacher", "student", "student_intra_kd"}
    assert all("total" in m["f1"] for m in s["models"].values())  # F1 on the converted root as well
    md = (rep / "SUMMARY.md").read_text()
    assert "## LLAMAS: the official segmentation mAP" in md and "0.598" in md and "not LLAMAS or the paper" in md


def test_a_llamas_run_checks_its_extra_sets_and_refuses_subsets(tmp_path):
    # a LLAMAS lane model may be scored on CULane-format frames of any size; a root without a list is one line
    r = pipeline("llamas", "--profile", "tiny", "--base", str(tmp_path), "--extra-eval", str(tmp_path), timeout=60)
    assert r.returncode != 0 and "--extra-eval list not found" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "root" / "list").mkdir(parents=True)
    r = pipeline("llamas", "--data-root", str(tmp_path / "root"), "--profile", "smoke", "--base", str(tmp_path), timeout=60)
    assert r.returncode != 0 and "a llamas root runs the paper profile" in r.stderr
    real, _ = resolve_layout("llamas", str(tmp_path / "root"), None, tmp_path)
    assert real.profile == "paper" and real.settings["configs"]["student"] == "llamas/erfnet.yaml"
    mapping = next(stage for stage in STAGES if stage.name == "map")
    assert mapping.optional(real) is None and mapping.optional(resolve_layout("culane", None, "tiny", tmp_path)[0])
    assert set(map_models(real)) == set(MAPPED)


def test_the_smoke_profile_times_llamas_pair_at_the_paper_size(tmp_path):
    lay, _ = resolve_layout("llamas", None, "smoke", tmp_path)
    commands = [" ".join(c) for c in paper_commands(lay, backends=())]
    trains = [c for c in commands if "training.train" in c]
    assert len(trains) == 2 and "configs/llamas/resnet101_psp.yaml" in trains[0] and "configs/llamas/erfnet.yaml" in trains[1]
    assert all("input.net_width=960" in c and "input.net_height=288" in c for c in trains)
    assert not [c for c in commands if "culane/" in c]
    paper = next(stage for stage in STAGES if stage.name == "paper")
    assert paper.optional(resolve_layout("llamas", None, "tiny", tmp_path)[0]) and not paper.optional(lay)
