"""Frame -> lanes, for one deployed model: the per-frame object every video or frame loop calls
(:mod:`runtime.infer_video`, :mod:`runtime.contact_sheet`, ``benchmarks/video_loop.py``), torch-free.

A :class:`FramePredictor` maps an (H, W, 3) uint8 frame of any size onto the network input through
its :class:`runtime.frame_policy.FramePolicy` (one warp, then normalisation), runs the backend,
decodes lanes with the sidecar's parameters and maps them back into frame pixels; for a marking
model it returns the class map instead. :func:`render` draws what it returned onto the frame.
"""
from __future__ import annotations

import numpy as np

from runtime.affinity import pin_current_thread
from runtime.backends import Backend, probabilities
from runtime.class_map import ClassOverlay, class_map
from runtime.decode import DecodedLane, LaneDecoder
from runtime.draw import draw_hud, draw_lanes
from runtime.frame_policy import FramePolicy
from runtime.latency import Stopwatch

Overlay = list[DecodedLane] | ClassOverlay
"""What the writer draws on a frame: lanes in frame pixels, or a marking model's class map."""


class FramePredictor:
    """Frame -> lanes: frame policy, preprocessing, backend, probabilities + decoding, mapping back
    (a marking model: frame -> its class map, no lanes)."""

    def __init__(self, backend: Backend, policy: FramePolicy, cores: frozenset[int] | None = None) -> None:
        self.backend = backend
        self.policy = policy
        self.cores = cores  # the model thread's CPU cores (runtime.affinity; None: not pinned)
        self.pre = backend.sidecar.pre
        self.table = backend.sidecar.table
        self.decoder = LaneDecoder(self.pre, backend.sidecar.decode_params) if self.table.existence else None
        self.batch = np.empty((1, 3, self.pre.net_height, self.pre.net_width), dtype=np.float32)

    def preprocess(self, image: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """(H, W, 3) uint8 frame -> the (1, 3, h, w) float32 network input: one warp, then normalisation
        (into ``out``, else a new array: the reader thread prepares frames ahead with it)."""
        if out is None:
            out = np.empty_like(self.batch)
        self.pre.normalize(self.policy.to_net(image), out=out[0])
        return out

    def postprocess(self, outputs: dict[str, np.ndarray]) -> tuple[list[DecodedLane], Overlay]:
        """One image's outputs -> (lanes in source pixels, what the writer draws): the lanes in frame
        pixels, or for a marking model no lanes and its class map (argmax at the network size)."""
        seg, exist = probabilities(outputs)
        if self.decoder is None:
            return [], ClassOverlay(class_map(seg[0]), self.policy, self.table)
        lanes = self.decoder(seg[0], exist[0])
        return lanes, [DecodedLane(lane.lane_id, self.policy.points_to_frame(lane.points)) for lane in lanes]

    def __call__(self, image: np.ndarray, prepared: np.ndarray | None = None, prepare_ms: float = 0.0
                 ) -> tuple[list[DecodedLane], Overlay, dict[str, float]]:
        """(H, W, 3) uint8 frame -> (lanes in source pixels, the frame's overlay (:meth:`postprocess`),
        times in ms). ``prepared``: its network input made ahead (by the reader thread, in ``prepare_ms``)."""
        if prepared is None:
            with Stopwatch() as t_pre:
                prepared = self.preprocess(image, self.batch)
            prepare_ms = t_pre.ms
        pin_current_thread(self.cores)  # a system call only when the cores change (a thread trial switches pipelines)
        with Stopwatch() as t_inf:
            outputs = self.backend.infer(prepared)
        device_ms = self.backend.last_device_times.get("compute_ms")
        with Stopwatch() as t_post:
            lanes, in_frame = self.postprocess(outputs)
        times = {"preprocess": prepare_ms, "infer_host": t_inf.ms}
        if device_ms is not None:
            times["infer_device"] = float(device_ms)
        times["postprocess"] = t_post.ms
        times["total"] = prepare_ms + t_inf.ms + t_post.ms
        return lanes, in_frame, times


def render(item: tuple[np.ndarray, Overlay, list[str]]) -> np.ndarray:
    """Writer-thread rendering of one queued (frame, overlay: lanes in frame pixels or a class map, HUD lines)."""
    frame, overlay, hud = item
    if isinstance(overlay, ClassOverlay):
        overlay.draw(frame)
    else:
        draw_lanes(frame, overlay)
    return draw_hud(frame, hud)
