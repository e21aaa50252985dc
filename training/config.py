"""Experiment configuration: YAML files over built-in defaults, overridable from the command line.

A config file may name another as ``base:`` (path relative to itself); values merge depth-first:
defaults <- base <- file <- ``--set section.key=value`` (values parsed as YAML). Unknown keys are
errors, so a typo never silently trains with a default. Files are read with ``yaml.safe_load``.
"""
from __future__ import annotations

import copy
import math
import os
from pathlib import Path
from typing import Any

import yaml

from runtime.classes import class_table
from runtime.decode import DecodeParams
from runtime.errors import non_finite
from runtime.preprocess import Preprocess

DEFAULTS: dict[str, Any] = {
    "name": "model",
    "dataset": {
        "name": "culane",
        "root": "data/culane",
        "train_list": "train_gt.txt",
        "val_list": "val_gt.txt",
        "num_workers": 2,
        "classes": "culane",  # class table (runtime/classes.py): culane (4 lanes + background, existence head) | apolloscape (36 marking classes)
        "skip_bad": False,  # true: malformed list lines and samples with bad files (missing, truncated, bad labels) are left out and listed in the log
    },
    "input": Preprocess().to_dict(),
    "model": {
        "arch": "erfnet",  # erfnet | pspnet
        "input": "image",  # image | label (LGAD's teacher: reads the one-hot label map, ERFNet only)
        "depth": 101,  # pspnet: ResNet depth 18/34/50/101
        "head_channels": 512,  # pspnet: pyramid-pooling bottleneck width
        "output_stride": 8,  # pspnet: 8 (PSPNet's, layer3 and layer4 dilated) or 16 (layer4 only; ~3x cheaper)
        "decoder_channels": 0,  # pspnet: > 0 fuses the head with layer1 (1/4) before the classifier (DeepLabv3+-style); 0 none
        "dropout": 0.1,
        "pretrained": None,  # pspnet: local torchvision ImageNet .pth; erfnet: an ERFNet-CULane checkpoint
        "freeze_bn": False,
    },
    "loss": {"background_weight": 0.4, "exist_weight": 0.1},
    "augment": {
        "enabled": True,
        "scale": [0.9, 1.1],  # random rescale of the cropped image around the network size
        "rotation": 2.0,  # degrees, uniform in +-rotation
        "brightness": 0.25,
        "contrast": 0.25,
        "saturation": 0.25,
        "hue": 4.0,  # degrees of hue shift (OpenCV's 0..180 scale is handled inside)
        # Newer keys, off here (the paper recipe); the synthetic configs turn them on. Details and
        # order: training/data/augment.py.
        "flip": 0.0,  # probability of a horizontal mirror (lane IDs 1<->4, 2<->3, flags reversed)
        "shift": 0.0,  # horizontal translation, uniform in +-shift x network width (pad: image 0, label 255)
        "blur_p": 0.0,  # probability of a Gaussian blur ...
        "blur_sigma": 1.0,  # ... of sigma uniform in (0, blur_sigma] network pixels
        "noise_std": 0.0,  # additive Gaussian noise, std uniform in [0, noise_std] (0..255 units), luma + chroma
        "jpeg_p": 0.0,  # probability of a JPEG re-compression ...
        "jpeg_quality": [60, 95],  # ... at a quality uniform in [lo, hi] (integers, 1..100; at 40 distant dashes vanish at 320x64)
        "camera_p": 0.0,  # probability of another camera's view (a homography: training/data/augment.py camera_homography) ...
        "camera_pitch": 3.0,  # ... pitch uniform in +-degrees
        "camera_yaw": 3.0,  # ... yaw uniform in +-degrees
        "camera_height": [0.8, 1.25],  # ... height factor, log-uniform
        "camera_focal": [0.85, 1.18],  # ... focal-length factor, log-uniform
        "camera_f": 1000.0,  # ... the nominal focal length (source pixels) the rotation assumes
    },
    "train": {
        "iterations": 80000,
        "batch_size": 12,  # global: split over DDP processes
        "optimizer": "sgd",  # sgd (the paper's) | adamw
        "lr": 0.01,
        "momentum": 0.9,
        "weight_decay": 1e-4,
        "poly_power": 0.9,
        "warmup_iters": 200,
        "warmup_factor": 0.1,
        "amp": True,  # CUDA only
        "cpu_bf16": False,  # CPU: bfloat16 autocast (true | false | auto: when the CPU has native bf16)
        "seed": 0,
        "log_every": 20,
        "val_every": 2000,
        "checkpoint_every": 1000,
        "max_val_images": None,  # validate on a subset (None: the whole list)
        "threads": None,  # CPU: torch threads per process (None: torch's default)
    },
    "decode": DecodeParams().to_dict(),
    "distill": None,
    "output": {"dir": None},  # default: runs/<dataset.name>/<name>
}


class ConfigError(ValueError):
    """A config file or override that cannot be used; the message names the file or key."""


FREEFORM = {"distill"}
"""Sections whose keys are checked by their own code (``training.distill.distiller.resolve``)."""


def _merge(base: dict[str, Any], update: dict[str, Any], source: str, path: str = "") -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in update.items():
        where = f"{path}{key}"
        if key not in out:
            raise ConfigError(f"{source}: unknown config key '{where}'")
        if not path and key in FREEFORM:
            out[key] = _merge_free(out[key], value)
        elif isinstance(out[key], dict) and isinstance(value, dict):
            out[key] = _merge(out[key], value, source, where + ".")
        else:
            out[key] = copy.deepcopy(value)
    return out


def _merge_free(base: Any, update: Any) -> Any:
    """A FREEFORM section merged key by key at every depth (its keys are checked by its own code): two
    ``--set distill.weights.<method>=...`` keep both (a shallow merge kept only the last); lists and
    values replace."""
    if not (isinstance(base, dict) and isinstance(update, dict)):
        return copy.deepcopy(update)
    out = copy.deepcopy(base)
    for key, value in update.items():
        out[key] = _merge_free(out.get(key), value)
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML ({err.__class__.__name__}: {str(err).splitlines()[0]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping, got {type(data).__name__}")
    return data


def _load_file(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"{path}: 'base' chain loops")
    data = _read_yaml(path)
    base = data.pop("base", None)
    merged = DEFAULTS if base is None else _load_file(path.parent / base, seen + (path,))
    return _merge(merged, data, str(path))


def parse_override(item: str) -> dict[str, Any]:
    """``a.b.c=value`` -> ``{"a": {"b": {"c": value}}}`` with ``value`` parsed as YAML."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected key=value")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw != "" else None
    except yaml.YAMLError:
        raise ConfigError(f"--set {item!r}: value is not valid YAML") from None
    if isinstance(value, str):
        try:
            value = float(value)  # YAML 1.1 reads 1e-3 (no dot) as a string
        except ValueError:
            pass
    out: dict[str, Any] = {}
    node = out
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def load_config(path: str | os.PathLike[str] | None, overrides: list[str] = ()) -> dict[str, Any]:
    """Resolve a config: defaults, the file (and its bases), then ``--set`` overrides."""
    config = DEFAULTS if path is None else _load_file(Path(path))
    for item in overrides:
        config = _merge(config, parse_override(item), f"--set {item}")
    validate(config)
    return config


def validate(config: dict[str, Any]) -> None:
    """Checks that are cheap and catch real mistakes early (one line, naming the key)."""
    bad = non_finite(config)
    if bad:
        raise ConfigError(f"{bad[0]}: {bad[1]} (every number in a config must be finite)")
    try:
        Preprocess.from_dict(config["input"])
        DecodeParams.from_dict(config["decode"])
    except (TypeError, ValueError) as err:
        raise ConfigError(f"input/decode: {err}") from None
    try:
        class_table(config["dataset"]["classes"])
    except ValueError as err:
        raise ConfigError(f"dataset.classes: {err}") from None
    if config["model"]["arch"] not in ("erfnet", "pspnet"):
        raise ConfigError(f"model.arch: expected erfnet or pspnet, got {config['model']['arch']!r}")
    if config["model"]["output_stride"] not in (8, 16):
        raise ConfigError(f"model.output_stride: expected 8 or 16, got {config['model']['output_stride']!r}")
    decoder = config["model"]["decoder_channels"]
    if isinstance(decoder, bool) or not isinstance(decoder, int) or decoder < 0:
        raise ConfigError(f"model.decoder_channels: expected a non-negative integer, got {decoder!r}")
    size = (config["input"]["net_width"], config["input"]["net_height"])
    if any(v % 16 for v in size):  # both networks check it too (ERFNet and PSPNet constructors)
        raise ConfigError(f"input.net_width x input.net_height = {size[0]}x{size[1]}: {config['model']['arch']} needs multiples of 16")
    if config["model"]["input"] not in ("image", "label"):
        raise ConfigError(f"model.input: expected image or label, got {config['model']['input']!r}")
    if config["model"]["input"] == "label" and config["model"]["arch"] != "erfnet":
        raise ConfigError("model.input: label input is for ERFNet (LGAD's teacher has the student's architecture)")
    try:
        from training.distill.distiller import resolve

        resolve(config.get("distill"))
    except ValueError as err:
        raise ConfigError(str(err)) from None
    validate_augment(config["augment"])
    train = config["train"]
    for key in ("iterations", "batch_size"):
        if not isinstance(train[key], int) or train[key] < 1:
            raise ConfigError(f"train.{key}: expected a positive integer, got {train[key]!r}")
    for key in ("lr", "momentum", "weight_decay", "poly_power", "warmup_factor"):
        if isinstance(train[key], bool) or not isinstance(train[key], (int, float)):
            raise ConfigError(f"train.{key}: expected a number, got {train[key]!r}")
    if train["cpu_bf16"] not in (True, False, "auto"):
        raise ConfigError(f"train.cpu_bf16: expected true, false or auto, got {train['cpu_bf16']!r}")
    if train["optimizer"] not in ("sgd", "adamw"):
        raise ConfigError(f"train.optimizer: expected sgd or adamw, got {train['optimizer']!r}")
    if not train["lr"] > 0:
        raise ConfigError(f"train.lr: expected > 0, got {train['lr']!r}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _number_range(key: str, value: Any, lo: float, hi: float = math.inf) -> None:
    if not _is_number(value) or not lo <= value <= hi:
        bounds = f"in [{lo:g}, {hi:g}]" if hi < math.inf else f">= {lo:g}"
        raise ConfigError(f"augment.{key}: expected a number {bounds}, got {value!r}")


def _pair(key: str, value: Any, lo: float, hi: float, integers: bool = False) -> None:
    kind = int if integers else (int, float)
    ok = (isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, kind) and not isinstance(v, bool) for v in value)
          and all(_is_number(v) and lo <= v <= hi for v in value) and value[0] <= value[1])
    if not ok:
        what = "integers" if integers else "numbers"
        raise ConfigError(f"augment.{key}: expected [lo, hi], {what} with {lo:g} <= lo <= hi <= {hi:g}, got {value!r}")


def validate_augment(aug: dict[str, Any]) -> None:
    """The ``augment`` section: probabilities in [0, 1], magnitudes >= 0, ranges ordered."""
    if not isinstance(aug["enabled"], bool):
        raise ConfigError(f"augment.enabled: expected true or false, got {aug['enabled']!r}")
    _pair("scale", aug["scale"], 0.1, 10.0)
    for key in ("flip", "blur_p", "jpeg_p"):
        _number_range(key, aug[key], 0.0, 1.0)
    for key in ("brightness", "contrast", "saturation"):
        _number_range(key, aug[key], 0.0, 1.0)  # factors 1 +- x stay >= 0
    for key in ("rotation", "hue", "noise_std"):
        _number_range(key, aug[key], 0.0)
    _number_range("shift", aug["shift"], 0.0, 0.5)
    if not (_is_number(aug["blur_sigma"]) and aug["blur_sigma"] > 0):
        raise ConfigError(f"augment.blur_sigma: expected a number > 0 (network pixels), got {aug['blur_sigma']!r}")
    _pair("jpeg_quality", aug["jpeg_quality"], 1, 100, integers=True)
    _number_range("camera_p", aug["camera_p"], 0.0, 1.0)
    for key in ("camera_pitch", "camera_yaw"):
        _number_range(key, aug[key], 0.0, 30.0)
    for key in ("camera_height", "camera_focal"):
        _pair(key, aug[key], 0.25, 4.0)
    _number_range("camera_f", aug["camera_f"], 1.0)


def with_defaults(config: dict[str, Any], source: str = "checkpoint") -> dict[str, Any]:
    """A stored config (e.g. a checkpoint's, written before newer keys existed) completed with
    today's defaults, so that comparing it to a fresh config shows only real differences."""
    try:
        return _merge(DEFAULTS, config, source)
    except ConfigError:
        return config


def run_dir(config: dict[str, Any]) -> Path:
    """Where a run writes its checkpoints and logs."""
    return Path(config["output"]["dir"] or Path("runs") / config["dataset"]["name"] / config["name"])


def dump(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=False)
