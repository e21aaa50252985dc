"""Training scalars: a CSV file (always), TensorBoard events (when installed), PNG curves at the end."""
from __future__ import annotations

import csv
import math
from pathlib import Path

from runtime.atomic import atomic_write_text


class ScalarLog:
    """Append-only rows ``iteration, key, value`` in ``scalars.csv``; on resume, rows after the
    resumed iteration (written after the last checkpoint) are dropped first."""

    def __init__(self, directory: Path, resume_from: int = 0) -> None:
        self.path = directory / "scalars.csv"
        rows = []
        if self.path.exists() and resume_from > 0:
            with open(self.path, newline="") as handle:
                rows = [r for r in csv.reader(handle)][1:]
            rows = [r for r in rows if len(r) == 3 and int(r[0]) <= resume_from]
        atomic_write_text(self.path, "iteration,key,value\n" + "".join(f"{r[0]},{r[1]},{r[2]}\n" for r in rows))
        self._handle = open(self.path, "a", newline="")
        self._writer = csv.writer(self._handle)
        self._tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(directory / "tensorboard"), purge_step=resume_from or None)
        except Exception:  # tensorboard is optional
            self._tb = None

    def add(self, iteration: int, values: dict[str, float]) -> None:
        for key, value in values.items():
            self._writer.writerow([iteration, key, f"{value:.6g}"])
            if self._tb is not None:
                self._tb.add_scalar(key, value, iteration)
        self._handle.flush()

    @property
    def closed(self) -> bool:
        return self._handle.closed

    def close(self) -> None:
        self._handle.close()
        if self._tb is not None:
            self._tb.close()


def read_scalars(path: Path) -> dict[str, list[tuple[int, float]]]:
    series: dict[str, list[tuple[int, float]]] = {}
    with open(path, newline="") as handle:
        for row in list(csv.reader(handle))[1:]:
            series.setdefault(row[1], []).append((int(row[0]), float(row[2])))
    return series


def plot_curves(csv_path: Path, png_path: Path, title: str = "") -> Path | None:
    """Loss, learning rate and validation F1 against iterations, one panel each."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    series = read_scalars(csv_path)
    panels = [k for k in ("loss/total", "loss/seg", "loss/exist") if k in series]
    panels += sorted(k for k in series if k.startswith("distill/"))
    panels += [k for k in ("lr", "val/f1", "val/miou") if k in series]
    if not panels:
        return None
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax, key in zip(axes.flat, panels):
        its, vals = zip(*series[key])
        ax.plot(its, vals, marker="o" if key.startswith("val") else None, ms=3)
        ax.set_title(key)
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    tmp = png_path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(png_path)
    return png_path
