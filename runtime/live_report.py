"""The ``live`` block of a video report: what a live source (or a file paced at its own rate) did.

- ``frames_read`` (all the reader took from the source), ``frames_before_first`` (read before the
  model took its first frame: while it loaded), ``frames_processed``, ``frames_dropped`` (between
  the first and the last processed frame, those never given to the model: a newer frame replaced
  them in the reader's one-slot mailbox) and ``dropped_share`` (of the frames in that span);
- ``fps_nominal`` (what the source announces; None when it does not) and ``fps_measured`` (frames
  read over the span of their arrivals);
- ``capture_to_lanes``: statistics (ms) of the time from a frame's capture to its lanes in frame
  pixels. *Capture* is when the frame reached this process, decoded (a camera or stream: transport
  and decoding before that are not seen), or, for a paced file, when it was due (so a reader
  falling behind counts);
- ``source_lag`` (files and streams: sources whose frames carry timestamps; cameras and GStreamer
  pipelines: None): statistics (ms) of each frame's arrival behind the source's own clock,
  relative to the least-late timed frame; ``source_lag_growth_ms`` the median of the
  last third of the timed frames minus that of the first third. A reader that keeps up holds it
  near 0; a queue growing in front of the reader (a source faster than decoding) shows as growth.

Each timed record gets its ``source_lag`` (ms) too, where the source has timestamps.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from runtime.latency import summarize
from runtime.video_io import FrameReader


def add_source_lag(records: list[dict[str, float]]) -> None:
    """Each record with ``arrival`` and ``pts`` gets ``source_lag`` = (arrival - pts) minus the least
    such difference over the records (ms)."""
    timed = [r for r in records if "arrival" in r and "pts" in r]
    if not timed:
        return
    base = min(r["arrival"] - r["pts"] for r in timed)
    for r in timed:
        r["source_lag"] = r["arrival"] - r["pts"] - base


def lag_growth(records: list[dict[str, float]]) -> float | None:
    """Median ``source_lag`` of the last third of the records minus that of the first third (ms);
    None with fewer than 6 records."""
    lags = [r["source_lag"] for r in records if "source_lag" in r]
    if len(lags) < 6:
        return None
    third = len(lags) // 3
    return float(np.median(lags[-third:]) - np.median(lags[:third]))


def live_summary(reader: FrameReader, indices: list[int], records: list[dict[str, float]], stall_timeout_s: float | None
                 ) -> dict[str, Any]:
    """The report's ``live`` block (see the module docstring) from the source indices of the
    processed frames; adds ``source_lag`` to ``records``."""
    add_source_lag(records)
    read, processed = reader.frames_read, len(indices)
    offered = indices[-1] - indices[0] + 1 if indices else 0
    dropped = offered - processed
    span = (reader.last_arrival_s or 0.0) - (reader.first_arrival_s or 0.0)
    capture = [r["capture_to_lanes"] for r in records if "capture_to_lanes" in r]
    lags = [r["source_lag"] for r in records if "source_lag" in r]
    return {
        "source": reader.source.kind,
        "paced": reader.pace,
        "frames_read": read,
        "frames_before_first": indices[0] if indices else read,
        "frames_processed": processed,
        "frames_dropped": dropped,
        "dropped_share": dropped / offered if offered else None,
        "fps_nominal": reader.info.fps or None,
        "fps_measured": (read - 1) / span if read > 1 and span > 0 else None,
        "capture_to_lanes": summarize(capture) if capture else None,
        "source_lag": summarize(lags) if lags else None,
        "source_lag_growth_ms": lag_growth(records),
        "stall_timeout_s": stall_timeout_s,
    }
