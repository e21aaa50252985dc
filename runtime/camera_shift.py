"""Camera shifts: a root's frames and annotations re-projected as other mounts would see them, to
measure how a model carries to cameras it was not trained on without new data, torch-free.

Each :class:`Shift` is one homography (:func:`runtime.camera_geometry.camera_homography`) about a
nominal level camera centred on the frame, focal length :data:`NOMINAL_FOCAL` x width / 1640 (a
78-degree horizontal field of view, the middle of the generator's 45-110), or a cut of the frame's
bottom rows (a camera that does not see the hood). The image is warped (bilinear, black where the
new view sees beyond the old frame), the ``.lines.txt`` points go through the same homography and
keep the part inside the frame (a lane of fewer than 2 points is dropped), exactly as training's
camera augmentation moves labels. Shifted roots are scored like any root (:mod:`runtime.scoring`).

The nominal camera is a convention, not a measurement of the frames: where a frame's real focal
length or horizon differ, the shift is a slightly different (still physical) change of camera.
A model of one camera collapses under these shifts; a camera-agnostic one degrades gently.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from runtime.atomic import atomic_write_bytes
from runtime.camera_geometry import camera_homography, warp_points
from runtime.culane import CulaneDataset, Sample
from runtime.lines import write_lines_file

NOMINAL_FOCAL = 1000.0
"""Focal length (pixels) of the nominal camera on a 1640-pixel-wide frame; scaled with the width."""


@dataclass(frozen=True)
class Shift:
    """Another mount: pitch (degrees, > 0 up), height and focal-length factors, and the share of the
    frame's bottom rows cut away."""

    name: str
    pitch: float = 0.0
    height: float = 1.0
    focal: float = 1.0
    cut_bottom: float = 0.0

    @property
    def slug(self) -> str:
        """A folder name for the shifted root."""
        return "".join(c if c.isalnum() else "_" for c in self.name).strip("_")


SHIFTS: tuple[Shift, ...] = (
    Shift("pitch +4 deg", pitch=4.0),
    Shift("pitch -4 deg", pitch=-4.0),
    Shift("height x0.7", height=0.7),
    Shift("height x1.4", height=1.4),
    Shift("wider view (focal x0.7)", focal=0.7),
    Shift("narrower view (focal x1.4)", focal=1.4),
    Shift("no hood (bottom 20 % cut)", cut_bottom=0.2),
)
"""The report's shifts (issue "Any camera"): pitch +-4 deg, height x0.7 / x1.4, a wider and a
narrower field of view, no hood."""


def shift_frame(image: np.ndarray, lanes: list[np.ndarray], shift: Shift) -> tuple[np.ndarray, list[np.ndarray]]:
    """(H, W, 3) uint8 frame and its lanes ((N, 2) x, y) -> the frame and lanes seen by the shifted
    camera (same size, or ``cut_bottom`` of the rows fewer)."""
    h, w = image.shape[:2]
    homography = camera_homography(shift.pitch, 0.0, shift.height, shift.focal, f=NOMINAL_FOCAL * w / 1640.0,
                                   cx=(w - 1) / 2, cy=(h - 1) / 2)
    out_h = h - int(round(shift.cut_bottom * h))
    warped = cv2.warpPerspective(image, homography, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                 borderValue=(0, 0, 0))[:out_h]
    moved = []
    for lane in lanes:
        pts = warp_points(lane, homography)
        pts = pts[(pts[:, 0] >= 0) & (pts[:, 0] <= w - 1) & (pts[:, 1] >= 0) & (pts[:, 1] <= out_h - 1)]
        if len(pts) >= 2:
            moved.append(pts)
    return np.ascontiguousarray(warped), moved


def write_shifted_roots(data_root: str | os.PathLike[str], samples: list[Sample], shifts: tuple[Shift, ...],
                        out: str | os.PathLike[str]) -> dict[Shift, Path]:
    """The samples' frames and annotations under each shift, as CULane-layout roots ``out/<slug>``
    (same relative paths, ``list/shifted.txt``), each frame read once; returns each root's list."""
    data, out = CulaneDataset(data_root), Path(out)
    for sample in samples:
        image, lanes = data.read_image(sample), data.read_lanes(sample)
        for shift in shifts:
            moved_image, moved_lanes = shift_frame(image, lanes, shift)
            ok, jpeg = cv2.imencode(".jpg", moved_image, [cv2.IMWRITE_JPEG_QUALITY, 95])
            if not ok:
                raise RuntimeError(f"cannot encode the shifted {sample.image}")
            target = out / shift.slug / sample.image
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(target, jpeg.tobytes(), durable=False)
            write_lines_file(out / shift.slug / sample.lines_name, moved_lanes, durable=False)
    listings = {}
    for shift in shifts:
        listing = out / shift.slug / "list" / "shifted.txt"
        listing.parent.mkdir(parents=True, exist_ok=True)
        listing.write_text("".join(f"/{s.image}\n" for s in samples))
        listings[shift] = listing
    return listings


def shift_table(record: dict[str, Any]) -> str:
    """Markdown table of a :mod:`runtime.evaluate_shifts` report: rows unshifted then each shift;
    columns the F1 % of each model (and its ratio to the unshifted F1)."""
    labels = list(record["models"])
    lines = ["| camera | " + " | ".join(f"{label} F1 % (x unshifted)" for label in labels) + " |",
             "|---|" + "---:|" * len(labels)]
    for name in ["unshifted", *record["shifts"]]:
        cells = []
        for label in labels:
            entry = record["models"][label][name]
            f1, ratio = entry["f1"], entry.get("ratio")
            cells.append("-" if f1 is None else f"{100 * f1:.1f}" + ("" if ratio is None or name == "unshifted" else f" ({ratio:.2f})"))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
