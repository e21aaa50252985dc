"""The deployed path of marking models (ApolloScape classes), through real ONNX files and ONNX Runtime:
sidecars, mIoU at full label resolution (against an independent computation and a hand-made case),
bad inputs, the benchmark, drawing, the contact sheet and the video loop."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from runtime import benchmark, contact_sheet, evaluate, infer_video
from runtime.artifacts import Sidecar, read_sidecar
from runtime.class_map import class_map, to_frame, to_source
from runtime.classes import class_table
from runtime.culane import CulaneDataset
from runtime.decode import DecodeParams
from runtime.draw import CLASS_ALPHA, class_legend, draw_classes
from runtime.errors import DataError
from runtime.frame_policy import FramePolicy
from runtime.preprocess import Preprocess
from tests.runtime.test_infer_video import make_video, video_frames
from tests.training.test_marking_classes import evaluated_reference

APOLLO = class_table("apolloscape")


# -- a hand-made model and root ------------------------------------------------------------------
HAND_PRE = Preprocess(src_width=4, src_height=6, crop_top=2, net_width=2, net_height=2)
HAND_NET = np.array([[1, 0], [0, 2]], np.uint8)  # the model's class map at the network size
HAND_LABEL = np.array([[1, 1, 0, 0],      # a marking above the crop: predicted void there
                       [0, 0, 0, 255],    # ignored
                       [1, 1, 0, 0],
                       [1, 0, 0, 0],
                       [0, 0, 2, 2],
                       [0, 0, 2, 7]], np.uint8)
HAND_CONFUSION = {(0, 0): 13, (0, 1): 1, (1, 0): 2, (1, 1): 3, (2, 2): 3, (7, 2): 1}  # (truth, prediction): pixels, by hand
HAND_IOU = {"void": 13 / 16, "s_w_d": 3 / 6, "s_y_d": 3 / 4, "b_w_g": 0.0}


def hand_model(path: Path, classes: np.ndarray, pre: Preprocess) -> Path:
    """An ONNX model whose ``seg_prob`` is one-hot ``classes`` whatever the image (+ 0 x its mean),
    with its sidecar: a marking model whose predictions are known exactly."""
    h, w = classes.shape
    probs = np.zeros((1, APOLLO.num_classes, h, w), np.float32)
    probs[0, classes, np.arange(h)[:, None], np.arange(w)[None, :]] = 1.0
    nodes = [helper.make_node("ReduceMean", ["image"], ["mean"]), helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
             helper.make_node("Add", ["probs", "nothing"], ["seg_prob"])]
    graph = helper.make_graph(nodes, "hand", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, h, w])],
                              [helper.make_tensor_value_info("seg_prob", TensorProto.FLOAT, [1, APOLLO.num_classes, h, w])],
                              [numpy_helper.from_array(probs, "probs"), numpy_helper.from_array(np.zeros((), np.float32), "zero")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    Sidecar(format="onnx", precision="fp32", model={"name": "hand", "arch": "none"},
            input={"name": "image", "shape": [1, 3, h, w], "dtype": "float32", "dynamic_batch": False},
            outputs=[{"name": "seg_prob", "shape": [1, APOLLO.num_classes, h, w], "dtype": "float32", "kind": "seg_prob"}],
            preprocess=pre.to_dict(), decode=DecodeParams().to_dict(), source={}, class_table="apolloscape",
            classes=list(APOLLO.names)).write(path)
    return path


def hand_root(root: Path, label: np.ndarray, list_line: str = "/0.jpg /0.png") -> Path:
    (root / "list").mkdir(parents=True)
    cv2.imwrite(str(root / "0.jpg"), np.full((HAND_PRE.src_height, HAND_PRE.src_width, 3), 90, np.uint8))
    cv2.imwrite(str(root / "0.png"), label)
    (root / "list" / "test_gt.txt").write_text(list_line + "\n")
    return root


def run_evaluate(capsys, *args: str) -> tuple[int, str, str]:
    code = evaluate.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- the full-resolution rule --------------------------------------------------------------------
def test_the_full_resolution_rule_is_nearest_by_pixel_centres_with_void_above_the_crop():
    expected = np.array([[0, 0, 0, 0], [0, 0, 0, 0], [1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 2, 2], [0, 0, 2, 2]], np.uint8)
    np.testing.assert_array_equal(to_source(HAND_NET, HAND_PRE), expected)
    rng = np.random.default_rng(1)
    for sw, sh, top, nw, nh in ((160, 90, 10, 64, 32), (3384, 2710, 1700, 1696, 512), (11, 7, 3, 4, 3)):
        pre = Preprocess(src_width=sw, src_height=sh, crop_top=top, net_width=nw, net_height=nh)
        net = rng.integers(0, 36, (nh, nw)).astype(np.uint8)
        rows = np.floor((np.arange(sh - top) + 0.5) * nh / (sh - top)).astype(int)  # the centre of each full-size pixel
        cols = np.floor((np.arange(sw) + 0.5) * nw / sw).astype(int)
        np.testing.assert_array_equal(to_source(net, pre), np.vstack([np.zeros((top, sw), np.uint8), net[rows][:, cols]]))
    paper = Preprocess(src_width=3384, src_height=2710, crop_top=1700, net_width=1692, net_height=505)
    net = rng.integers(0, 36, (505, 1692)).astype(np.uint8)
    full = to_source(net, paper)  # the paper's exact 2x: IntRA-KD's cv2.INTER_NEAREST pixel for pixel
    np.testing.assert_array_equal(full[1700:], cv2.resize(net, (3384, 1010), interpolation=cv2.INTER_NEAREST))
    assert not full[:1700].any()


def test_the_hand_made_model_is_scored_at_full_resolution(tmp_path, capsys):
    model = hand_model(tmp_path / "hand.onnx", HAND_NET, HAND_PRE)
    root = hand_root(tmp_path / "root", HAND_LABEL)
    code, out, err = run_evaluate(capsys, "--model", str(model), "--data-root", str(root), "--report", str(tmp_path / "r.json"))
    assert code == 0, err
    report = json.loads((tmp_path / "r.json").read_text())
    expected = np.zeros((36, 36), np.int64)
    for (truth, pred), count in HAND_CONFUSION.items():
        expected[truth, pred] = count
    np.testing.assert_array_equal(report["confusion"], expected)  # the row-0 marking: 2 pixels of s_w_d predicted void
    assert {k: v for k, v in report["iou"].items() if v is not None} == pytest.approx(HAND_IOU)
    assert report["miou"] == pytest.approx(sum(HAND_IOU.values()) / 4) == pytest.approx(0.515625)
    assert (report["images"], report["classes"], report["classes_scored"], report["pixels"]) == (1, "apolloscape", 4, 23)
    assert report["list"] == str(root / "list" / "test_gt.txt") and report["model"] == str(model)
    assert "mIoU 51.56 % over 4 classes, 1 images" in out and "s_w_d       50.00" in out


def test_runtime_evaluate_equals_an_independent_miou(marking_onnx, marking_dataset, tmp_path, capsys):
    code, _, err = run_evaluate(capsys, "--model", str(marking_onnx), "--data-root", str(marking_dataset),
                                "--report", str(tmp_path / "r.json"), "--batch-size", "2")
    assert code == 0, err
    report = json.loads((tmp_path / "r.json").read_text())
    side = read_sidecar(marking_onnx)
    pre = side.pre
    session = ort.InferenceSession(str(marking_onnx), providers=["CPUExecutionProvider"])
    confusion = np.zeros((36, 36), np.int64)
    lines = (marking_dataset / "list" / "test_gt.txt").read_text().split("\n")
    pairs = [line.split() for line in lines if line]
    for image_name, label_name in pairs:
        image = cv2.imread(str(marking_dataset / image_name.lstrip("/")))
        label = cv2.imread(str(marking_dataset / label_name.lstrip("/")), cv2.IMREAD_UNCHANGED)
        [probs] = session.run(None, {"image": pre(image)})
        net = probs[0].argmax(0)
        rows = np.floor((np.arange(pre.crop_height) + 0.5) * pre.net_height / pre.crop_height).astype(int)
        cols = np.floor((np.arange(pre.src_width) + 0.5) * pre.net_width / pre.src_width).astype(int)
        full = np.zeros(label.shape, int)
        full[pre.crop_top :] = net[rows][:, cols]
        keep = label != 255
        np.add.at(confusion, (label[keep].astype(int), full[keep]), 1)
    iou = evaluated_reference(confusion, np.array(APOLLO.evaluated))
    np.testing.assert_array_equal(report["confusion"], confusion)
    assert report["miou"] == pytest.approx(np.nanmean(iou), rel=1e-12) and report["images"] == len(pairs) == 2
    assert report["iou"] == {APOLLO.names[c]: (None if np.isnan(iou[c]) else pytest.approx(iou[c])) for c in range(36) if APOLLO.evaluated[c]}
    assert confusion.sum() == 2 * 90 * 160  # full label resolution, every pixel


@pytest.mark.parametrize("case", ["missing", "size", "value", "image", "no-label", "pred-dir"])
def test_bad_marking_inputs_give_one_line(case, tmp_path, capsys):
    model = hand_model(tmp_path / "hand.onnx", HAND_NET, HAND_PRE)
    label = {"size": HAND_LABEL[:5], "value": np.where(HAND_LABEL == 7, 40, HAND_LABEL).astype(np.uint8)}.get(case, HAND_LABEL)
    root = hand_root(tmp_path / "root", label, "/0.jpg" if case == "no-label" else "/0.jpg /0.png")
    if case == "missing":
        (root / "0.png").unlink()
    if case == "image":
        cv2.imwrite(str(root / "0.jpg"), np.zeros((5, 4, 3), np.uint8))
    extra = ["--pred-dir", str(tmp_path / "pred")] if case == "pred-dir" else []
    code, _, err = run_evaluate(capsys, "--model", str(model), "--data-root", str(root), *extra)
    expected = {"missing": f"test_gt.txt:1: label map {root / '0.png'} not found",
                "size": f"{root / '0.png'}: label map is 4x5, expected 4x6",
                "value": f"{root / '0.png'}: label values [40] outside 0..35 and 255",
                "image": f"{root / '0.jpg'}: image is 4x5, the model's preprocessing expects 4x6",
                "no-label": "test_gt.txt:1: no label for 0.jpg",
                "pred-dir": "--pred-dir is for lane models"}[case]
    assert code == 2 and expected in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_lane_only_commands_refuse_a_marking_model_in_one_line(tmp_path, capsys):
    from calibration.calibrate import main as calibrate
    from runtime.backends import load_backend
    from runtime.scoring import predict_many

    model = hand_model(tmp_path / "hand.onnx", HAND_NET, HAND_PRE)
    root = hand_root(tmp_path / "root", HAND_LABEL)
    assert calibrate(["--onnx", str(model), "--data-root", str(root), "--out", str(tmp_path / "int8.onnx")]) == 2
    err = capsys.readouterr().err
    assert "hand.onnx: a markings model ('apolloscape' classes): the INT8 accuracy report scores decoded lanes" in err
    samples = CulaneDataset(root).read_list("test_gt.txt").samples
    with pytest.raises(DataError, match="hand.onnx: a markings model .* lane scoring decodes lanes"):
        next(predict_many([load_backend(model)], root, samples))


# -- sidecars ------------------------------------------------------------------------------------
def sidecar_data(marking_onnx: Path) -> dict:
    return json.loads(Path(f"{marking_onnx}.json").read_text())


def as_lane_sidecar(data: dict) -> dict:
    n, _, h, w = data["outputs"][0]["shape"]
    return {**data, "class_table": "culane", "classes": list(class_table("culane").names),
            "outputs": [{**data["outputs"][0], "shape": [n, 5, h, w]}, {"name": "exist_prob", "shape": [n, 4], "kind": "exist_prob"}]}


def test_read_sidecar_knows_the_class_table_and_refuses_what_does_not_fit(marking_onnx, tmp_path):
    assert read_sidecar(marking_onnx).table == APOLLO
    data = sidecar_data(marking_onnx)

    def read(changed: dict, name: str = "x") -> Sidecar:
        Path(f"{tmp_path / name}.onnx.json").write_text(json.dumps(changed))
        return read_sidecar(tmp_path / f"{name}.onnx")

    old = as_lane_sidecar(data)
    del old["class_table"]
    assert read(old).table.name == "culane" and read(old).class_table == "culane"  # sidecars older than the field
    exist = {"name": "exist_prob", "shape": [1, 4], "kind": "exist_prob"}
    for changed, message in (
        ({**data, "outputs": data["outputs"] + [exist]}, "a 'apolloscape' (markings) model has no existence head, so no exist_prob"),
        ({**data, "class_table": "kitti"}, "unknown class_table 'kitti'; known: culane, apolloscape"),
        ({**old, "class_table": "culane", "outputs": old["outputs"][:1]}, "a 'culane' (lanes) model needs exist_prob too"),
        ({**data, "outputs": [as_lane_sidecar(data)["outputs"][0]]}, "has 5 channels, the 'apolloscape' table 36 classes"),
    ):
        with pytest.raises(DataError, match="x.onnx.json: ") as err:
            read(changed)
        assert message in str(err.value)


# -- benchmark, drawing, contact sheet, video ----------------------------------------------------
def test_the_benchmark_runs_a_marking_model(marking_onnx, tmp_path):
    out = tmp_path / "bench.json"
    assert benchmark.main(["--model", str(marking_onnx), "--device", "cpu", "--threads", "1", "--iterations", "5",
                           "--warmup", "1", "--json", str(out), "--quiet"]) == 0
    report = json.loads(out.read_text())
    assert report["meta"]["input_shape"] == [1, 3, 32, 64] and len(report["records"]) == 5


def test_a_class_map_is_drawn_in_its_colours_with_a_legend_and_void_above_the_crop():
    frame = np.full((90, 160, 3), 100, np.uint8)
    classes = np.zeros((90, 160), np.uint8)
    classes[60:70, 10:40], classes[70:80, 100:150] = 1, 7
    drawn = draw_classes(frame.copy(), classes, APOLLO, legend=False)
    assert (drawn[classes == 0] == 100).all()
    for c in (1, 7):
        blend = np.round(100 * (1 - CLASS_ALPHA) + np.array(APOLLO.colors[c]) * CLASS_ALPHA)
        assert (np.abs(drawn[classes == c].astype(int) - blend) <= 1).all()
    assert class_legend(classes, APOLLO) == [("s_w_d", APOLLO.colors[1]), ("b_w_g", APOLLO.colors[7])]
    with_legend = draw_classes(frame.copy(), classes, APOLLO)
    assert (with_legend[:5, -5:] < 100).all() and (with_legend[:5, :5] == 100).all()  # the legend box: top right only
    pre = Preprocess(src_width=160, src_height=90, crop_top=10, net_width=64, net_height=32)
    on_frame = to_frame(np.ones((32, 64), np.uint8), FramePolicy(pre, 320, 180))  # the crop's 10 rows are 20 frame rows
    assert on_frame.shape == (180, 320) and not on_frame[:20].any() and on_frame[20:].all()
    assert class_map(np.eye(3, dtype=np.float32)[[2, 0]].T.reshape(3, 1, 2)).tolist() == [[2, 0]]


def test_contact_sheets_of_a_marking_model(marking_onnx, marking_dataset, tmp_path, capsys):
    sheet = tmp_path / "sheet.png"
    assert contact_sheet.main(["--model", str(marking_onnx), "--data-root", str(marking_dataset), "--frames", "2",
                               "--tile-width", "160", "--out", str(sheet)]) == 0
    assert "marks.onnx: mIoU" in capsys.readouterr().out and cv2.imread(str(sheet)).shape[1] == 160
    video = make_video(tmp_path / "clip.mp4", 6, (320, 180))
    assert contact_sheet.main(["--model", str(marking_onnx), "--video", str(video), "--frames", "2", "--out", str(sheet)]) == 0
    assert "2 frames, no ground truth" in capsys.readouterr().out
    lane = tmp_path / "lane.onnx"  # a lane model's sidecar (the sheet refuses before loading any model)
    lane.write_bytes(b"")
    Path(f"{lane}.json").write_text(json.dumps(as_lane_sidecar(sidecar_data(marking_onnx))))
    assert contact_sheet.main(["--model", str(marking_onnx), "--model", str(lane), "--video", str(video), "--out", str(sheet)]) == 2
    assert "one sheet compares models of one task" in capsys.readouterr().err


def test_the_video_loop_draws_a_marking_model_and_refuses_lane_ground_truth(marking_onnx, tmp_path, capsys):
    video = make_video(tmp_path / "clip.mp4", 8, (320, 180))
    out, report = tmp_path / "out.mp4", tmp_path / "r.json"
    assert infer_video.main(["--model", str(marking_onnx), "--video", str(video), "--out", str(out), "--report", str(report),
                             "--warmup", "2", "--threads", "1"]) == 0
    assert video_frames(out) == (8, (320, 180))
    data = json.loads(report.read_text())
    assert data["meta"]["classes"] == "apolloscape" and len(data["records"]) == 6 and "accuracy" not in data
    capsys.readouterr()
    assert infer_video.main(["--model", str(marking_onnx), "--video", str(video), "--no-video", "--report", str(report),
                             "--gt", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--gt scores lanes, and this is a markings model ('apolloscape' classes)" in err and len(err.strip().splitlines()) == 1
