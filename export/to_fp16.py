"""FP32 ONNX -> FP16 ONNX (inputs and outputs stay FP32), with an accuracy check against FP32.

    python -m export.to_fp16 --onnx M.onnx [--out M.fp16.onnx] [--data-root ROOT] [--check-images 50]

Converted with onnxconverter-common's ``float16.convert_float_to_float16(keep_io_types=True)``:
weights and activations in half precision, casts at the graph's edges, so the runtime feeds and
reads float32 as for the FP32 model. The check runs both under ONNX Runtime (CPU) on real
validation images preprocessed as the sidecar says and records the largest output differences
and the share of images whose decoded lanes are identical (a marking model: the share of pixels
whose argmax class is identical) in the FP16 sidecar.
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from runtime.artifacts import library_versions, read_sidecar, sha256_file
from runtime.atomic import atomic_write_bytes
from runtime.backends import load_backend, probabilities
from runtime.class_map import class_map
from runtime.culane import CulaneDataset
from runtime.decode import LaneDecoder, lanes_agree
from runtime.cli import Parser, check_output_file, fail, non_negative_int, with_sidecars
from runtime.errors import DataError


def convert(onnx_path: Path, out: Path) -> None:
    from onnxconverter_common import float16

    try:
        model = onnx.load(str(onnx_path))
    except Exception as err:  # onnx raises DecodeError and others on corrupt files
        raise DataError(onnx_path, f"not a readable ONNX model ({err.__class__.__name__})") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the converter warns about values clipped to the FP16 range
        half = float16.convert_float_to_float16(model, keep_io_types=True)
    onnx.checker.check_model(half)
    atomic_write_bytes(out, half.SerializeToString())


def compare(fp32: Path, other: Path, data_root: Path, list_name: str, count: int) -> dict[str, Any]:
    """Largest output differences of ``other`` vs ``fp32`` on real images, and the share of images
    whose decoded lanes are identical (lane model) or of pixels whose class is (marking model)."""
    a, b = load_backend(fp32, "onnxruntime"), load_backend(other, "onnxruntime")
    pre = a.sidecar.pre
    decoder = LaneDecoder(pre, a.sidecar.decode_params) if a.sidecar.table.existence else None
    data = CulaneDataset(data_root)
    samples = data.read_list(list_name).samples[:count]
    if not samples:
        raise DataError(data.list_path(list_name), "no images to check the conversion on")
    max_diff: dict[str, float] = {}
    same = pixels = 0
    for sample in samples:
        x = pre(data.read_image(sample))
        oa, ob = a.infer(x), b.infer(x)
        for kind in oa:
            max_diff[kind] = max(max_diff.get(kind, 0.0), float(np.abs(oa[kind] - ob[kind]).max()))
        (sa, ea), (sb, eb) = probabilities(oa), probabilities(ob)
        if decoder is not None:
            same += lanes_agree(decoder(sa[0], ea[0]), decoder(sb[0], eb[0]))
        else:
            same += int((class_map(sa) == class_map(sb)).sum())
            pixels += sa[0, 0].size
    result: dict[str, Any] = {"images": len(samples), "max_abs_diff": max_diff}
    if decoder is not None:
        result["lanes_identical_fraction"] = same / len(samples)
    else:
        result["pixels_identical_fraction"] = same / pixels
    return result


def agreement_text(result: dict[str, Any]) -> str:
    """'lanes identical x %' or 'pixels of the same class x %', as :func:`compare` measured."""
    if "pixels_identical_fraction" in result:
        return f"pixels of the same class {100 * result['pixels_identical_fraction']:.3f} %"
    return f"lanes identical {100 * result['lanes_identical_fraction']:.1f} %"


def to_fp16(onnx_path: str | Path, out: str | Path | None = None, data_root: str | None = None, check_images: int = 50,
            check_list: str = "val_gt.txt") -> dict[str, Any]:
    onnx_path = Path(onnx_path)
    out = Path(out) if out else onnx_path.with_name(onnx_path.name.replace(".onnx", ".fp16.onnx"))
    if not onnx_path.is_file():
        raise DataError(onnx_path, "ONNX model not found")
    sidecar = read_sidecar(onnx_path)
    if sidecar.precision != "fp32" or sidecar.format != "onnx":
        raise DataError(onnx_path, f"convert an FP32 ONNX model (this one is {sidecar.format}/{sidecar.precision})")
    out.parent.mkdir(parents=True, exist_ok=True)
    convert(onnx_path, out)
    derived = sidecar.derived(precision="fp16")
    derived.source = {**sidecar.source, "parent": str(onnx_path), "parent_sha256": sha256_file(onnx_path)}
    derived.extra.pop("parity", None)
    derived.versions = {**sidecar.versions, **library_versions("onnxconverter-common")}
    derived.write(out)
    root = data_root or sidecar.extra.get("dataset", {}).get("root")
    if root and check_images > 0:
        derived.extra["check_vs_fp32"] = compare(onnx_path, out, Path(root), sidecar.extra.get("dataset", {}).get("val_list", check_list), check_images)
        derived.write(out)
    return {"out": str(out), **derived.extra.get("check_vs_fp32", {})}


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m export.to_fp16", description=__doc__.split("\n")[0])
    parser.add_argument("--onnx", required=True)
    parser.add_argument("--out")
    parser.add_argument("--data-root", help="dataset for the check against FP32 (default: the one recorded at export)")
    parser.add_argument("--check-images", type=non_negative_int, default=50)
    args = parser.parse_args(argv)
    try:
        if args.out:
            check_output_file(args.out, "FP16 model", with_sidecars(args.onnx))
        result = to_fp16(args.onnx, args.out, args.data_root, args.check_images)
    except (DataError, OSError) as err:
        return fail(err)
    extra = ""
    if "images" in result:
        extra = f"; vs FP32 on {result['images']} images: {agreement_text(result)}, " + \
                ", ".join(f"max |d{k}| {v:.2e}" for k, v in result["max_abs_diff"].items())
    print(f"{result['out']}{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
