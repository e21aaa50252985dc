"""./pipeline.sh apolloscape end to end on the tiny profile: the synthetic marking set in the official
layout, converted, three 36-class models trained and scored by mIoU, exported and scored again
through the runtime, the paper's ApolloScape pair timed, and a summary that agrees with the reports."""
from __future__ import annotations


import pytest

from pipeline.run import resolve_layout
from pipeline.stages import SHARED_CLIP, STAGES
from runtime.artifacts import read_sidecar
from tests.helpers import read_json as read
from tests.test_pipeline import pipeline

DEPLOYED = ["student.fp32", "student.fp16", "teacher.fp32"]


@pytest.fixture(scope="module")
def marking_run(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("marks")
    return base, pipeline("apolloscape", "--profile", "tiny", "--base", str(base))


def test_the_marking_pipeline_trains_deploys_and_scores_by_miou(marking_run):
    base, r = marking_run
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert "SYNTHETIC ApolloScape-style lane-marking set" in r.stdout.splitlines()[0]
    assert "calibrate  skipped: marking models" in r.stdout and "extra evaluation" not in r.stdout
    name = "apolloscape-synth"
    data, art, rep, runs = base / "data", base / "artifacts" / name, base / "reports" / name, base / "runs" / name
    assert (data / f"{name}-src" / "ColorImage_road01" / "ColorImage").is_dir() and (data / name / "list" / "test_gt.txt").is_file()
    for artifact in ("student.onnx", "student.fp16.onnx", "teacher.onnx"):
        sidecar = read_sidecar(art / artifact)
        assert sidecar.class_table == "apolloscape" and len(sidecar.classes) == 36 and sidecar.output("exist_prob") is None
    s = read(rep / "summary.json")
    assert s["task"] == "markings" and s["synthetic"] is True
    for model in ("teacher", "student", "student_intra_kd"):
        trained = read(runs / model / "eval_test" / "miou.json")
        assert s["models"][model]["miou"] == trained["miou"] and s["models"][model]["iou"] == trained["iou"]
    for deployed in DEPLOYED:
        evaluation, bench = read(rep / "eval" / f"{deployed}.json"), read(rep / "bench" / f"{deployed}.json")
        assert s["deployed"][deployed]["miou"] == evaluation["miou"] and 0.0 <= evaluation["miou"] <= 1.0
        assert s["deployed"][deployed]["latency_p50_ms"] == bench["summary"]["host"]["p50"]
    # the tiny profile times no paper pair (the culane run does; the smoke commands are checked below)
    assert s["paper_pair"] is None and "paper      skipped: this profile times no paper pair" in r.stdout
    assert s["teacher_vs_student"]["metric"] == "mIoU"
    md = (rep / "SUMMARY.md").read_text()
    assert "mIoU" in md and "| student_intra_kd |" in md and "43.2" in md
    if SHARED_CLIP.is_file():  # the class map drawn on the real clip (markings have no synthetic drive)
        video = read(rep / "video" / "dashcam.student.json")
        assert video["meta"]["classes"] == "apolloscape" and (rep / "video" / "dashcam.student.mp4").stat().st_size > 0


def test_a_marking_run_refuses_lane_options(tmp_path):
    r = pipeline("apolloscape", "--profile", "tiny", "--base", str(tmp_path), "--extra-eval", str(tmp_path), timeout=60)
    assert r.returncode != 0 and "--extra-eval scores lane models by CULane F1" in r.stderr and "36 marking classes" in r.stderr
    lay, banner = resolve_layout("apolloscape", None, "tiny", tmp_path)
    assert lay.markings and lay.metric_report == "miou.json" and "ApolloScape-style" in banner
    calibrate = next(stage for stage in STAGES if stage.name == "calibrate")
    assert calibrate.optional(lay) and not calibrate.optional(resolve_layout("culane", None, "tiny", tmp_path)[0])


def test_the_smoke_profile_times_apolloscapes_pair_at_the_paper_size(tmp_path):
    from pipeline.stages import paper_commands

    lay, _ = resolve_layout("apolloscape", None, "smoke", tmp_path)
    commands = [" ".join(c) for c in paper_commands(lay, backends=())]
    trains = [c for c in commands if "training.train" in c]
    assert len(trains) == 2 and "apolloscape/resnet101_psp.yaml" in trains[0] and "apolloscape/erfnet.yaml" in trains[1]
    for c in trains:  # the paper's 1692x505 as 1696x512, on the synthetic frames' geometry
        assert "input.net_width=1696" in c and "input.net_height=512" in c and "input.crop_top=240" in c
    assert not [c for c in commands if "culane/" in c]
    exports = [c for c in commands if "export.to_onnx" in c]
    assert len(exports) == 2 and all("--parity-images 1 " in c for c in exports)  # the profile's, not the default 4
    culane, _ = resolve_layout("culane", None, "smoke", tmp_path)
    assert all("--parity-images 4 " in " ".join(c) for c in paper_commands(culane, backends=()) if "export.to_onnx" in c)
    tiny, _ = resolve_layout("apolloscape", None, "tiny", tmp_path)
    paper = next(stage for stage in STAGES if stage.name == "paper")
    assert paper.optional(tiny) and not paper.optional(lay)
