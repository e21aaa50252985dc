"""Overlay for the output video: lanes in a fixed colour per CULane lane ID (lane models), class
maps blended in their table's colours with a legend (marking models), and a small HUD.

Lane IDs follow CULane (2 and 3 bound the ego lane, 1 and 4 the lanes beside it); colours are BGR.
Lanes are antialiased polylines drawn with sub-pixel precision, their thickness scaled with the
frame width (``frame_w / 240`` px, at least 2: 4 px at 960, 7 px at 1640). Everything draws in
place on the (H, W, 3) uint8 BGR frame and returns it.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from runtime.classes import LANE_COLORS, ClassTable
from runtime.culane import CULANE_WIDTH
from runtime.decode import DecodedLane

OTHER_COLOR = (200, 200, 200)
_SHIFT = 4  # fractional bits for sub-pixel drawing
_FONT = cv2.FONT_HERSHEY_SIMPLEX


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
    box = _TextBox.fit(frame.shape[1], lines)
    _darken(frame[: box.height(len(lines)), : box.text_w + 2 * box.pad])
    for i, text in enumerate(lines):
        box.put(frame, text, box.pad, (i + 1) * box.line_h)
    return frame


@dataclass(frozen=True)
class _TextBox:
    """Text layout of the HUD and the legend, scaled with the frame width: font scale, stroke,
    padding, line height and the widest text (px)."""

    scale: float
    thick: int
    pad: int
    line_h: int
    text_w: int

    @classmethod
    def fit(cls, frame_w: int, texts: Sequence[str]) -> "_TextBox":
        scale = max(0.35, frame_w / CULANE_WIDTH * 0.8)
        thick = max(1, int(round(scale * 1.5)))
        sizes = [cv2.getTextSize(text, _FONT, scale, thick)[0] for text in texts]
        pad = max(3, int(6 * scale))
        return cls(scale, thick, pad, max(size[1] for size in sizes) + pad, max(size[0] for size in sizes))

    def height(self, lines: int) -> int:
        return self.line_h * lines + self.pad

    def put(self, frame: np.ndarray, text: str, x: int, y: int) -> None:
        cv2.putText(frame, text, (x, y), _FONT, self.scale, (255, 255, 255), self.thick, cv2.LINE_AA)


def _darken(roi: np.ndarray) -> None:
    """Darken a region of a frame to 40 %, in place (a box behind text)."""
    roi[:] = (roi.astype(np.uint16) * 2 // 5).astype(np.uint8)


def hud_lines(infer_ms: float, total_ms: float, fps: float, backend: str, device: str, precision: str) -> list[str]:
    """The HUD's text: latency (ms), loop FPS, backend/device and precision."""
    rate = f"{fps:.1f} FPS" if fps > 0 else "-- FPS"
    return [f"infer {infer_ms:.1f} ms  total {total_ms:.1f} ms", rate, f"{backend}/{device} {precision}"]


CLASS_ALPHA = 0.55  # weight of a class colour over the frame


def blend_classes(frame: np.ndarray, classes: np.ndarray, colors: Sequence[tuple[int, int, int]],
                  alpha: float = CLASS_ALPHA) -> np.ndarray:
    """Blend every pixel of class != 0 with its class colour (BGR, ``colors[c]``); ``classes``
    (H, W) integer map of the frame's size."""
    if classes.shape != frame.shape[:2]:
        raise ValueError(f"class map {classes.shape} and frame {frame.shape[:2]} differ in size")
    mask = classes != 0
    if mask.any():
        lut = np.asarray(colors, np.float32)
        frame[mask] = (frame[mask] * (1.0 - alpha) + lut[classes[mask]] * alpha + 0.5).astype(np.uint8)
    return frame


def present_classes(classes: np.ndarray, num_classes: int) -> list[int]:
    """The classes other than 0 that occur in a class map, in ID order."""
    counts = np.bincount(classes.ravel(), minlength=num_classes)
    return [int(c) for c in np.flatnonzero(counts) if c != 0]


def draw_legend(frame: np.ndarray, entries: Sequence[tuple[str, tuple[int, int, int]]]) -> np.ndarray:
    """A colour swatch (BGR) and a name per entry, top-right on a darkened box (text sized like the HUD's)."""
    if not entries:
        return frame
    box = _TextBox.fit(frame.shape[1], [name for name, _ in entries])
    swatch = box.line_h - box.pad
    x0 = max(0, frame.shape[1] - (box.text_w + swatch + 3 * box.pad))
    _darken(frame[: box.height(len(entries)), x0:])
    for i, (name, color) in enumerate(entries):
        bottom = (i + 1) * box.line_h
        cv2.rectangle(frame, (x0 + box.pad, bottom - swatch), (x0 + box.pad + swatch, bottom), tuple(int(v) for v in color), -1)
        box.put(frame, name, x0 + 2 * box.pad + swatch, bottom)
    return frame


def draw_classes(frame: np.ndarray, classes: np.ndarray, table: ClassTable, legend: bool = True) -> np.ndarray:
    """A marking model's class map (H, W) on its (H, W, 3) frame: classes != 0 blended in the
    table's colours and, with ``legend``, the classes present named top-right."""
    blend_classes(frame, classes, table.colors)
    if legend:
        draw_legend(frame, class_legend(classes, table))
    return frame


def class_legend(classes: np.ndarray, table: ClassTable) -> list[tuple[str, tuple[int, int, int]]]:
    """(name, BGR colour) of each class other than 0 present in ``classes``."""
    return [(table.names[c], table.colors[c]) for c in present_classes(classes, table.num_classes)]
