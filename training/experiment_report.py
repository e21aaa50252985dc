"""What the reports of distillation experiments share, lanes (:mod:`training.experiments`) and road
markings (:mod:`training.marking_report`): the method labels, the notes under the tables, mean ± std
over seeds and the comparison plot."""
from __future__ import annotations

import io
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from runtime.atomic import atomic_write_bytes
from training.distill.distiller import LGAD_NOTE

LABELS = {
    "baseline": ("S", "ERFNet (student alone)"),
    "kd": ("TSD", "ERFNet-KD"),
    "at": ("TSD", "ERFNet-AT"),
    "skd": ("TSD", "ERFNet-SKD"),
    "lgad": ("TSD", "ERFNet-LGAD"),
    "intra_kd": ("TSD", "ERFNet-IntRA-KD (+AT)"),
    "intra_kd_only": ("TSD", "ERFNet-IntRA-KD (L_m only)"),
    "intra_kd_nofloor": ("TSD", "ERFNet-IntRA-KD (+AT), no skew floor"),
    "intra_kd_only_nofloor": ("TSD", "ERFNet-IntRA-KD (L_m only), no skew floor"),
    "skd_no_gan": ("TSD", "ERFNet-SKD (pixel + pair)"),
}

# What each row is, printed under the report's tables for the methods it holds.
METHOD_NOTES = {
    "kd": "KD: Hinton's per-pixel KL at the experiment's temperature, on the segmentation logits.",
    "at": "AT: attention transfer (Zagoruyko & Komodakis) on IntRA-KD's layer pairs, weight 0.1 (IntRA-KD eq. 5, alpha_2).",
    "intra_kd": "IntRA-KD: inter-region affinity graphs of per-class AOI moments (mean, variance, skewness) "
                "after the paper's equations (the official code never published the loss), moments exact in float32 "
                "(two passes), skew floor 0.01 unless the row says otherwise; see training/distill/intra_kd.py.",
    "skd": "SKD: pixel-wise, pair-wise and holistic (WGAN-GP) terms with the authors' code's update order "
           "(student step, then one discriminator step), weights 10 / 0.5 / 0.1 and pair pooling; the differences "
           "that remain are listed in training/distill/skd.py.",
    "lgad": LGAD_NOTE,
}


def method_notes(methods: list[str]) -> str:
    """A 'Methods' section for the report: one paragraph per method family present."""
    families = [f for f in METHOD_NOTES if any(m == f or m.startswith(f + "_") for m in methods)]
    if not families:
        return ""
    return "## Methods\n\n" + "\n\n".join(f"- {METHOD_NOTES[f]}" for f in families) + "\n"


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value): a row over seeds."""
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def comparison_plot(panels: list[tuple[str, list[tuple[str, str, list[float]]], list[dict[str, Any]]]], path: Path, title: str,
                    metric: str = "total F1") -> None:
    """One row per evaluation set: ``metric`` (%) per model (bar = mean, dots = seeds, whisker = std) and
    the paired difference to the student alone (dot = mean of per-seed differences, thick = 95 %
    interval over seeds, thin = over test images where a row has ``image_ci``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = max(len(totals) for _, totals, _ in panels)
    fig, axes = plt.subplots(len(panels), 2, figsize=(1.1 * width + 8, 3.6 * len(panels)), squeeze=False,
                             gridspec_kw={"width_ratios": [max(width, 1), 6]})
    colors = {"T": "#888888", "S": "#4c72b0", "TSD": "#dd8452"}
    for (name, totals, paired), (left, right) in zip(panels, axes):
        means = [statistics.mean(v) for _, _, v in totals]
        stds = [statistics.stdev(v) if len(v) > 1 else 0.0 for _, _, v in totals]
        left.bar(range(len(totals)), means, yerr=stds, capsize=3, color=[colors.get(k, "#dd8452") for k, _, _ in totals])
        for i, (_, _, values) in enumerate(totals):
            left.plot([i] * len(values), values, "k.", markersize=4)
            left.text(i, max(values) + 0.6, f"{means[i]:.1f}", ha="center", fontsize=8)
        left.set_xticks(range(len(totals)), [label.replace("ERFNet-", "").replace(" (", "\n(") for _, label, _ in totals],
                        fontsize=7, rotation=30, ha="right")
        left.set_ylabel(f"{metric} (%)")
        left.set_title(f"{name}: {metric} per model", fontsize=10)
        left.grid(axis="y", alpha=0.3)
        y = np.arange(len(paired))[::-1]
        for yi, r in zip(y, paired):
            right.plot(r["seed_ci"], [yi, yi], color="#dd8452", linewidth=5, alpha=0.7, label="over seeds" if yi == y[0] else None)
            if r.get("image_ci"):
                right.plot(r["image_ci"], [yi - 0.2, yi - 0.2], color="#333333", linewidth=1.2, label="over test images" if yi == y[0] else None)
            right.plot([r["diff"]], [yi], "ko", markersize=4)
        right.axvline(0, color="k", linewidth=0.8)
        right.set_ylim(-0.7, max(len(paired), 1) - 0.3)
        if paired:
            right.legend(fontsize=7, loc="lower right")
        right.set_yticks(y, [r["algorithm"].replace("ERFNet-", "") for r in paired], fontsize=7)
        right.set_xlabel(f"{metric} points vs the student alone")
        right.set_title(f"{name}: paired difference, 95 % intervals", fontsize=10)
        right.grid(axis="x", alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
