"""The LLAMAS part of a lane summary: each model's official segmentation mAP (``reports/<ds>/map/*.json``,
written by ``lanedata.llamas.evaluate``) beside the paper's Table 4."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.report import read_json

PAPER_MAP = {"ResNet-101 teacher": 0.607, "ERFNet alone": 0.570, "ERFNet-IntRA-KD": 0.598}  # IntRA-KD, Table 4 (LLAMAS-test, its split)
ROLES = {"teacher.fp32": "teacher (ResNet + PSP)", "student_alone.fp32": "student alone (ERFNet)",
         "student.fp32": "student IntRA-KD + AT (ERFNet)"}


def map_section(reports: Path) -> dict[str, Any] | None:
    """{model: {mAP, ap {class: AP}, images}} from ``reports/map``, or None without any report."""
    folder = reports / "map"
    out = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        report = read_json(path)
        if report is None:
            continue
        out[path.stem] = {"mAP": report["mAP"], "ap": {name: row["ap"] for name, row in report["classes"].items()},
                          "images": report["images"]}
    return out or None


def map_markdown(section: dict[str, Any] | None) -> list[str]:
    """The "LLAMAS mAP" section: the three models first, then the student's other artifacts."""
    if not section:
        return []
    classes = list(next(iter(section.values()))["ap"])
    order = [m for m in ROLES if m in section] + sorted(m for m in section if m not in ROLES)
    lines = ["## LLAMAS: the official segmentation mAP (test split)", "",
             "Per image average precision of each lane class (the official `binary_approx_auc` over 101 thresholds on the "
             "probability maps at 1276x717), averaged over images; mAP over l1, l0, r0, r1 (`lanedata.llamas.evaluate`).", "",
             "| model | mAP | " + " | ".join(f"AP {c}" for c in classes) + " | images |", "|---|---:|" + "---:|" * len(classes) + "---:|"]
    for name in order:
        m = section[name]
        label = f"**{ROLES[name]}**" if name in ROLES else name
        lines.append(f"| {label} | {m['mAP']:.3f} | " + " | ".join(f"{m['ap'][c]:.3f}" for c in classes) + f" | {m['images']} |")
    lines += ["", f"Paper (LLAMAS-test of its own split, Table 4): {', '.join(f'{k} {v:.3f}' for k, v in PAPER_MAP.items())}.", ""]
    return lines
