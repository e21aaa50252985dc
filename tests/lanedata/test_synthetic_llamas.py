"""The synthetic LLAMAS-style set: labels in the official schema that match the painted lines (read
back by lanedata.llamas.metric, projected through their own matrix), the converter's IntRA-KD val / test
split of valid, determinism and resume."""
import hashlib
import json
import re

import cv2
import numpy as np
import pytest

from lanedata.llamas import metric as llamas
from runtime.culane import read_list
from lanedata.llamas.convert import convert, main as convert_main
from lanedata.llamas.synthetic import (SOLID_PIECE, generate, label_content, lane_ids, llamas_scene, main,
                                            marker_intervals)
from lanedata.synthetic.render import render_scene
from lanedata.synthetic.scene import Light


def daylight_scene(seed: int):
    """A LLAMAS-camera scene in plain daylight with no vehicles or shadows, every line painted and unworn."""
    scene = llamas_scene(np.random.default_rng(seed))
    scene.vehicles, scene.shadows, scene.light, scene.roadside = [], [], Light(), None
    for m in scene.markings:
        m.painted, m.wear = True, 0.0
    return scene


def test_markers_are_the_painted_lines_in_the_official_schema(tmp_path):
    scene = daylight_scene(5)
    scene.markings[0].dashed, scene.markings[1].dashed = False, True
    content = label_content(scene, "1419283521_0000000000")
    path = tmp_path / "labels" / "valid" / "rec" / "1419283521_0000000000.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(content))
    assert not any(isinstance(v, str) for row in content["projection_matrix"] for v in row)  # numbers, as the real files
    label = llamas.read_label(path)
    k = label.projection
    assert k.shape == (3, 3) and k[0, 0] == pytest.approx(scene.camera.focal, abs=1e-5) and k[1, 2] == pytest.approx(scene.camera.horizon, abs=1e-5)
    ids = lane_ids(scene.markings)
    assert {lane["lane_id"] for lane in content["lanes"]} == set(ids.values()) == {lane.lane_id for lane in label.lanes}
    for position, lane_id in ids.items():  # left of the camera l0, l1, ...; right r0, r1, ...
        assert (scene.markings[position].index < 0) == lane_id.startswith("l")
    for lane in content["lanes"]:
        for marker in lane["markers"]:
            for end in ("start", "end"):  # the stored pixel is the stored world point through the stored matrix
                w = np.array([float(marker[f"world_{end}"][a]) for a in "xyz"])
                p = k @ w
                assert (int(marker[f"pixel_{end}"]["x"]), int(marker[f"pixel_{end}"]["y"])) == (round(p[0] / p[2]), round(p[1] / p[2]))
            assert int(marker["pixel_start"]["y"]) >= int(marker["pixel_end"]["y"])  # the near end first
            assert float(marker["world_start"]["y"]) == pytest.approx(scene.camera.height, abs=1e-5)
    solid, dashed = scene.markings[0], scene.markings[1]
    pieces = marker_intervals(solid, scene.camera.nearest_visible)
    assert max(b - a for a, b in pieces) <= SOLID_PIECE + 1e-9 and all(q[0] == p[1] for p, q in zip(pieces, pieces[1:]))
    dashes = marker_intervals(dashed, scene.camera.nearest_visible)
    assert len(dashes) >= 2 and all(b - a <= dashed.dash_length + 1e-9 for a, b in dashes)
    scene.markings[1].painted = False  # unpainted: still labelled (a map's label), so no line is renumbered
    path.write_text(json.dumps(label_content(scene, "x")))
    assert sorted(lane.lane_id for lane in llamas.read_label(path).lanes) == sorted(ids.values())


# A published LLAMAS label, abridged by hand (one lane of the 8, two of its markers, in the file's key
# order): karstenBehrendt/benchmarks_website @ ecc7698,
# benchmarks/benchmarks/static/llamas/images/pipeline/1419287247_0942030000.json. The marker points are
# strings; the projection matrix is JSON numbers (label_file_scripts.read_json casts the points with
# int() / float() and hands the matrix to numpy as it is).
PUBLISHED = {
    "image_name": "1419287247_0942030000",
    "projection_matrix": [[1381.9564208984375, 0, 648.1651000976562], [0, 1394.720703125, 369.2019348144531], [0, 0, 1]],
    "lanes": [{"lane_id": "l0", "markers": [
        {"lane_marker_id": "270750800360742864212582263857266874570",
         "world_start": {"x": "-1.735090291855153399", "y": "1.146415617782619023", "z": "4.648921570726084695"},
         "pixel_start": {"x": "132", "y": "713"},
         "world_end": {"x": "-1.774585126229794696", "y": "1.13736583199352026", "z": "7.684970729504129849"},
         "pixel_end": {"x": "329", "y": "575"}},
        {"lane_marker_id": "270750115349242864323431423857259181053",
         "world_start": {"x": "-1.882324133795918897", "y": "1.108197391964495182", "z": "16.74405278962512966"},
         "pixel_start": {"x": "492", "y": "461"},
         "world_end": {"x": "-1.923370349948527291", "y": "1.095665582455694675", "z": "21.45379383511317428"},
         "pixel_end": {"x": "524", "y": "440"}}]}],
}
STRING_FORMS = {  # what the strings hold, by field (read_json: int() of pixels, float() of world points)
    "image_name": r"\d+_\d+", "lanes[].lane_id": r"[lr]\d", "lanes[].markers[].lane_marker_id": r"\d+",
    **{f"lanes[].markers[].pixel_{e}.{a}": r"-?\d+" for e in ("start", "end") for a in "xy"},
    **{f"lanes[].markers[].world_{e}.{a}": r"-?\d+(\.\d+)?" for e in ("start", "end") for a in "xyz"},
}


def json_type(value) -> str:
    if isinstance(value, bool) or value is None:
        return repr(value)
    return {str: "string", int: "number", float: "number", list: "array", dict: "object"}[type(value)]


def fields(value, path: str = "") -> dict[str, set[str]]:
    """Every field of a JSON value by path (list items as ``[]``) -> the JSON types found there."""
    out: dict[str, set[str]] = {path or "$": {json_type(value)}}
    children = [(f"{path}.{k}" if path else k, v) for k, v in value.items()] if isinstance(value, dict) else \
        [(f"{path}[]", v) for v in value] if isinstance(value, list) else []
    for child, v in children:
        for p, types in fields(v, child).items():
            out.setdefault(p, set()).update(types)
    return out


def strings(value, path: str = ""):
    """(path, string) for every string of a JSON value."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v, f"{path}[]")


def test_generated_labels_have_the_published_schema_field_by_field(tmp_path):
    generate(tmp_path, 1, 1, seed=3, workers=1, progress=False)
    published = fields(PUBLISHED)
    assert published["projection_matrix[][]"] == {"number"}
    for path in (tmp_path / "labels").rglob("*.json"):
        label = json.loads(path.read_text())
        assert fields(label) == published, path
        assert list(label) == list(PUBLISHED) and list(label["lanes"][0]["markers"][0]) == list(PUBLISHED["lanes"][0]["markers"][0])
        for where, text in [*strings(label), *strings(PUBLISHED)]:
            assert re.fullmatch(STRING_FORMS[where], text), (path, where, text)
        llamas.read_label(path)


def test_the_official_label_lies_on_the_painted_lines(tmp_path):
    """Where the official multi-class label draws a marker (0.1 m wide), the frame is brighter than the
    tarmac 0.6 m to either side: labels and paint agree in every daylight scene."""
    for seed in range(4):
        scene = daylight_scene(seed)
        frame = render_scene(scene)
        path = tmp_path / "labels" / "valid" / "rec" / f"{seed}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(label_content(scene, str(seed))))
        label = llamas.segmentation_label(llamas.read_label(path), multi_class=False)
        assert frame.image.shape == (llamas.IMAGE_HEIGHT, llamas.IMAGE_WIDTH, 3)
        grey = cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY).astype(np.float64)
        rows, cols = np.nonzero(label[llamas.CROP_TOP + 100 :])  # near rows: markers several pixels wide
        rows = rows + llamas.CROP_TOP + 100
        assert len(rows) > 200, seed
        z = scene.camera.focal * scene.camera.height / (rows - scene.camera.horizon)
        side = np.round(scene.camera.focal * 0.6 / z).astype(int)
        inside = (cols - side >= 0) & (cols + side < llamas.IMAGE_WIDTH)
        on = grey[rows[inside], cols[inside]]
        beside = (grey[rows[inside], cols[inside] - side[inside]] + grey[rows[inside], cols[inside] + side[inside]]) / 2
        assert np.median(on - beside) > 20, seed


def digest(root):
    return {p.relative_to(root).as_posix(): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "synthetic.json"}


def test_same_seed_same_bytes_whatever_the_workers_and_a_killed_run_resumes(tmp_path):
    a = generate(tmp_path / "a", 3, 4, seed=2, workers=1, progress=False)
    generate(tmp_path / "b", 3, 4, seed=2, workers=2, progress=False)
    assert digest(tmp_path / "a") == digest(tmp_path / "b") and a["counts"] == {"train": 3, "valid": 4}
    labels = llamas.list_labels(tmp_path / "a" / "labels", "valid")
    assert len(labels) == 4 and all(llamas.image_path(p).is_file() for p in labels)
    assert cv2.imread(str(llamas.image_path(labels[0]))).shape == (717, 1276, 3)
    before = digest(tmp_path / "a")
    llamas.image_path(labels[1]).unlink()
    (tmp_path / "a" / "synthetic.json").unlink()
    (tmp_path / "a" / "synthetic.partial.json").write_text(json.dumps({"params": a["params"]}))
    again = generate(tmp_path / "a", 3, 4, seed=2, workers=1, progress=False)
    assert again["generated"] == 1 and again["resumed_skipped"] == 6 and digest(tmp_path / "a") == before
    assert main(["--out", str(tmp_path / "a"), "--train", "3", "--valid", "5", "--seed", "2", "--no-progress"]) != 0  # other params


def test_valid_splits_into_val_and_test_halves_per_recording(tmp_path):
    source = tmp_path / "src"
    generate(source, 2, 60, seed=1, workers=2, progress=False)  # two recordings of valid: 50 + 10 frames
    out = tmp_path / "root"
    assert convert(source, ["train", "valid"], out, valid_to_val_test=True) == {"train": 2, "val": 30, "test": 30}
    val = read_list(out / "list" / "val_gt.txt").samples
    test = read_list(out / "list" / "test_gt.txt").samples
    recordings = {s.image.split("/")[2] for s in val} | {s.image.split("/")[2] for s in test}
    assert len(recordings) == 2
    for rec in recordings:  # per recording: the first half of its frames val, the rest test
        v = sorted(s.image for s in val if s.image.split("/")[2] == rec)
        t = sorted(s.image for s in test if s.image.split("/")[2] == rec)
        assert abs(len(v) - len(t)) <= 1 and max(x.rsplit("/", 1)[1] for x in v) < min(x.rsplit("/", 1)[1] for x in t)
    assert all(s.image.startswith("color_images/test/") and (out / s.image).is_file() for s in test)
    assert [s.image for s in read_list(out / "list" / "test_split" / "test0_llamas.txt").samples] == [s.image for s in test]
    # the output root is a LLAMAS root too: its test split's labels, linked, read by the official reader
    labels = llamas.list_labels(out / "labels", "test")
    assert [llamas.image_path(p).relative_to(out).as_posix() for p in labels] == sorted(s.image for s in test)
    assert not (out / "list" / "valid_gt.txt").exists()
    stale = out / "labels" / "test" / "images-synth-valid-009" / "1419283521_0000000000.json"  # left by an earlier conversion
    stale.parent.mkdir()
    stale.write_text((source / "labels" / "valid" / labels[0].relative_to(out / "labels" / "test")).read_text())
    convert(source, ["train", "valid"], out, valid_to_val_test=True, force=True)
    assert not stale.exists() and len(llamas.list_labels(out / "labels", "test")) == 30
    code = convert_main(["--llamas-root", str(source), "--split", "train", "--split-valid", "--out-root", str(tmp_path / "other")])
    assert code == 2 and not (tmp_path / "other").exists()
