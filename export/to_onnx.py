"""Checkpoint -> ONNX (inference graph, parity-checked on real images) + a torch.export program.

    python -m export.to_onnx --ckpt CKPT --out artifacts/<dataset>/<name>.onnx [--dynamic-batch]
                             [--outputs probabilities|logits] [--parity-images 100] [--data-root ROOT]

The graph takes the preprocessed image ``image`` (N, 3, h, w) and returns ``seg_prob`` (softmax,
N x C x h x w; ``seg_logits`` with ``--outputs logits``), C the classes of the checkpoint's class
table (:mod:`runtime.classes`), and, for a lane model (a table with an existence head, CULane),
``exist_prob`` (sigmoid, N x 4). A marking model (ApolloScape, 36 classes) has the seg output only.
Exported with ``torch.onnx.export(dynamo=True)`` (opset 18), checked with ``onnx.checker``,
simplified with onnxslim, one self-contained file.

Parity, on real images of the dataset's validation list passed through the runtime's
preprocessing (not random noise): the logits of a logits graph of the same module differ from
PyTorch's (FP32) by at most 1e-4, and, for a lane model, the lanes decoded from the deployed graph
equal PyTorch's on at least 99 % of the images; for a marking model, its probabilities differ by
at most 1e-4 and its argmax class equals PyTorch's on at least 99.9 % of the pixels. Otherwise the
export fails (exit 3) and nothing is written but a ``<out>.parity.json`` report. ``<out>.json`` is
the sidecar (:mod:`runtime.artifacts`; ``class_table`` names the table); ``<out without .onnx>.pt2``
is the same graph as a ``torch.export`` program (+ its sidecar), for GPUs without TensorRT.
"""
from __future__ import annotations

import io
import logging
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from runtime.artifacts import Sidecar, library_versions, sha256_file
from runtime.atomic import atomic_write_bytes, atomic_write_json
from runtime.culane import CulaneDataset
from runtime.decode import DecodeParams, LaneDecoder, lanes_agree
from runtime.cli import Parser, check_output_file, fail, positive_int
from runtime.errors import DataError
from runtime.class_map import class_map
from runtime.classes import class_table
from runtime.preprocess import Preprocess
from training.models import count_parameters, load_trained
from training.models.heads import channel_softmax


LOGIT_TOLERANCE = 1e-4
LANE_AGREEMENT = 0.99
PROB_TOLERANCE = 1e-4  # marking models: |probability difference|
PIXEL_AGREEMENT = 0.999  # marking models: share of pixels whose argmax class is PyTorch's


class DeployModel(nn.Module):
    """The inference graph: image -> (class probabilities or logits,) + (existence probabilities,)
    when the model has an existence head."""

    def __init__(self, model: nn.Module, probabilities: bool = True) -> None:
        super().__init__()
        self.model = model
        self.probabilities = probabilities

    @property
    def existence(self) -> bool:
        return getattr(self.model, "lane_exist", None) is not None

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        seg, exist = self.model(image)[:2]
        seg = channel_softmax(seg) if self.probabilities else seg
        return (seg,) if exist is None else (seg, torch.sigmoid(exist))


def output_names(probabilities: bool, existence: bool = True) -> list[str]:
    return ["seg_prob" if probabilities else "seg_logits"] + (["exist_prob"] if existence else [])


def export_graph(module: DeployModel, example: torch.Tensor, path: Path, dynamic_batch: bool) -> onnx.ModelProto:
    """Export, check and simplify one graph to ``path``; returns the saved model."""
    import onnxslim

    module.eval()
    dynamic = {"image": {0: torch.export.Dim("batch", min=1, max=256)}} if dynamic_batch else None
    program = torch.onnx.export(module, (example,), dynamo=True, input_names=["image"], output_names=output_names(module.probabilities, module.existence),
                                dynamic_shapes=dynamic, optimize=True, verbose=False)
    model = program.model_proto
    onnx.checker.check_model(model)
    model = onnxslim.slim(model)
    onnx.checker.check_model(model)
    onnx.save_model(model, str(path), save_as_external_data=False)
    return model


def parity_images(data_root: Path, list_name: str, pre: Preprocess, count: int) -> np.ndarray:
    """``count`` real images of a list, preprocessed exactly as deployed: (N, 3, h, w) float32."""
    data = CulaneDataset(data_root)
    samples = data.read_list(list_name).samples[:count]
    if not samples:
        raise DataError(data.list_path(list_name), "no images for the parity check")
    return pre([data.read_image(s) for s in samples])


def _run_graph(session: Any, x: np.ndarray) -> list[np.ndarray]:
    """One ONNX Runtime call on a batch; a fixed-batch-1 graph image by image."""
    if session.get_inputs()[0].shape[0] == 1:
        outs = [session.run(None, {"image": x[j : j + 1]}) for j in range(len(x))]
        return [np.concatenate([o[k] for o in outs]) for k in range(len(outs[0]))]
    return session.run(None, {"image": x})


def graph_outputs(model: nn.Module, deployed: Path, logits_graph: Path, images: np.ndarray, batch: int = 8
                  ) -> Iterator[tuple[torch.Tensor, torch.Tensor | None, list[np.ndarray], np.ndarray]]:
    """Per batch of ``images``: PyTorch's seg logits (N, C, h, w) and existence logits (N, L) or
    None, the deployed graph's outputs and the logits graph's seg logits (ONNX Runtime, CPU)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    s_deployed = ort.InferenceSession(str(deployed), opts, providers=["CPUExecutionProvider"])
    s_logits = ort.InferenceSession(str(logits_graph), opts, providers=["CPUExecutionProvider"])
    model.eval()
    for i in range(0, len(images), batch):
        x = images[i : i + batch]
        with torch.no_grad():
            seg, exist = model(torch.from_numpy(x))[:2]
        yield seg, exist, _run_graph(s_deployed, x), _run_graph(s_logits, x)[0]


def _onnx_probabilities(output: np.ndarray, probabilities: bool) -> np.ndarray:
    return output if probabilities else torch.softmax(torch.from_numpy(output), 1).numpy()


def check_parity(model: nn.Module, deployed: Path, logits_graph: Path, images: np.ndarray, decoder: LaneDecoder,
                 probabilities: bool, batch: int = 8) -> dict[str, Any]:
    """Compare PyTorch and ONNX Runtime (CPU) on the images, lane model: logits and decoded lanes."""
    max_logit = max_prob = max_exist = 0.0
    same = 0
    for seg, exist, out_d, out_l in graph_outputs(model, deployed, logits_graph, images, batch):
        seg_t, prob_t, exist_t = seg.numpy(), torch.softmax(seg, 1).numpy(), torch.sigmoid(exist).numpy()
        max_logit = max(max_logit, float(np.abs(out_l - seg_t).max()))
        target = prob_t if probabilities else seg_t
        max_prob = max(max_prob, float(np.abs(out_d[0] - target).max()))
        max_exist = max(max_exist, float(np.abs(out_d[1] - exist_t).max()))
        probs_onnx = _onnx_probabilities(out_d[0], probabilities)
        for j in range(len(seg_t)):
            same += lanes_agree(decoder(prob_t[j], exist_t[j]), decoder(probs_onnx[j], out_d[1][j]))
    agreement = same / len(images)
    return {
        "images": len(images),
        "task": "lanes",
        "max_abs_logit_diff": max_logit,
        "max_abs_output_diff": max_prob,
        "max_abs_exist_diff": max_exist,
        "lanes_identical_fraction": agreement,
        "logit_tolerance": LOGIT_TOLERANCE,
        "lane_agreement_required": LANE_AGREEMENT,
        "passed": max_logit <= LOGIT_TOLERANCE and agreement >= LANE_AGREEMENT,
    }


def check_marking_parity(model: nn.Module, deployed: Path, logits_graph: Path, images: np.ndarray, probabilities: bool,
                         batch: int = 8) -> dict[str, Any]:
    """Compare PyTorch and ONNX Runtime (CPU) on the images, marking model: logits, probabilities
    (max absolute difference) and argmax class maps (share of identical pixels)."""
    max_logit = max_output = max_prob = 0.0
    same = pixels = 0
    for seg, _, out_d, out_l in graph_outputs(model, deployed, logits_graph, images, batch):
        seg_t, prob_t = seg.numpy(), torch.softmax(seg, 1).numpy()
        max_logit = max(max_logit, float(np.abs(out_l - seg_t).max()))
        max_output = max(max_output, float(np.abs(out_d[0] - (prob_t if probabilities else seg_t)).max()))
        probs_onnx = _onnx_probabilities(out_d[0], probabilities)
        max_prob = max(max_prob, float(np.abs(probs_onnx - prob_t).max()))
        same += int((class_map(probs_onnx) == class_map(prob_t)).sum())
        pixels += prob_t.shape[0] * prob_t.shape[2] * prob_t.shape[3]
    agreement = same / pixels
    return {
        "images": len(images),
        "task": "markings",
        "max_abs_logit_diff": max_logit,
        "max_abs_output_diff": max_output,
        "max_abs_prob_diff": max_prob,
        "pixels_identical_fraction": agreement,
        "logit_tolerance": LOGIT_TOLERANCE,
        "prob_tolerance": PROB_TOLERANCE,
        "pixel_agreement_required": PIXEL_AGREEMENT,
        "passed": max_logit <= LOGIT_TOLERANCE and max_prob <= PROB_TOLERANCE and agreement >= PIXEL_AGREEMENT,
    }


def parity_summary(parity: dict[str, Any]) -> str:
    """One line: the parity figures against their limits."""
    head = f"max |dlogits| {parity['max_abs_logit_diff']:.2e} (limit {parity['logit_tolerance']:.0e})"
    if parity.get("task") == "markings":
        return (f"{head}, max |dprob| {parity['max_abs_prob_diff']:.2e} (limit {parity['prob_tolerance']:.0e}), "
                f"identical argmax on {100 * parity['pixels_identical_fraction']:.3f} % of the pixels of {parity['images']} images "
                f"(need {100 * parity['pixel_agreement_required']:.1f} %)")
    return (f"{head}, identical lanes on {100 * parity['lanes_identical_fraction']:.1f} % of {parity['images']} images "
            f"(need {100 * parity['lane_agreement_required']:.0f} %)")


def base_sidecar(ckpt_path: Path, ckpt: dict[str, Any], model: nn.Module, shape: list, probabilities: bool, fmt: str) -> Sidecar:
    config = ckpt["config"]
    pre = Preprocess.from_dict(config["input"])
    table = class_table(config["dataset"].get("classes", "culane"))
    n = shape[0]
    outputs = [{"name": output_names(probabilities)[0], "shape": [n, table.num_classes, pre.net_height, pre.net_width],
                "dtype": "float32", "kind": "seg_prob" if probabilities else "seg_logits"}]
    if table.existence:
        outputs.append({"name": "exist_prob", "shape": [n, table.num_lanes], "dtype": "float32", "kind": "exist_prob"})
    return Sidecar(
        format=fmt,
        precision="fp32",
        model={"name": config["name"], "arch": config["model"]["arch"], "depth": config["model"].get("depth"),
               "params": count_parameters(model), "distill": (config.get("distill") or {}).get("method"),
               "role": "teacher" if config["model"]["arch"] == "pspnet" else "student"},
        input={"name": "image", "shape": shape, "dtype": "float32", "dynamic_batch": isinstance(n, str)},
        outputs=outputs,
        class_table=table.name,
        classes=list(table.names),
        preprocess=pre.to_dict(),
        decode=config["decode"],
        source={"checkpoint": str(ckpt_path), "sha256": sha256_file(ckpt_path), "iteration": int(ckpt.get("iteration", 0))},
        versions=library_versions("torch", "onnx", "onnxruntime", "onnxslim", "onnxscript"),
    )


def export_checkpoint(ckpt_path: str | Path, out: str | Path, dynamic_batch: bool = False, probabilities: bool = True,
                      parity_count: int = 100, data_root: str | None = None, parity_list: str | None = None,
                      save_pt2: bool = True) -> dict[str, Any]:
    """Export a checkpoint; returns {"onnx", "pt2", "parity", "nodes", "seconds"}. Raises
    :class:`ParityError` (nothing written but the report) when parity fails."""
    start = time.perf_counter()
    ckpt_path, out = Path(ckpt_path), Path(out)
    if out.suffix != ".onnx":
        raise DataError(out, "the output must be an .onnx file")
    model, ckpt = load_trained(ckpt_path, torch.device("cpu"))
    config = ckpt["config"]
    if config["model"].get("input") == "label":
        raise DataError(ckpt_path, "a label-input (LGAD teacher) model is a training device, not a deployable one")
    table = class_table(config["dataset"].get("classes", "culane"))
    pre = Preprocess.from_dict(config["input"])
    example = torch.zeros(1, 3, pre.net_height, pre.net_width)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".export-") as tmp:
        deployed, logits_graph = Path(tmp) / "deployed.onnx", Path(tmp) / "logits.onnx"
        graph = export_graph(DeployModel(model, probabilities), example, deployed, dynamic_batch)
        if probabilities:  # parity is judged on logits: a logits graph beside the deployed one
            export_graph(DeployModel(model, False), example, logits_graph, dynamic_batch)
        else:
            logits_graph = deployed
        images = parity_images(Path(data_root or config["dataset"]["root"]), parity_list or config["dataset"]["val_list"], pre, parity_count)
        if table.existence:
            decoder = LaneDecoder(pre, DecodeParams.from_dict(config["decode"]))
            parity = check_parity(model, deployed, logits_graph, images, decoder, probabilities)
        else:
            parity = check_marking_parity(model, deployed, logits_graph, images, probabilities)
        atomic_write_json(Path(f"{out}.parity.json"), parity)
        if not parity["passed"]:
            raise ParityError(f"{out}: ONNX differs from PyTorch: {parity_summary(parity)}; report {out}.parity.json")
        atomic_write_bytes(out, deployed.read_bytes())
    shape = ["batch" if dynamic_batch else 1, 3, pre.net_height, pre.net_width]
    sidecar = base_sidecar(ckpt_path, ckpt, model, shape, probabilities, "onnx")
    sidecar.extra["dataset"] = {"name": config["dataset"]["name"], "root": str(data_root or config["dataset"]["root"]),
                                "val_list": parity_list or config["dataset"]["val_list"]}
    sidecar.extra["parity"] = parity
    sidecar.extra["nodes"] = len(graph.graph.node)
    sidecar.write(out)
    result: dict[str, Any] = {"onnx": str(out), "parity": parity, "nodes": len(graph.graph.node)}
    if save_pt2:
        pt2 = out.with_suffix(".pt2")
        dynamic = {"image": {0: torch.export.Dim("batch", min=1, max=256)}} if dynamic_batch else None
        program = torch.export.export(DeployModel(model, probabilities).eval(), (example,), dynamic_shapes=dynamic)
        buffer = io.BytesIO()
        torch.export.save(program, buffer)
        atomic_write_bytes(pt2, buffer.getvalue())
        program_sidecar = sidecar.derived(format="torch.export")
        for key in ("parity", "nodes"):  # properties of the ONNX graph
            program_sidecar.extra.pop(key, None)
        program_sidecar.write(pt2)
        result["pt2"] = str(pt2)
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


class ParityError(RuntimeError):
    """The exported graph does not reproduce PyTorch within the tolerances."""


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m export.to_onnx", description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--out", required=True, help="artifacts/<dataset>/<name>.onnx")
    parser.add_argument("--dynamic-batch", action="store_true", help="leave the batch dimension free")
    parser.add_argument("--outputs", choices=("probabilities", "logits"), default="probabilities")
    parser.add_argument("--parity-images", type=positive_int, default=100, help="validation images for the parity check")
    parser.add_argument("--parity-list", help="list for the parity check (default: the checkpoint's validation list)")
    parser.add_argument("--data-root", help="dataset root (default: the checkpoint's)")
    parser.add_argument("--no-pt2", action="store_true", help="skip the torch.export program")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed" notices
    try:
        check_output_file(args.out, "ONNX model", [args.ckpt])
        result = export_checkpoint(args.ckpt, args.out, args.dynamic_batch, args.outputs == "probabilities", args.parity_images,
                                   args.data_root, args.parity_list, not args.no_pt2)
    except (DataError, OSError) as err:
        return fail(err)
    except ParityError as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    p = result["parity"]
    print(f"{result['onnx']}: {result['nodes']} nodes, parity on {p['images']} images: {parity_summary(p)} ({result['seconds']} s)"
          + (f"; {result['pt2']}" if "pt2" in result else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
