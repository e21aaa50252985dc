"""Teacher vs student latency: a Markdown table, a plot and a JSON of the figures.

    python runtime/compare_latency.py TEACHER.json STUDENT.json --out reports/<dataset>/latency.md

Reads two latency reports, each either a ``runtime.benchmark`` report (``"kind": "benchmark"``,
series ``host``) or a video-loop report (``"kind": "video"``, series ``infer_host``); the series
compared is the one named by the report's ``latency_key``. Writes, atomically:

- ``latency.md``: rows teacher, student and the paper's reference (IntRA-KD, CVPR 2020: ResNet-101
  171.2 ms vs ERFNet 10.2 ms, 16.8x, GTX TITAN X Maxwell); columns model, role, precision, backend,
  device, params (M), size (MB), p50/p90/p99 (ms), FPS (1000 / mean), speed-up (teacher p50 /
  student p50); a warning when the two ran on different devices/backends (not like for like);
- ``latency.png`` beside it: both latency distributions (box plots, log axis, p50 marked);
- ``latency.json`` beside it: the figures (p50s, ratio_p50, backends, devices, warnings).

Bad inputs (missing file, not JSON, missing keys; the reports' model roles swapped or equal; different
input sizes; an output that cannot be written or would overwrite an input) print
``error: <file>: <problem>`` and exit 2, before anything is written.
"""
from __future__ import annotations

import io
import json
import math
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtime.artifacts import now
from runtime.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from runtime.cli import Parser, check_output_file, fail
from runtime.errors import DataError

KINDS = ("benchmark", "video")
STATS = ("p50", "p90", "p99", "mean")
PAPER = {
    "source": "IntRA-KD (Hou et al., CVPR 2020), Table 3 and text",
    "teacher": {"arch": "ResNet-101", "ms": 171.2, "params_m": 52.53},
    "student": {"arch": "ERFNet", "ms": 10.2, "params_m": 2.49},
    "ratio": 171.2 / 10.2,
    "device": "GeForce GTX TITAN X (Maxwell)",
    "statistic": "mean over 100 samples",
}
# Fields that must match for the speed-up to compare like with like.
LIKE_FOR_LIKE = ("backend", "device", "device_name", "threads")


# -- reading ----------------------------------------------------------------------------------
def _require(data: dict[str, Any], path: Path, dotted: str) -> Any:
    """``data[a][b]...`` for ``dotted`` = "a.b..."; :class:`DataError` naming the missing key."""
    value: Any = data
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            raise DataError(path, f"not a latency report: missing key '{dotted}'")
        value = value[key]
    return value


def _number(value: Any, path: Path, dotted: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DataError(path, f"'{dotted}' must be a finite number, got {value!r}")
    return float(value)


def load_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A benchmark or video latency report, checked for what the comparison reads."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(path, "report file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(path, f"unreadable ({err.__class__.__name__}: {err})") from None
    except ValueError as err:
        raise DataError(path, f"not JSON ({err})") from None
    if not isinstance(data, dict):
        raise DataError(path, "a latency report must be a JSON object")
    if _require(data, path, "kind") not in KINDS:
        raise DataError(path, f"unknown report kind {data['kind']!r}; expected one of {', '.join(KINDS)}")
    key = _require(data, path, "latency_key")
    if not isinstance(key, str) or not key or "." in key:
        raise DataError(path, f"'latency_key' must name a series, got {key!r}")
    for dotted in ("meta.backend", "meta.device"):
        _require(data, path, dotted)
    for stat in STATS:
        _number(_require(data, path, f"summary.{key}.{stat}"), path, f"summary.{key}.{stat}")
    if _number(data["summary"][key]["p50"], path, f"summary.{key}.p50") <= 0:
        raise DataError(path, f"'summary.{key}.p50' must be > 0 ms")
    records = _require(data, path, "records")
    if not isinstance(records, list) or not any(isinstance(r, dict) and key in r for r in records):
        raise DataError(path, f"'records' holds no '{key}' times")
    data["_path"] = str(path)
    return data


def series(report: dict[str, Any]) -> list[float]:
    """The compared per-iteration times (ms) of a report."""
    key = report["latency_key"]
    return [float(r[key]) for r in report["records"] if isinstance(r, dict) and isinstance(r.get(key), (int, float))]


def stats(report: dict[str, Any]) -> dict[str, float]:
    """p50, p90, p99, mean (ms) and fps (1000 / mean) of the compared series."""
    summary = report["summary"][report["latency_key"]]
    out = {k: float(summary[k]) for k in STATS}
    out["fps"] = 1000.0 / out["mean"] if out["mean"] > 0 else float("inf")
    return out


def pipeline_fps(report: dict[str, Any]) -> float | None:
    """End-to-end FPS of a video report (its ``total`` series), else None."""
    total = report.get("summary", {}).get("total")
    if report["kind"] != "video" or not isinstance(total, dict) or not total.get("mean"):
        return None
    return 1000.0 / float(total["mean"])


def mismatches(teacher: dict[str, Any], student: dict[str, Any]) -> list[str]:
    """Human-readable differences that make the teacher/student ratio not like for like."""
    out = []
    for key in LIKE_FOR_LIKE:
        a, b = teacher["meta"].get(key), student["meta"].get(key)
        if a != b:
            out.append(f"{key}: {a} vs {b}")
    if teacher["kind"] != student["kind"]:
        out.append(f"measurement: {teacher['kind']} ({teacher['latency_key']}) vs {student['kind']} ({student['latency_key']})")
    shape_a, shape_b = teacher["meta"].get("input_shape"), student["meta"].get("input_shape")
    if shape_a and shape_b and shape_a[0] != shape_b[0]:
        out.append(f"batch: {shape_a[0]} vs {shape_b[0]}")
    return out


def check_pair(teacher: dict[str, Any], student: dict[str, Any]) -> None:
    """Refuse a comparison that cannot mean teacher vs student: roles swapped or the same (from the
    reports' ``meta.role``, where the sidecar recorded one), or different input sizes (C, h, w)."""
    t_path, s_path = teacher["_path"], student["_path"]
    if Path(t_path).resolve() == Path(s_path).resolve():
        raise DataError(s_path, "the same report twice: pass the teacher's report, then the student's")
    t_role, s_role = teacher["meta"].get("role"), student["meta"].get("role")
    if t_role == "student" and s_role == "teacher":
        raise DataError(t_path, "this is the student's report and the second is the teacher's: pass TEACHER.json first")
    if t_role is not None and t_role == s_role:
        raise DataError(s_path, f"both reports are of a {t_role} model ({t_path} too): compare a teacher with a student")
    for path, role, expected in ((t_path, t_role, "teacher"), (s_path, s_role, "student")):
        if role is not None and role != expected:
            raise DataError(path, f"passed as the {expected}'s report, but its model's role is {role!r}")
    t_shape, s_shape = teacher["meta"].get("input_shape"), student["meta"].get("input_shape")
    if isinstance(t_shape, list) and isinstance(s_shape, list) and t_shape[1:] != s_shape[1:]:
        size = lambda shape: "x".join(str(v) for v in shape[1:])  # noqa: E731
        raise DataError(s_path, f"input {size(s_shape)} differs from the teacher's {size(t_shape)} ({t_path}): latencies at "
                                "different input sizes are not a speed-up; measure both at the same size")


# -- the comparison ---------------------------------------------------------------------------
def _side(report: dict[str, Any], role: str) -> dict[str, Any]:
    meta = report["meta"]
    return {
        "report": report["_path"], "kind": report["kind"], "latency_key": report["latency_key"],
        "model": meta.get("model"), "model_name": meta.get("model_name"), "arch": meta.get("arch"),
        "role": meta.get("role") or role, "precision": meta.get("precision"), "format": meta.get("format"),
        "params": meta.get("params"), "model_bytes": meta.get("model_bytes"),
        "backend": meta["backend"], "device": meta["device"], "device_name": meta.get("device_name"),
        "threads": meta.get("threads"), "input_shape": meta.get("input_shape"),
        **stats(report), "pipeline_fps": pipeline_fps(report), "loop_fps": _loop_fps(report), "live": live_figures(report),
    }


LIVE_FIGURES = ("capture_to_lanes.p50", "capture_to_lanes.p99", "frames_read", "frames_dropped", "dropped_share")


def live_figures(report: dict[str, Any]) -> dict[str, Any] | None:
    """A live video report's figures (``live`` block of :mod:`runtime.live_report`): capture-to-lanes
    p50/p99 (ms), frames read and dropped, the dropped share, nominal and measured source fps;
    None for a report without them. A figure that is not a finite number is a :class:`DataError`."""
    live = report.get("live") if report["kind"] == "video" else None
    if not isinstance(live, dict) or not isinstance(live.get("capture_to_lanes"), dict):
        return None
    path = report["_path"]
    out: dict[str, Any] = {"source": live.get("source"), "paced": bool(live.get("paced"))}
    for dotted in LIVE_FIGURES:
        out[dotted.replace(".", "_")] = _number(_require(report, path, f"live.{dotted}"), path, f"live.{dotted}")
    for key in ("fps_nominal", "fps_measured"):
        out[key] = None if live.get(key) is None else _number(live[key], path, f"live.{key}")
    return out


def _loop_fps(report: dict[str, Any]) -> float | None:
    """A video report's measured loop rate (frames / wall s, I/O waits included), else None."""
    value = report.get("summary", {}).get("loop_fps")
    return float(value) if report["kind"] == "video" and isinstance(value, (int, float)) else None


def compare(teacher: dict[str, Any], student: dict[str, Any]) -> dict[str, Any]:
    """The figures of the comparison (what ``latency.json`` holds); ratio_p50 = teacher p50 / student p50."""
    warnings = mismatches(teacher, student)
    t, s = _side(teacher, "teacher"), _side(student, "student")
    return {
        "kind": "latency_comparison",
        "teacher": t,
        "student": s,
        "ratio_p50": t["p50"] / s["p50"],
        "ratio_mean": t["mean"] / s["mean"],
        "like_for_like": not warnings,
        "warnings": warnings,
        "paper": PAPER,
        "created": now(),
    }


# -- Markdown ---------------------------------------------------------------------------------
def _fmt(value: Any, scale: float = 1.0, digits: int = 2) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "—"
    return f"{value / scale:.{digits}f}"


def _model_cell(side: dict[str, Any]) -> str:
    name, arch = side.get("model_name"), side.get("arch")
    if name and arch and name != arch:
        return f"{name} ({arch})"
    return str(name or arch or Path(str(side.get("model"))).name)


def _row(side: dict[str, Any], speedup: float) -> list[str]:
    device = side["device"] if not side.get("device_name") else f"{side['device']}: {side['device_name']}"
    return [
        _model_cell(side), str(side["role"]), str(side.get("precision") or "—"), str(side["backend"]), device,
        _fmt(side.get("params"), 1e6), _fmt(side.get("model_bytes"), 1e6), _fmt(side["p50"], digits=3),
        _fmt(side["p90"], digits=3), _fmt(side["p99"], digits=3), _fmt(side["fps"], digits=1), f"{speedup:.1f}x",
    ]


def _paper_row() -> list[str]:
    t, s = PAPER["teacher"], PAPER["student"]
    return [
        f"paper: {t['arch']} → {s['arch']}", "reference", "—", "—", PAPER["device"],
        f"{t['params_m']} → {s['params_m']}", "—", f"{t['ms']} → {s['ms']} (mean)", "—", "—",
        f"{1000 / t['ms']:.1f} → {1000 / s['ms']:.1f}", f"{PAPER['ratio']:.1f}x",
    ]


HEADER = ["model", "role", "precision", "backend", "device", "params (M)", "model size (MB)", "p50 (ms)",
          "p90 (ms)", "p99 (ms)", "FPS (1000/mean)", "speed-up (teacher p50 / student p50)"]


def _table(rows: list[list[str]], header: list[str]) -> str:
    clean = [[cell.replace("|", "\\|") for cell in row] for row in rows]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in clean])


def format_markdown(result: dict[str, Any], png_name: str | None) -> str:
    """The Markdown report of :func:`compare`'s result."""
    t, s = result["teacher"], result["student"]
    rows = [_row(t, 1.0), _row(s, result["ratio_p50"]), _paper_row()]
    header = list(HEADER)
    if t["pipeline_fps"] is not None or s["pipeline_fps"] is not None:
        header.insert(-1, "video end-to-end FPS (1000/mean total)")
        for row, side in zip(rows, (t, s, None)):
            row.insert(-1, _fmt(side and side["pipeline_fps"], digits=1))
    parts = [
        "# Inference latency: teacher vs student", "",
        f"Teacher report: `{t['report']}` ({t['kind']}, series `{t['latency_key']}`); "
        f"student report: `{s['report']}` ({s['kind']}, series `{s['latency_key']}`). "
        "Times are per inference call in milliseconds (host wall time, preprocessing and decoding excluded).", "",
        _table(rows, header), "",
        f"**Speed-up (teacher p50 / student p50): {result['ratio_p50']:.2f}x** "
        f"(by mean: {result['ratio_mean']:.2f}x). The paper reports {PAPER['ratio']:.1f}x "
        f"({PAPER['teacher']['ms']} ms vs {PAPER['student']['ms']} ms, {PAPER['statistic']}, "
        f"{PAPER['device']}; {PAPER['source']}), on different hardware: compare ratios, not milliseconds.",
    ]
    if result["warnings"]:
        parts += ["", "> **Warning: not like for like.** The two reports were measured differently ("
                  + "; ".join(result["warnings"]) + "), so the speed-up mixes model and measurement differences."]
    for side in (t, s):
        if side["loop_fps"] is not None:
            parts += ["", f"Video loop of the {side['role']}: {side['loop_fps']:.1f} FPS measured over the whole loop "
                          "(decode, drawing and writing included)."]
    batches = {side["input_shape"][0] for side in (t, s) if side.get("input_shape")}
    if any(n != 1 for n in batches):
        parts += ["", "FPS counts inference calls per second; multiply by the batch size for images per second."]
    if t["live"] and s["live"]:
        parts += ["", live_section(t, s)]
    if png_name:
        parts += ["", f"![latency distributions]({png_name})"]
    return "\n".join(parts) + "\n"


LIVE_HEADER = ["model", "role", "source", "frames read", "dropped", "source fps (nominal / measured)",
               "capture to lanes p50 (ms)", "capture to lanes p99 (ms)"]


def live_section(teacher: dict[str, Any], student: dict[str, Any]) -> str:
    """Both models on a live source (or a paced file): drops and the time from capture to lanes."""
    rows = []
    for side in (teacher, student):
        live = side["live"]
        source = f"{live['source']} (paced)" if live["paced"] else str(live["source"])
        rows.append([_model_cell(side), str(side["role"]), source, str(int(live["frames_read"])),
                     f"{int(live['frames_dropped'])} ({100 * live['dropped_share']:.1f} %)",
                     f"{_fmt(live['fps_nominal'], digits=1)} / {_fmt(live['fps_measured'], digits=1)}",
                     _fmt(live["capture_to_lanes_p50"], digits=1), _fmt(live["capture_to_lanes_p99"], digits=1)])
    return "\n".join(["## Live input: capture to lanes", "",
                      "The newest frame goes to the model, older ones are dropped (never queued); capture to lanes "
                      "is the time from a frame reaching the process (a paced file: from when it was due) to its "
                      "lanes (runtime/live_report.py).", "", _table(rows, LIVE_HEADER)])


# -- plot -------------------------------------------------------------------------------------
def _tick_label(value: float, _pos: object = None) -> str:
    """Log-axis tick text: plain numbers (ms), minor ticks only at 2x and 5x a power of ten."""
    lead = value / 10 ** math.floor(math.log10(value)) if value > 0 else 0
    return f"{value:g}" if round(lead, 6) in (1, 2, 5) else ""


def _title(result: dict[str, Any]) -> str:
    title = f"teacher p50 / student p50 = {result['ratio_p50']:.2f}x (paper: {PAPER['ratio']:.1f}x on {PAPER['device']})"
    if result["like_for_like"]:
        return title
    return title + "\n" + textwrap.fill("not like for like: " + "; ".join(result["warnings"]), 110)


def plot_png(teacher: dict[str, Any], student: dict[str, Any], result: dict[str, Any]) -> bytes | None:
    """Box plots of both latency series (ms) on a log axis, p50 marked; PNG bytes, or None without matplotlib."""
    try:
        from matplotlib.figure import Figure
        from matplotlib.ticker import FuncFormatter
    except ImportError:
        return None
    data = [[max(v, 1e-6) for v in series(r)] for r in (student, teacher)]  # teacher on top
    sides = (result["student"], result["teacher"])
    title = _title(result)
    fig = Figure(figsize=(9, 3.4 + 0.2 * title.count("\n")), dpi=110)
    ax = fig.add_subplot()
    style = {"whis": (1, 99), "widths": 0.45, "flierprops": {"markersize": 2, "alpha": 0.4},
             "medianprops": {"color": "black"}}
    try:
        ax.boxplot(data, orientation="horizontal", **style)  # matplotlib >= 3.10
    except TypeError:
        ax.boxplot(data, vert=False, **style)
    ax.set_yticks([1, 2], [f"{side['role']}\n{_model_cell(side)}" for side in sides])
    for y, side, color in zip((1, 2), sides, ("tab:blue", "tab:red")):
        ax.plot([side["p50"]], [y], marker="D", color=color, zorder=3)
        ax.annotate(f"p50 {side['p50']:.3g} ms", (side["p50"], y + 0.26), ha="center", va="bottom", color=color,
                    fontsize=9)
    ax.set_ylim(0.4, 2.7)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(_tick_label))
    ax.xaxis.set_minor_formatter(FuncFormatter(_tick_label))
    ax.set_xlabel("latency per inference call (ms, log scale); box: p25-p75, whiskers: p1-p99")
    ax.set_title(title, fontsize=9)
    ax.grid(True, axis="x", which="both", alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


# -- CLI --------------------------------------------------------------------------------------
def write_comparison(teacher_path: str, student_path: str, out: str | os.PathLike[str]) -> dict[str, Path]:
    """Read both reports, write the .md, .png and .json; returns the paths written."""
    teacher, student = load_report(teacher_path), load_report(student_path)
    check_pair(teacher, student)
    out = Path(out)
    for path in (out, out.with_suffix(".png"), out.with_suffix(".json")):
        check_output_file(path, "comparison", (teacher_path, student_path))
    result = compare(teacher, student)
    written = {}
    png = plot_png(teacher, student, result)
    if png is not None:
        written["png"] = atomic_write_bytes(out.with_suffix(".png"), png)
    else:
        print("warning: matplotlib is not installed: no latency plot written", file=sys.stderr)
    written["json"] = atomic_write_json(out.with_suffix(".json"), result)
    written["md"] = atomic_write_text(out, format_markdown(result, written["png"].name if "png" in written else None))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m runtime.compare_latency", description=__doc__.split("\n")[0])
    parser.add_argument("teacher", help="teacher latency report (benchmark or video JSON)")
    parser.add_argument("student", help="student latency report (benchmark or video JSON)")
    parser.add_argument("--out", required=True, help="Markdown output (.md); the .png and .json go beside it")
    args = parser.parse_args(argv)
    if Path(args.out).suffix != ".md":
        parser.error("--out must name a .md file (the .png and .json are written beside it)")
    try:
        written = write_comparison(args.teacher, args.student, args.out)
    except (DataError, OSError) as err:
        return fail(err)
    result = json.loads(written["json"].read_text(encoding="utf-8"))
    print(f"speed-up (teacher p50 / student p50): {result['ratio_p50']:.2f}x"
          + ("" if result["like_for_like"] else "  [not like for like: " + "; ".join(result["warnings"]) + "]"))
    print("wrote " + ", ".join(str(p) for p in written.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
