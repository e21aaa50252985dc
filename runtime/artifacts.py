"""Deployable artifacts and their JSON sidecars (one definition, used by export and runtime).

Every artifact ``X`` (``model.onnx``, ``model.int8.onnx``, ``model.fp16.engine``, ``model.pt2``)
has a sidecar ``X.json`` that tells a deployment everything it needs without the training code::

    {
      "format": "onnx" | "tensorrt" | "torch.export",
      "precision": "fp32" | "fp16" | "int8",
      "model": {"name", "arch", "params", "role"},
      "input": {"name", "shape", "dtype", "dynamic_batch"},
      "outputs": [{"name", "shape", "dtype", "kind"}],      # kind: seg_prob | seg_logits | exist_prob
      "class_table": "culane" | "apolloscape",              # runtime.classes; absent (old sidecars): culane
      "classes": ["background", "lane1", "lane2", "lane3", "lane4"],   # the table's names
      "preprocess": Preprocess.to_dict(),
      "decode": DecodeParams.to_dict(),
      "source": {"checkpoint", "sha256", "iteration", "parent"},  # parent: the artifact it was made from
      "versions": {...}, "created": ISO time, ... (tool-specific extras: parity, calibration, gpu)
    }

Outputs follow the class table's task: a lane model (``culane``: existence head) has a seg output
(N, 5, h, w) and ``exist_prob`` (N, 4); a marking model (``apolloscape``) has one seg output
(N, 36, h, w) and no ``exist_prob``. ``decode`` is kept for every model (unused by markings).
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from runtime.atomic import atomic_write_json
from runtime.classes import TABLES, ClassTable, class_table
from runtime.decode import DecodeParams
from runtime.errors import DataError, non_finite
from runtime.preprocess import Preprocess

CLASSES = ["background", "lane1", "lane2", "lane3", "lane4"]
FORMATS = ("onnx", "tensorrt", "torch.export")
PRECISIONS = ("fp32", "fp16", "int8")
OUTPUT_KINDS = ("seg_prob", "seg_logits", "exist_prob")


def sidecar_path(artifact: str | os.PathLike[str]) -> Path:
    return Path(f"{os.fspath(artifact)}.json")


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def library_versions(*names: str) -> dict[str, str]:
    """Versions of the named Python packages that are importable (others are left out)."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class Sidecar:
    format: str
    precision: str
    model: dict[str, Any]
    input: dict[str, Any]
    outputs: list[dict[str, Any]]
    preprocess: dict[str, Any]
    decode: dict[str, Any]
    source: dict[str, Any]
    classes: list[str] = field(default_factory=lambda: list(CLASSES))
    class_table: str = "culane"
    versions: dict[str, str] = field(default_factory=dict)
    created: str = field(default_factory=now)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in ("format", "precision", "model", "input", "outputs", "class_table", "classes",
                                              "preprocess", "decode", "source", "versions", "created")}
        data.update(self.extra)
        return data

    @property
    def pre(self) -> Preprocess:
        return Preprocess.from_dict(self.preprocess)

    @property
    def table(self) -> ClassTable:
        """What the seg channels mean (:mod:`runtime.classes`); culane for sidecars older than the field."""
        return class_table(self.class_table)

    @property
    def decode_params(self) -> DecodeParams:
        return DecodeParams.from_dict(self.decode)

    def output(self, kind: str) -> dict[str, Any] | None:
        return next((o for o in self.outputs if o.get("kind") == kind), None)

    def write(self, artifact: str | os.PathLike[str]) -> Path:
        return atomic_write_json(sidecar_path(artifact), self.to_dict())

    def derived(self, **changes: Any) -> "Sidecar":
        """A copy for an artifact made from this one (FP16, INT8, engine)."""
        data = json.loads(json.dumps(self.to_dict()))
        known = {k: data.pop(k) for k in list(data) if k in self.__dataclass_fields__}
        sidecar = Sidecar(**known, extra=data)
        for key, value in changes.items():
            if key in self.__dataclass_fields__:
                setattr(sidecar, key, value)
            else:
                sidecar.extra[key] = value
        sidecar.created = now()
        return sidecar


REQUIRED = ("format", "precision", "model", "input", "outputs", "preprocess", "decode", "source")


def read_sidecar(artifact: str | os.PathLike[str]) -> Sidecar:
    """The sidecar of an artifact; :class:`DataError` naming the file if missing or malformed."""
    path = sidecar_path(artifact)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(path, f"sidecar not found: every artifact needs its {path.name} (written by the export tools)") from None
    except (OSError, ValueError) as err:
        raise DataError(path, f"unreadable sidecar ({err.__class__.__name__}: {err})") from None
    if not isinstance(data, dict):
        raise DataError(path, "sidecar must be a JSON object")
    bad = non_finite(data)
    if bad:
        raise DataError(path, f"{bad[0]}: {bad[1]} (every number in a sidecar must be finite)")
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise DataError(path, f"sidecar lacks {', '.join(missing)}")
    wrong = [k for k, kind in (("model", dict), ("input", dict), ("outputs", list), ("preprocess", dict), ("decode", dict),
                               ("source", dict)) if not isinstance(data[k], kind)]
    if wrong:
        raise DataError(path, f"sidecar fields of the wrong type: {', '.join(wrong)} (model, input, preprocess, decode and "
                              "source are objects, outputs a list)")
    if data["format"] not in FORMATS or data["precision"] not in PRECISIONS:
        raise DataError(path, f"unknown format/precision {data['format']!r}/{data['precision']!r}")
    try:
        pre = Preprocess.from_dict(data["preprocess"])
        DecodeParams.from_dict(data["decode"])
    except (TypeError, ValueError) as err:
        raise DataError(path, f"bad preprocess/decode parameters: {err}") from None
    shape = data["input"].get("shape")
    if not isinstance(shape, list) or len(shape) != 4 or shape[1:] != [3, pre.net_height, pre.net_width]:
        raise DataError(path, f"input.shape {shape} does not match its preprocess (network input 3x{pre.net_height}x{pre.net_width}): "
                              "the sidecar was edited or belongs to another export")
    if not isinstance(data["input"].get("name"), str):
        raise DataError(path, "input.name must be the model's input name")
    if not data["outputs"] or not all(isinstance(o, dict) and "name" in o and "kind" in o for o in data["outputs"]):
        raise DataError(path, "outputs must be a list of {name, kind, ...} objects")
    table = _table(path, data.get("class_table", "culane"))
    _check_outputs(path, table, data["outputs"])
    known = {k: data.pop(k) for k in list(data) if k in Sidecar.__dataclass_fields__ and k != "extra"}
    return Sidecar(**known, extra=data)


def _table(path: Path, name: Any) -> ClassTable:
    """The sidecar's class table; :class:`DataError` naming the file for an unknown one."""
    try:
        return class_table(name)
    except ValueError:
        raise DataError(path, f"unknown class_table {name!r}; known: {', '.join(TABLES)}") from None


def _check_outputs(path: Path, table: ClassTable, outputs: list[dict[str, Any]]) -> None:
    """Output kinds as the table's task needs them: one seg output (seg_prob or seg_logits) with
    the table's channel count (when its shape says), plus exist_prob exactly when the table has an
    existence head."""
    kinds = [o["kind"] for o in outputs]
    seg = [o for o in outputs if o["kind"] in ("seg_prob", "seg_logits")]
    if any(k not in OUTPUT_KINDS for k in kinds) or len(seg) != 1 or len(kinds) != len(set(kinds)):
        raise DataError(path, f"output kinds {kinds}: expected one of seg_prob, seg_logits"
                              + (" and exist_prob" if table.existence else ""))
    if table.existence and "exist_prob" not in kinds:
        raise DataError(path, f"output kinds {kinds}: a {table.name!r} ({table.task}) model needs exist_prob too")
    if not table.existence and "exist_prob" in kinds:
        raise DataError(path, f"output kinds {kinds}: a {table.name!r} ({table.task}) model has no existence head, "
                              "so no exist_prob: the sidecar was edited or belongs to another export")
    shape = seg[0].get("shape")
    if isinstance(shape, list) and len(shape) == 4 and isinstance(shape[1], int) and shape[1] != table.num_classes:
        raise DataError(path, f"output {seg[0]['name']!r} has {shape[1]} channels, the {table.name!r} table "
                              f"{table.num_classes} classes")
