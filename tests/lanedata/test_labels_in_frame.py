"""Every generator's labels stay where its benchmark's own labels are, so that the official tools
read them (issue #34: LLAMAS markers on row 717 of a 717-row frame stopped the official spline tools).

- LLAMAS (:mod:`lanedata.llamas.synthetic`): every pixel point in columns 0..1275, rows 0..716, as in
  the published sample (x 3..1275, y 384..713; ``spline_creator`` indexes rows 0..716 by it).
- CULane (:mod:`lanedata.synthetic`): CULane's own convention, not the frame: its ``.lines.txt``
  sample rows 590, 580, ... (590 is one past the last row of a 590-row frame) and let x run some
  way past the sides. In the 190 real annotations of ``culane_real_dev`` (read for the format only)
  351 points lie on row 590 and x spans -43.5 .. 1694.3; the official evaluator draws them clipped.
- ApolloScape (:mod:`lanedata.apolloscape.synthetic`): a label is a colour PNG of the image's size,
  every pixel a colour of the table.
- TuSimple: the project has no TuSimple-style generator (``lanedata.tusimple`` converts and
  scores the real set), so there is nothing to check.
"""
from __future__ import annotations

import json
import warnings

import cv2
import numpy as np

from lanedata.apolloscape import labels as apolloscape
from lanedata.apolloscape.synthetic import generate as generate_apolloscape
from lanedata.llamas import metric as llamas
from lanedata.llamas.synthetic import generate as generate_llamas
from lanedata.llamas.synthetic import label_content, llamas_scene
from lanedata.synthetic.dataset import generate_dataset
from lanedata.synthetic.render import ANNOTATION_MARGIN, ANNOTATION_STEP, annotate
from lanedata.synthetic.scene import sample_scene
from runtime.culane import CULANE_HEIGHT, CULANE_WIDTH, read_image, read_list
from runtime.errors import DataWarning
from runtime.lines import read_lines_file
from runtime.marking_classes import LABELS


def llamas_pixels(label: dict) -> np.ndarray:
    """(N, 2) int x, y of every marker end of a LLAMAS label."""
    return np.array([(int(m[e]["x"]), int(m[e]["y"])) for lane in label["lanes"] for m in lane["markers"]
                     for e in ("pixel_start", "pixel_end")])


def test_llamas_markers_lie_in_the_frame_and_reach_its_edges(tmp_path):
    generate_llamas(tmp_path, 1, 1, seed=4, workers=1, progress=False)
    files = sorted((tmp_path / "labels").rglob("*.json"))
    labels = [json.loads(p.read_text()) for p in files]
    labels += [label_content(llamas_scene(np.random.default_rng(seed)), str(seed)) for seed in range(30)]
    starts = []
    for label in labels:
        xy = llamas_pixels(label)
        assert xy[:, 0].min() >= 0 and xy[:, 0].max() <= llamas.IMAGE_WIDTH - 1, label["image_name"]
        assert xy[:, 1].min() >= 0 and xy[:, 1].max() <= llamas.IMAGE_HEIGHT - 1, label["image_name"]
        starts += [(int(lane["markers"][0]["pixel_start"]["x"]), int(lane["markers"][0]["pixel_start"]["y"]))
                   for lane in label["lanes"]]
    # cut at the frame, not short of it: lines still start on the bottom row or at a side edge
    at_edge = [y == llamas.IMAGE_HEIGHT - 1 or x in (0, llamas.IMAGE_WIDTH - 1) for x, y in starts]
    assert sum(at_edge) > 0.6 * len(starts)
    assert any(y == llamas.IMAGE_HEIGHT - 1 for x, y in starts) and any(x == 0 for x, y in starts)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)  # nothing the official spline tools would stop on
        for path in files:
            llamas.read_label(path)


def test_culane_lines_follow_culanes_own_convention(tmp_path):
    generate_dataset(tmp_path, 3, 0, 0, seed=4, workers=1, progress=False)
    lanes = [lane for path in sorted(tmp_path.rglob("*.lines.txt")) for lane in read_lines_file(path)]
    for seed in range(30):  # and the annotation of more scenes, without rendering them
        lanes += annotate(sample_scene(np.random.default_rng(seed), "normal")).values()
    assert len(lanes) > 60
    bottom = 0
    for lane in lanes:
        x, y = lane[:, 0], lane[:, 1]
        assert np.all(y % ANNOTATION_STEP == 0) and y.max() <= CULANE_HEIGHT and np.all(np.diff(y) < 0)  # rows 590, 580, ... bottom first
        assert x.min() >= -ANNOTATION_MARGIN and x.max() <= CULANE_WIDTH + ANNOTATION_MARGIN
        assert np.count_nonzero((x >= 0) & (x < CULANE_WIDTH) & (y < CULANE_HEIGHT)) >= 2
        bottom += y[0] == CULANE_HEIGHT
    assert bottom > 0  # row 590 itself occurs, as in CULane's annotations


def test_apolloscape_labels_are_the_images_size_in_the_tables_colours(tmp_path):
    generate_apolloscape(tmp_path, 2, 0, 1, seed=4, workers=1, progress=False)
    samples = [s for split in ("train", "test") for s in read_list(tmp_path / "lists" / f"{split}.txt").samples]
    assert len(samples) == 3
    for s in samples:
        image = read_image(tmp_path / s.image)
        raw = cv2.imread(str(tmp_path / s.label), cv2.IMREAD_UNCHANGED)
        assert raw.dtype == np.uint8 and raw.shape == (*image.shape[:2], 3) == (CULANE_HEIGHT, CULANE_WIDTH, 3)
        assert apolloscape.read_label(tmp_path / s.label, expected_shape=image.shape[:2]).shape == image.shape[:2]
        header = (tmp_path / s.label).read_bytes()[:26]  # IHDR: 8-bit truecolour (RGB), as the released labels
        assert header[12:16] == b"IHDR" and (header[24], header[25]) == (8, 2)
        colours = {tuple(int(v) for v in c) for c in np.unique(raw[..., ::-1].reshape(-1, 3), axis=0)}  # OpenCV reads BGR
        assert colours <= {label.color for label in LABELS}, colours - {label.color for label in LABELS}
