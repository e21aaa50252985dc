"""Another camera's view of the same road, as one homography: the geometry behind training's
camera augmentation (``training/data/augment.py``) and the camera-shift report
(:mod:`runtime.camera_shift`), torch-free.
"""
from __future__ import annotations

import cv2
import numpy as np


def camera_homography(pitch: float = 0.0, yaw: float = 0.0, height: float = 1.0, focal: float = 1.0,
                      f: float = 1000.0, cx: float = 819.5, cy: float = 294.5) -> np.ndarray:
    """(3, 3) homography, full-size pixels -> pixels of the same road seen by another camera:
    turned by ``pitch`` (degrees, > 0 tilted up: the horizon moves down) and ``yaw`` (degrees, > 0:
    the vanishing point moves right), raised by the factor ``height``, with its focal length scaled
    by ``focal``. The camera is ``K = [[f, 0, cx], [0, f, cy], [0, 0, 1]]`` with its horizon on row
    ``cy`` (a level camera), and

        H = F(focal) . G(height) . K R(yaw) R(pitch) K^-1

    The rotation part is exact for every scene point; a focal change scales about ``(cx, cy)``
    (exact); a height change is exact for the road plane (where the lanes are): a ground point's
    column is ``cx + f X / Z`` whatever the height and its row ``cy + f h / Z``, so raising the
    camera by ``height`` scales rows about the horizon, ``v' = cy + height (v - cy)`` (objects above
    the road are only approximately right). Where ``f``, ``cx``, ``cy`` are not the image's own
    (a real frame's), the result is still the view of a plausible camera: a slightly different
    rotation, height and focal length."""
    a, b = np.radians(pitch), np.radians(yaw)
    rx = np.array([[1, 0, 0], [0, np.cos(a), np.sin(a)], [0, -np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    k = np.array([[f, 0, cx], [0, f, cy], [0, 0, 1.0]])
    about = lambda sx, sy: np.array([[sx, 0, cx * (1 - sx)], [0, sy, cy * (1 - sy)], [0, 0, 1.0]])  # noqa: E731
    return about(focal, focal) @ about(1.0, height) @ k @ ry @ rx @ np.linalg.inv(k)


def warp_points(points: np.ndarray, homography: np.ndarray) -> np.ndarray:
    """(N, 2) x, y pixels (e.g. a ``.lines.txt`` lane) -> (N, 2) float64 through ``homography``
    (pixel-centre coordinates, as :func:`scaled_crop` warps the image)."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    out = cv2.perspectiveTransform(pts[None], homography)[0] if len(pts) else pts
    return out.astype(np.float64)
