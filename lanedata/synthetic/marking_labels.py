"""Which ApolloScape class each painted element of a synthetic scene is, and how its label is drawn.

The renderer paints lane lines, arrows, words, diamonds, speed-reduction bars, zebra crossings and
stop lines; with ``classes=True`` it also draws each into a class layer of ApolloScape train IDs
(:mod:`lanedata.apolloscape.labels`'s table), keeps only what shows in the picture (paint alpha after wear
at least ``VISIBLE_ALPHA``, not behind a vehicle, roadside object or the hood) and warps it through
the lens by nearest neighbour.

Choices (the table's names: ``s`` solid, ``b`` broken, ``ds`` double solid; ``w``/``y`` colour):
a solid line is ``s_<c>_d`` (dividing), a dashed line ``b_<c>_g`` (guiding), a double yellow
``ds_y_dn``; arrows by direction (``a_w_t``, ``a_w_l``, ``a_w_r``, ``a_w_tl``, ``a_w_tr``,
``a_w_lr``); words are ``om_n_n`` (other marking); diamonds ``d_wy_za``; transverse bars
``b_n_sr`` (speed reduction); zebra ``c_wy_z``; stop lines ``s_w_s``.
"""
from __future__ import annotations

import cv2
import numpy as np

from runtime.marking_classes import CLASS_NAMES
from lanedata.synthetic.primitives import ONE, SHIFT
from lanedata.synthetic.scene import YELLOW, Marking

VISIBLE_ALPHA = 48.0  # paint alpha (0..255, after wear) below which a pixel is not labelled: too faint to see

DECAL_CLASSES = {
    "straight": "a_w_t", "left": "a_w_l", "right": "a_w_r", "straight_left": "a_w_tl", "straight_right": "a_w_tr",
    "left_right": "a_w_lr", "text": "om_n_n", "diamond": "d_wy_za", "reduction": "b_n_sr",
}
ZEBRA = "c_wy_z"
STOP_LINE = "s_w_s"


def train_id(name: str) -> int:
    """The train ID of a class of the ApolloScape table."""
    return CLASS_NAMES.index(name)


def line_class(m: Marking) -> str:
    """The class of a longitudinal line by colour, double and dashed."""
    c = "y" if m.color == YELLOW else "w"
    if m.double:
        return f"ds_{c}_dn"
    return f"b_{c}_g" if m.dashed else f"s_{c}_d"


def fill_id(canvas: np.ndarray, polygon: np.ndarray, value: int) -> None:
    """Fill an image-space polygon ((N, 2) float pixels) with a class ID, no anti-aliasing (IDs never blend)."""
    pts = np.rint(np.clip(polygon, -1e5, 1e5) * ONE).astype(np.int32).reshape(-1, 1, 2)
    cv2.fillPoly(canvas, [pts], int(value), lineType=cv2.LINE_8, shift=SHIFT)


def keep_visible(classes: np.ndarray, alpha: np.ndarray) -> None:
    """Clear (to 0, void) the labels where the paint's alpha ((h, w) float, 0..255) is below ``VISIBLE_ALPHA``."""
    classes[alpha < VISIBLE_ALPHA] = 0


def clear_changed(classes: np.ndarray, before: np.ndarray, after: np.ndarray) -> None:
    """Clear the labels where something was drawn over the road: pixels of ``after`` that differ from ``before``."""
    changed = (before != after).any(axis=2) if after.ndim == 3 else before != after
    classes[changed] = 0
