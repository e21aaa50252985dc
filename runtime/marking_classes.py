"""ApolloScape's lane-marking class table: the 36 classes a deployed marking model predicts (the
``apolloscape`` table of :mod:`runtime.classes`), as data only. Reading labels, the converter and
the official mIoU are in :mod:`lanedata.apolloscape`.

Source: ApolloScapeAuto/dataset-api, ``lane_segmentation/helpers/laneMarkDetection.py`` (final
revision of 2018-08-28). 38 entries: ``void`` (background, id 0) and 35 marking types have train
IDs 0..35 (the paper's "36 classes"); ``noise`` (249) and ``ignored`` (255) have train ID 255,
which the loss and the evaluation ignore.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Label(NamedTuple):
    """One row of the official table; ``color`` is (R, G, B)."""

    name: str
    id: int
    train_id: int
    category: str
    ignore_in_eval: bool
    color: tuple[int, int, int]


LABELS: tuple[Label, ...] = (
    Label("void", 0, 0, "void", False, (0, 0, 0)),
    Label("s_w_d", 200, 1, "dividing", False, (70, 130, 180)),
    Label("s_y_d", 204, 2, "dividing", False, (220, 20, 60)),
    Label("ds_w_dn", 213, 3, "dividing", True, (128, 0, 128)),
    Label("ds_y_dn", 209, 4, "dividing", False, (255, 0, 0)),
    Label("sb_w_do", 206, 5, "dividing", True, (0, 0, 60)),
    Label("sb_y_do", 207, 6, "dividing", True, (0, 60, 100)),
    Label("b_w_g", 201, 7, "guiding", False, (0, 0, 142)),
    Label("b_y_g", 203, 8, "guiding", False, (119, 11, 32)),
    Label("db_w_g", 211, 9, "guiding", True, (244, 35, 232)),
    Label("db_y_g", 208, 10, "guiding", True, (0, 0, 160)),
    Label("db_w_s", 216, 11, "stopping", True, (153, 153, 153)),
    Label("s_w_s", 217, 12, "stopping", False, (220, 220, 0)),
    Label("ds_w_s", 215, 13, "stopping", True, (250, 170, 30)),
    Label("s_w_c", 218, 14, "chevron", True, (102, 102, 156)),
    Label("s_y_c", 219, 15, "chevron", True, (128, 0, 0)),
    Label("s_w_p", 210, 16, "parking", False, (128, 64, 128)),
    Label("s_n_p", 232, 17, "parking", True, (238, 232, 170)),
    Label("c_wy_z", 214, 18, "zebra", False, (190, 153, 153)),
    Label("a_w_u", 202, 19, "thru/turn", True, (0, 0, 230)),
    Label("a_w_t", 220, 20, "thru/turn", False, (128, 128, 0)),
    Label("a_w_tl", 221, 21, "thru/turn", False, (128, 78, 160)),
    Label("a_w_tr", 222, 22, "thru/turn", False, (150, 100, 100)),
    Label("a_w_tlr", 231, 23, "thru/turn", True, (255, 165, 0)),
    Label("a_w_l", 224, 24, "thru/turn", False, (180, 165, 180)),
    Label("a_w_r", 225, 25, "thru/turn", False, (107, 142, 35)),
    Label("a_w_lr", 226, 26, "thru/turn", False, (201, 255, 229)),
    Label("a_n_lu", 230, 27, "thru/turn", True, (0, 191, 255)),
    Label("a_w_tu", 228, 28, "thru/turn", True, (51, 255, 51)),
    Label("a_w_m", 229, 29, "thru/turn", True, (250, 128, 114)),
    Label("a_y_t", 233, 30, "thru/turn", True, (127, 255, 0)),
    Label("b_n_sr", 205, 31, "reduction", False, (255, 128, 0)),
    Label("d_wy_za", 212, 32, "attention", True, (0, 255, 255)),
    Label("r_wy_np", 227, 33, "no parking", False, (178, 132, 190)),
    Label("vom_wy_n", 223, 34, "others", True, (128, 128, 64)),
    Label("om_n_n", 250, 35, "others", False, (102, 0, 204)),
    Label("noise", 249, 255, "ignored", True, (0, 153, 153)),
    Label("ignored", 255, 255, "ignored", True, (255, 255, 255)),
)

IGNORE = 255
NUM_CLASSES = 36  # train IDs 0..35: the model's outputs
CLASS_NAMES: tuple[str, ...] = tuple(lab.name for lab in LABELS if lab.train_id != IGNORE)
EVALUATED = np.array([not lab.ignore_in_eval for lab in LABELS if lab.train_id != IGNORE])  # (36,) bool: 18 true
TRAIN_TO_ID = np.array([lab.id for lab in LABELS if lab.train_id != IGNORE], np.uint8)  # (36,) regular IDs by train ID
PALETTE_RGB = np.array([lab.color for lab in LABELS if lab.train_id != IGNORE], np.uint8)  # (36, 3) colours by train ID
