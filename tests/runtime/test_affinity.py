"""Threads of the video loop pinned to cores: the plan, each thread really pinned, the main thread
given its cores back, and the report's record of it."""
from __future__ import annotations

import json
import os
import threading

import numpy as np
import pytest

from runtime import infer_video
from runtime.frame_loop import run_loop
from runtime import predictor
from runtime.predictor import FramePredictor
from runtime.affinity import CorePlan, allowed_cores, pin_current_thread, plan_cores, restored_affinity
from runtime.backends import load_backend
from runtime.frame_policy import FramePolicy
from runtime.video_io import FrameReader, FrameWriter
from tests.runtime.test_infer_video import make_video

CORES = allowed_cores()
needs_two_cores = pytest.mark.skipif(CORES is None or len(CORES) < 2, reason="pinning needs Linux and 2 allowed cores")


def test_the_last_core_goes_to_the_io_and_the_rest_to_a_model_that_fits():
    plan = plan_cores({2, 5, 7})
    assert plan == CorePlan(frozenset({2, 5, 7}), frozenset({7}))
    assert plan.model_cores(1) == plan.model_cores(2) == {2, 5}
    assert plan.model_cores(3) is None and plan.model_cores(None) is None  # the model needs every core: not pinned
    assert plan.model_threads_cores(3) == {2, 5, 7} and plan.io_cores(3) == {2, 5, 7} and plan.io_cores(2) == {7}
    assert plan_cores({3}) is None and plan_cores(set()) is None


@needs_two_cores
def test_pinning_holds_for_the_calling_thread_only_and_is_given_back():
    one = {min(CORES)}
    seen: dict[str, set[int]] = {}

    def worker() -> None:
        pin_current_thread(one)
        seen["worker"] = os.sched_getaffinity(0)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen["worker"] == one and os.sched_getaffinity(0) == CORES
    with pytest.raises(RuntimeError), restored_affinity():
        pin_current_thread(one)
        assert os.sched_getaffinity(0) == one
        raise RuntimeError("the loop failed")
    assert os.sched_getaffinity(0) == CORES


@needs_two_cores
def test_reader_writer_and_model_threads_run_on_their_cores(tiny_onnx, tmp_path):
    plan = plan_cores()
    model_cores = plan.model_cores(1)
    seen: dict[str, set[int]] = {}
    video = make_video(tmp_path / "v.mp4", 6, (160, 90))
    backend = load_backend(tiny_onnx, "onnxruntime", "cpu", 1)
    infer = backend.infer

    def spying_infer(batch):
        seen["model"] = os.sched_getaffinity(0)
        return infer(batch)

    backend.infer = spying_infer
    reader = FrameReader(video, cores=plan.io)
    pipeline = FramePredictor(backend, FramePolicy(backend.sidecar.pre, *reader.size), model_cores)

    def prepare(image):
        seen["reader"] = os.sched_getaffinity(0)
        return pipeline.preprocess(image)

    def render(item):
        seen["writer"] = os.sched_getaffinity(0)
        return predictor.render(item)

    reader.prepare = prepare
    writer = FrameWriter(tmp_path / "out.mp4", 30, reader.size, render=render, cores=plan.io)
    try:
        result = run_loop(pipeline, reader, writer, 1, threading.Event())
    finally:
        writer.close()
        reader.close()
    assert result.processed == 6
    assert seen == {"reader": plan.io, "writer": plan.io, "model": model_cores}
    assert os.sched_getaffinity(0) == CORES  # the main thread has its cores back after the loop


@needs_two_cores
def test_the_report_says_which_cores_ran_what(tiny_onnx, tmp_path):
    video = make_video(tmp_path / "clip.mp4", 12, (320, 180))
    rest = sorted(CORES - {max(CORES)})

    def meta(*extra: str) -> dict:
        report = tmp_path / "r.json"
        assert infer_video.main(["--model", str(tiny_onnx), "--video", str(video), "--no-video", "--report", str(report),
                                 "--device", "cpu", "--warmup", "2", *extra]) == 0
        return json.loads(report.read_text())["meta"]

    assert meta("--threads", "1")["affinity"] == {"cores": sorted(CORES), "io": [max(CORES)], "model": rest}
    assert meta("--threads", "1", "--no-pin")["affinity"] is None
    assert meta("--threads", str(len(CORES)))["affinity"] is None  # the model needs every core: nothing pinned
    assert os.sched_getaffinity(0) == CORES


@needs_two_cores
def test_a_thread_trial_gives_every_core_back_to_the_all_core_candidate(tiny_onnx):
    """The all-core candidate after the pinned one must run on every core again (and win here)."""
    import time

    from runtime.thread_trial import MIN_FRAMES_EACH, ThreadTrial

    plan, n = plan_cores(), len(CORES)
    policy = FramePolicy(load_backend(tiny_onnx, "onnxruntime", "cpu", 1).sidecar.pre, 160, 90)
    pipelines = {t: infer_video.pinned_pipeline(str(tiny_onnx), "onnxruntime", "cpu", t, policy, plan) for t in (n - 1, n)}
    seen: list[tuple[int, set[int]]] = []
    for t, pipeline in pipelines.items():
        infer = pipeline.backend.infer

        def spy(batch, t=t, infer=infer):
            seen.append((t, os.sched_getaffinity(0)))
            time.sleep(0.02 if t == n - 1 else 0.0)  # the pinned candidate loses
            return infer(batch)

        pipeline.backend.infer = spy
    decided: list[int] = []
    trial = ThreadTrial(pipelines, MIN_FRAMES_EACH, on_decide=decided.append)
    frame = np.full((90, 160, 3), 80, np.uint8)
    with restored_affinity():
        for _ in range(2 * MIN_FRAMES_EACH + 3):
            trial(frame)
    assert decided == [n] and trial.chosen == n
    assert {frozenset(a) for t, a in seen if t == n - 1} == {plan.model_cores(n - 1)}
    assert {frozenset(a) for t, a in seen if t == n} == {CORES}  # unpinned again, before and after the decision
    assert os.sched_getaffinity(0) == CORES


@needs_two_cores
def test_a_running_reader_moves_to_new_cores(tmp_path):
    video = make_video(tmp_path / "v.mp4", 40, (160, 90))
    reader = FrameReader(video, queue_size=1, cores={max(CORES)})
    try:
        frames = iter(reader)
        next(frames)  # the thread runs, blocked on its full queue
        assert os.sched_getaffinity(reader._thread.native_id) == {max(CORES)}
        reader.pin(CORES)
        assert os.sched_getaffinity(reader._thread.native_id) == CORES
    finally:
        reader.close()
