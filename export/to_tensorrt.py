"""ONNX (FP32, FP16 or Q/DQ INT8) -> TensorRT engine for this machine's GPU, with its sidecar.

    python -m export.to_tensorrt --onnx M(.fp16|.int8).onnx --out M.<precision>.engine [--workspace-gb 2]
                                 [--timing-cache PATH] [--batch-opt N --batch-max N] [--tf32] [--verbose]

The same code builds with TensorRT 10.x and 11.x: the network is strongly typed, so the precision
comes from the ONNX graph itself (an FP16 graph, or Q/DQ nodes for INT8; no builder precision
flags, no calibrators). FP32 graphs are built without TF32 unless ``--tf32``. A dynamic-batch ONNX
(exported with ``--dynamic-batch``) gets one optimization profile: batch 1 .. ``--batch-max``, tuned
for ``--batch-opt``. ``--timing-cache`` reuses and updates a timing cache file between builds.

``<out>`` and ``<out>.json`` are written atomically. The sidecar is the ONNX's, with format
``tensorrt``, the same precision, ``source.parent`` = the ONNX (+ sha256), the TensorRT version,
and ``gpu`` / ``tensorrt`` sections (GPU name, compute capability, driver; workspace, timing cache,
build seconds, profile). An engine only runs under the same TensorRT version on a GPU of the same
compute capability; the runtime checks that and says how to rebuild.

Exit status: 0 built; 2 bad input or TensorRT/cuda-python/GPU missing (one line on stderr, with how
to install); 3 TensorRT could not build the engine (or a CUDA call failed).

This code follows NVIDIA's TensorRT 10.x/11.x Python API and samples (strongly typed networks,
``OnnxParser.parse_from_file``, ``build_serialized_network``). It has run nowhere in this
project's CI: there is no GPU or TensorRT there.
"""
from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

from runtime.artifacts import Sidecar, library_versions, read_sidecar, sha256_file
from runtime.atomic import atomic_write_bytes
from runtime.backends.cuda_util import CudaError
from runtime.backends.tensorrt_backend import (TensorRTUnavailable, import_tensorrt, logged_errors, trt_available,
                                               trt_logger)
from runtime.cli import Parser, check_output_file, fail, positive_float, positive_int, with_sidecars
from runtime.errors import DataError

__all__ = ["build_engine", "trt_available", "EngineBuildError", "TensorRTUnavailable", "main"]

DEFAULT_WORKSPACE_GB = 2.0
DEFAULT_BATCH_MAX = 8
# Sidecar entries that describe the ONNX file's own checks, not the engine.
ONNX_ONLY_EXTRAS = ("parity", "nodes", "check_vs_fp32")


class EngineBuildError(RuntimeError):
    """TensorRT parsed the model but could not build an engine (message: TensorRT's errors and what to try)."""


# ----------------------------------------------------------------------------- validation

def validate_inputs(onnx_path: Path, out: Path) -> Sidecar:
    """The ONNX model's sidecar, after checking both paths; :class:`DataError` naming the file otherwise."""
    if onnx_path.suffix != ".onnx":
        raise DataError(onnx_path, "the input must be an .onnx model (FP32, .fp16.onnx or .int8.onnx)")
    if not onnx_path.is_file():
        raise DataError(onnx_path, "ONNX model not found")
    if out.suffix != ".engine":
        raise DataError(out, "the output must be a .engine file (e.g. model.fp16.engine)")
    if out.resolve() == onnx_path.resolve():
        raise DataError(out, "the output would overwrite the ONNX model")
    sidecar = read_sidecar(onnx_path)
    if sidecar.format != "onnx":
        raise DataError(onnx_path, f"the sidecar says format {sidecar.format!r}: build engines from ONNX models")
    return sidecar


def batch_profile(onnx_path: Path, name: str, shape: tuple[int, ...], sidecar: Sidecar, batch_opt: int | None,
                  batch_max: int | None) -> dict[str, Any] | None:
    """The optimization profile ``{"input", "min", "opt", "max"}`` (shapes) for a dynamic-batch input,
    None for a fixed one (then ``batch_opt``/``batch_max`` must be None)."""
    if shape[0] != -1:
        if sidecar.input.get("dynamic_batch"):
            raise DataError(onnx_path, f"the sidecar says dynamic batch but the model's input has batch {shape[0]}: "
                                       "the sidecar does not belong to this model")
        if batch_opt is not None or batch_max is not None:
            raise DataError(onnx_path, f"this model has a fixed batch of {shape[0]}; --batch-opt/--batch-max need a model "
                                       "exported with --dynamic-batch")
        return None
    rest = []
    for axis, dim in enumerate(shape[1:], start=1):
        recorded = sidecar.input["shape"][axis] if axis < len(sidecar.input["shape"]) else None
        if dim == -1 and not isinstance(recorded, int):
            raise DataError(onnx_path, f"input axis {axis} is dynamic and the sidecar gives no size for it")
        rest.append(int(recorded) if dim == -1 else int(dim))
    opt = 1 if batch_opt is None else int(batch_opt)
    top = max(DEFAULT_BATCH_MAX, opt) if batch_max is None else int(batch_max)
    if not 1 <= opt <= top:
        raise DataError(onnx_path, f"need 1 <= --batch-opt ({opt}) <= --batch-max ({top})")
    return {"input": name, "min": [1, *rest], "opt": [opt, *rest], "max": [top, *rest]}


# ----------------------------------------------------------------------------- TensorRT steps

def parse_onnx(trt: Any, builder: Any, logger: Any, onnx_path: Path) -> tuple[Any, Any]:
    """A strongly typed network parsed from the ONNX file -> (network, parser); DataError with the parser's errors."""
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [_parser_error(parser.get_error(i)) for i in range(parser.num_errors)]
        raise DataError(onnx_path, f"TensorRT {trt.__version__} cannot parse this ONNX model: "
                                   + (" | ".join(errors[:3]) or logged_errors(logger) or "no reason given"))
    return network, parser


def _parser_error(error: Any) -> str:
    """One ONNX parser error as text: node index, name and operator where known, and the description."""
    found = {}
    for attr in ("node", "node_name", "node_operator"):
        try:
            value = getattr(error, attr)()
        except Exception:  # noqa: BLE001 - older parsers lack some accessors
            continue
        if value not in (None, "", -1):
            found[attr] = str(value)
    named = ", ".join(found[k] for k in ("node_name", "node_operator") if k in found)
    where = f"node {found.get('node', '?')}" + (f" ({named})" if named else "") + ": " if found else ""
    return where + " ".join(str(error.desc()).split())


def load_timing_cache(config: Any, path: Path | None) -> dict[str, Any] | None:
    """Attach a timing cache to the builder config: the file's if it exists and fits this GPU/TensorRT,
    else a fresh one. Returns ``{"path", "status"}`` (status: loaded N bytes | new | replaced: why)."""
    if path is None:
        return None
    blob = path.read_bytes() if path.is_file() else b""
    status = f"loaded {len(blob)} bytes" if blob else "new"
    try:
        cache = config.create_timing_cache(blob)
        attached = cache is not None and config.set_timing_cache(cache, ignore_mismatch=False)
    except Exception:  # noqa: BLE001 - TensorRT raises on a corrupt blob in some versions
        attached = False
    if not attached:
        if not blob:
            raise EngineBuildError(f"{path}: TensorRT cannot create a timing cache")
        logging.getLogger("export.to_tensorrt").warning("%s: timing cache unreadable or made with another GPU or TensorRT version; "
                                                        "starting a fresh one (the file will be replaced)", path)
        status = "replaced: unreadable, or made with another GPU or TensorRT version"
        config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)
    return {"path": str(path), "status": status}


def save_timing_cache(config: Any, path: Path | None) -> None:
    if path is not None:
        atomic_write_bytes(path, bytes(memoryview(config.get_timing_cache().serialize())))


def set_tf32(trt: Any, config: Any, enabled: bool) -> None:
    """TF32 math for FP32 layers on/off (on by default in TensorRT; off keeps FP32 engines FP32)."""
    flag = getattr(trt.BuilderFlag, "TF32", None)
    if flag is not None:
        (config.set_flag if enabled else config.clear_flag)(flag)


def engine_sidecar(sidecar: Sidecar, onnx_path: Path, trt_version: str, gpu: dict[str, Any],
                   trt_extra: dict[str, Any]) -> Sidecar:
    """The engine's sidecar: the ONNX's, as format tensorrt, same precision, parent = the ONNX."""
    derived = sidecar.derived(format="tensorrt", gpu=gpu, tensorrt=trt_extra)
    for key in ONNX_ONLY_EXTRAS:
        derived.extra.pop(key, None)
    derived.source = {**sidecar.source, "parent": str(onnx_path), "parent_sha256": sha256_file(onnx_path)}
    derived.versions = {**sidecar.versions, **library_versions("cuda-python", "cuda-bindings"), "tensorrt": trt_version}
    return derived


# ----------------------------------------------------------------------------- the build

def build_engine(onnx_path: str | Path, out: str | Path, workspace_gb: float = DEFAULT_WORKSPACE_GB,
                 timing_cache: str | Path | None = None, batch_opt: int | None = None, batch_max: int | None = None,
                 verbose: bool = False, tf32: bool = False) -> dict[str, Any]:
    """Build ``out`` (+ sidecar) from ``onnx_path`` on this machine's GPU.

    ``workspace_gb``: builder workspace limit (GiB). ``batch_opt``/``batch_max``: the profile of a
    dynamic-batch model (default 1 / 8). Returns ``{"engine", "precision", "tensorrt", "gpu",
    "build_seconds", "engine_mb", "timing_cache", "profile"}``. Raises :class:`DataError` (bad
    input, unparsable ONNX), :class:`TensorRTUnavailable` (TensorRT, cuda-python or GPU missing),
    :class:`EngineBuildError` (the builder failed).
    """
    onnx_path, out = Path(onnx_path), Path(out)
    sidecar = validate_inputs(onnx_path, out)
    if workspace_gb <= 0:
        raise DataError(out, f"--workspace-gb must be positive, got {workspace_gb}")
    if timing_cache and Path(timing_cache).exists() and not Path(timing_cache).is_file():
        raise DataError(timing_cache, "the timing cache must be a file")
    problem = trt_available()
    if problem:
        raise TensorRTUnavailable(problem)
    trt = import_tensorrt()
    from runtime.backends import cuda_util

    gpu = cuda_util.gpu_info(0)
    logger = trt_logger(trt, verbose)
    logger.errors.clear()
    builder = trt.Builder(logger)
    network, _parser = parse_onnx(trt, builder, logger, onnx_path)
    if network.num_inputs != 1 or network.get_input(0).name != sidecar.input["name"]:
        raise DataError(onnx_path, "model and sidecar disagree on the input: the sidecar does not belong to this model")
    tensor = network.get_input(0)
    profile = batch_profile(onnx_path, tensor.name, tuple(int(d) for d in tensor.shape), sidecar, batch_opt, batch_max)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * 2**30))
    set_tf32(trt, config, tf32)
    if profile:
        opt_profile = builder.create_optimization_profile()
        opt_profile.set_shape(profile["input"], profile["min"], profile["opt"], profile["max"])
        config.add_optimization_profile(opt_profile)
    cache_path = Path(timing_cache) if timing_cache else None
    cache_info = load_timing_cache(config, cache_path)
    logger.errors.clear()
    start = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    seconds = round(time.perf_counter() - start, 1)
    if serialized is None:
        raise EngineBuildError(f"{onnx_path}: TensorRT {trt.__version__} could not build an engine on {gpu['name']} "
                               f"({logged_errors(logger) or 'no reason logged'}); try a larger --workspace-gb, or --verbose "
                               "for the builder's log")
    atomic_write_bytes(out, bytes(memoryview(serialized)))
    save_timing_cache(config, cache_path)
    trt_extra = {"version": trt.__version__, "strongly_typed": True, "tf32": bool(tf32), "workspace_gb": workspace_gb,
                 "timing_cache": cache_info, "build_seconds": seconds, "profile": profile,
                 "engine_bytes": out.stat().st_size, "engine_sha256": sha256_file(out)}
    engine_sidecar(sidecar, onnx_path, trt.__version__, gpu, trt_extra).write(out)
    return {"engine": str(out), "precision": sidecar.precision, "tensorrt": trt.__version__, "gpu": gpu,
            "build_seconds": seconds, "engine_mb": round(out.stat().st_size / 2**20, 2), "timing_cache": cache_info,
            "profile": profile}


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m export.to_tensorrt", description=__doc__.split("\n")[0])
    parser.add_argument("--onnx", required=True, help="M.onnx, M.fp16.onnx or M.int8.onnx (with its .json sidecar)")
    parser.add_argument("--out", required=True, help="M.<precision>.engine")
    parser.add_argument("--workspace-gb", type=positive_float, default=DEFAULT_WORKSPACE_GB, help="builder workspace limit (GiB)")
    parser.add_argument("--timing-cache", help="timing cache file, read if present and updated after the build")
    parser.add_argument("--batch-opt", type=positive_int, help="dynamic-batch models: the batch to tune for (default 1)")
    parser.add_argument("--batch-max", type=positive_int, help=f"dynamic-batch models: the largest batch (default {DEFAULT_BATCH_MAX})")
    parser.add_argument("--tf32", action="store_true", help="allow TF32 math in FP32 layers (Ampere and newer)")
    parser.add_argument("--verbose", action="store_true", help="print TensorRT's builder log")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        check_output_file(args.out, "engine", with_sidecars(args.onnx) + [args.timing_cache])
        result = build_engine(args.onnx, args.out, args.workspace_gb, args.timing_cache, args.batch_opt, args.batch_max,
                              args.verbose, args.tf32)
    except (DataError, TensorRTUnavailable, OSError) as err:
        return fail(err)
    except (EngineBuildError, CudaError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    gpu = result["gpu"]
    profile = result["profile"]
    print(f"{result['engine']}: {result['precision']} engine, TensorRT {result['tensorrt']}, {gpu['name']} "
          f"(compute capability {gpu['compute_capability']}), {result['engine_mb']} MiB, built in {result['build_seconds']} s"
          + (f", batch {profile['min'][0]}..{profile['max'][0]} (opt {profile['opt'][0]})" if profile else "")
          + (f"; timing cache {result['timing_cache']['status']}" if result["timing_cache"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
