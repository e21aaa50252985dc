"""Overlay for the output video: lanes in a fixed colour per CULane lane ID, and a small HUD.

Lane IDs follow CULane (2 and 3 bound the ego lane, 1 and 4 the lanes beside it); colours are BGR.
Lanes are antialiased polylines drawn with sub-pixel precision, their thickness scaled with the
frame width (``frame_w / 240`` px, at least 2: 4 px at 960, 7 px at 1640). Everything draws in
place on the (H, W, 3) uint8 BGR frame and returns it.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import cv2
import numpy as np

from runtime.decode import DecodedLane

LANE_COLORS: dict[int, tuple[int, int, int]] = {
    1: (255, 160, 0),  # left neighbour: blue
    2: (0, 220, 0),  # ego left: green
    3: (0, 200, 255),  # ego right: amber
    4: (255, 0, 200),  # right neighbour: magenta
}
OTHER_COLOR = (200, 200, 200)
_SHIFT = 4  # fractional bits for sub-pixel drawing


def lane_thickness(frame_w: int) -> int:
    """Polyline thickness (px) for a frame ``frame_w`` pixels wide."""
    return max(2, int(round(frame_w / 240)))


def draw_lanes(frame: np.ndarray, lanes: Iterable[DecodedLane], thickness: int | None = None) -> np.ndarray:
    """Draw each lane's (N, 2) x, y points (frame pixels) as a polyline in its ID's colour."""
    thickness = thickness or lane_thickness(frame.shape[1])
    for lane in lanes:
        pts = np.asarray(lane.points, dtype=np.float64).reshape(-1, 2)
        if len(pts) < 2 or not np.all(np.isfinite(pts)):
            continue
        fixed = np.round(pts * (1 << _SHIFT)).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(frame, [fixed], False, LANE_COLORS.get(lane.lane_id, OTHER_COLOR), thickness, cv2.LINE_AA, _SHIFT)
    return frame


def draw_hud(frame: np.ndarray, lines: Sequence[str]) -> np.ndarray:
    """Write ``lines`` top-left on a darkened box; text size scaled with the frame width."""
    if not lines:
        return frame
    h, w = frame.shape[:2]
    scale = max(0.35, w / 1640 * 0.8)
    thick = max(1, int(round(scale * 1.5)))
    font = cv2.FONT_HERSHEY_SIMPLEX
    sizes = [cv2.getTextSize(text, font, scale, thick)[0] for text in lines]
    pad = max(3, int(6 * scale))
    line_h = max(s[1] for s in sizes) + pad
    box_w = min(w, max(s[0] for s in sizes) + 2 * pad)
    box_h = min(h, line_h * len(lines) + pad)
    roi = frame[:box_h, :box_w]
    roi[:] = (roi.astype(np.uint16) * 2 // 5).astype(np.uint8)  # darken to 40 %
    for i, text in enumerate(lines):
        cv2.putText(frame, text, (pad, (i + 1) * line_h), font, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return frame


def hud_lines(infer_ms: float, total_ms: float, fps: float, backend: str, device: str, precision: str) -> list[str]:
    """The HUD's text: latency (ms), loop FPS, backend/device and precision."""
    rate = f"{fps:.1f} FPS" if fps > 0 else "-- FPS"
    return [f"infer {infer_ms:.1f} ms  total {total_ms:.1f} ms", rate, f"{backend}/{device} {precision}"]
