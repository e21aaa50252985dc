"""Class tables: what a model's output channels mean, per dataset (torch-free).

A table fixes the number of classes (channel c of ``seg`` = class c; label value c, 255 ignored),
the task, their names and colours (drawing, legends), their mirror partners (horizontal-flip
augmentation) and which classes the dataset's official mIoU averages.

- ``culane`` (task ``lanes``): background + lanes 1..4 by CULane ID, plus a 4-way lane-existence
  head; decoded to lanes, scored by CULane F1. A mirror swaps lanes 1<->4 and 2<->3.
- ``apolloscape`` (task ``markings``): the 36 train IDs of ApolloScape's lane-marking table
  (:mod:`runtime.marking_classes`); no existence head; scored by mIoU over its 18 evaluated classes.
  A mirror swaps the left and right turn arrows (thru-left <-> thru-right, left <-> right); the
  U-turn arrows, text-like and other asymmetric markings have no partner in the table and map to
  themselves, so flip augmentation is off in the ApolloScape configs.

Configs name their table in ``dataset.classes``; sidecars carry it (``classes``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from runtime import marking_classes


LANE_COLORS: dict[int, tuple[int, int, int]] = {
    1: (255, 160, 0),  # left neighbour: blue
    2: (0, 220, 0),  # ego left: green
    3: (0, 200, 255),  # ego right: amber
    4: (255, 0, 200),  # right neighbour: magenta
}
"""B, G, R of CULane's lanes by ID, as drawn everywhere (:mod:`runtime.draw`)."""


@dataclass(frozen=True)
class ClassTable:
    """``names``, ``colors`` (B, G, R) and ``mirror`` (partner of each class) have one entry per class;
    ``evaluated``: the classes an mIoU averages (all for lane tables)."""

    name: str
    task: str
    names: tuple[str, ...]
    colors: tuple[tuple[int, int, int], ...]
    mirror: tuple[int, ...]
    evaluated: tuple[bool, ...]

    @property
    def num_classes(self) -> int:
        return len(self.names)

    @property
    def existence(self) -> bool:
        """Whether models of this table have the lane-existence head (one output per lane class)."""
        return self.task == "lanes"

    @property
    def num_lanes(self) -> int:
        """Existence outputs: the lane classes (all but background) for lanes, 0 for markings."""
        return self.num_classes - 1 if self.existence else 0

    def mirror_lut(self) -> np.ndarray:
        """(256,) uint8 label lookup of a horizontal mirror (255 and unused values unchanged)."""
        lut = np.arange(256, dtype=np.uint8)
        lut[: self.num_classes] = self.mirror
        return lut


def _culane() -> ClassTable:
    return ClassTable("culane", "lanes", ("background", "lane1", "lane2", "lane3", "lane4"),
                      ((0, 0, 0), *(tuple(LANE_COLORS[k]) for k in (1, 2, 3, 4))), (0, 4, 3, 2, 1), (True,) * 5)


def _apolloscape() -> ClassTable:
    names = marking_classes.CLASS_NAMES
    partners = {"a_w_tl": "a_w_tr", "a_w_l": "a_w_r"}
    partners.update({b: a for a, b in partners.items()})
    mirror = tuple(names.index(partners.get(n, n)) for n in names)
    colors = tuple((int(b), int(g), int(r)) for (r, g, b) in marking_classes.PALETTE_RGB)
    return ClassTable("apolloscape", "markings", names, colors, mirror, tuple(bool(e) for e in marking_classes.EVALUATED))


TABLES = {"culane": _culane, "apolloscape": _apolloscape}


def class_table(name: str) -> ClassTable:
    """The table called ``name``; ValueError naming the known ones otherwise."""
    if not isinstance(name, str) or name not in TABLES:
        raise ValueError(f"unknown class table {name!r}; known: {', '.join(TABLES)}")
    return TABLES[name]()
