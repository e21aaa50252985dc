"""The video loop's thread trial: each candidate gets its warm-up frames, the faster loop is kept,
the other session freed; the real loop records its choice."""
from __future__ import annotations

import json
import os
import time

import pytest

from runtime.thread_trial import MIN_FRAMES_EACH, SETTLE, ThreadTrial, candidate_threads, usable_cores


class FakePipeline:
    """Stands in for runtime.predictor.FramePredictor: a call takes ``ms`` and is counted."""

    def __init__(self, ms: float) -> None:
        self.ms, self.calls, self.backend = ms, 0, f"backend {ms}"

    def __call__(self, image, prepared=None, prepare_ms=0.0):
        self.calls += 1
        time.sleep(self.ms / 1000)
        return self.ms

    def preprocess(self, image, out=None):
        return ("prepared", self.ms)


@pytest.mark.parametrize("slow_first", [True, False])
def test_each_candidate_gets_its_frames_and_the_faster_loop_is_kept(slow_first):
    many, fewer = (FakePipeline(12.0), FakePipeline(2.0)) if slow_first else (FakePipeline(2.0), FakePipeline(12.0))
    trial = ThreadTrial({4: many, 3: fewer}, frames_each=5)
    served = [trial(None) for _ in range(10)]
    assert served == [many.ms] * 5 + [fewer.ms] * 5 and trial.chosen is None  # decided on the next frame
    trial(None)
    faster = 3 if slow_first else 4
    assert trial.chosen == faster and set(trial.pipelines) == {faster}  # the other session is let go
    assert trial.periods_ms[4] == pytest.approx(many.ms, abs=8) and trial.periods_ms[3] == pytest.approx(fewer.ms, abs=8)
    for _ in range(5):
        trial(None)
    kept = fewer if slow_first else many
    assert kept.calls == 5 + 6 and (many if slow_first else fewer).calls == 5
    assert trial.backend == kept.backend and trial.preprocess(None)[1] == kept.ms
    info = trial.describe()
    assert info["chosen"] == faster and info["candidates"] == [4, 3] and info["judged_after"] == SETTLE


def test_candidates_need_two_cores_and_enough_warm_up():
    assert candidate_threads(20, cores=8) == [8, 7]
    assert candidate_threads(20, cores=1) == []
    assert candidate_threads(2 * MIN_FRAMES_EACH - 1, cores=4) == []
    with pytest.raises(ValueError):
        ThreadTrial({2: FakePipeline(1), 1: FakePipeline(1)}, frames_each=MIN_FRAMES_EACH - 1)


@pytest.mark.skipif(usable_cores() < 2, reason="the trial needs 2 cores")
def test_the_video_loop_reports_its_trial_and_fixed_threads_skip_it(tiny_onnx, tmp_path):
    from runtime.infer_video import main
    from tests.runtime.test_infer_video import make_video

    video = make_video(tmp_path / "clip.mp4", 24, (640, 360))
    assert main(["--model", str(tiny_onnx), "--video", str(video), "--no-video", "--report", str(tmp_path / "a.json"),
                 "--device", "cpu", "--warmup", "10"]) == 0
    meta = json.loads((tmp_path / "a.json").read_text())["meta"]
    cores = usable_cores()
    assert meta["thread_trial"]["candidates"] == [cores, cores - 1] and meta["thread_trial"]["frames_each"] == 5
    assert meta["threads"] == meta["thread_trial"]["chosen"] in (cores, cores - 1)
    assert set(meta["thread_trial"]["loop_period_ms"]) == {str(cores), str(cores - 1)}
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    if allowed:  # the fewer threads won: reader and writer on the last core, the model on the others; else every core
        fewer = meta["threads"] == cores - 1
        assert meta["affinity"] == {"cores": allowed, "io": allowed[-1:] if fewer else allowed,
                                    "model": allowed[:-1] if fewer else allowed}
    assert main(["--model", str(tiny_onnx), "--video", str(video), "--no-video", "--report", str(tmp_path / "b.json"),
                 "--device", "cpu", "--warmup", "10", "--threads", "1"]) == 0
    meta = json.loads((tmp_path / "b.json").read_text())["meta"]
    assert meta["thread_trial"] is None and meta["threads"] == 1
