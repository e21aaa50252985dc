"""Latency of the deployed models at the paper's 976x208 on this machine (ONNX Runtime).

    python benchmarks/deploy_latency.py --data-root data/culane-synth [--out /tmp/deploy-latency] [--threads 2]

Latency does not depend on the weights, so the models are built at 976x208 with one training
step on the dataset (ERFNet student; ResNet-101 + PSP teacher, the paper's), exported through the
real export path, the student also INT8-quantized in both layouts (``--target cpu`` and ``trt``)
from real images, and each timed with ``runtime.benchmark``. Prints a table; writes the
benchmark JSONs and a teacher/student comparison (``latency.md``) under ``--out``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ONE_STEP = ["input.net_width=976", "input.net_height=208", "train.batch_size=2", "train.iterations=1", "train.val_every=1",
            "train.checkpoint_every=1", "train.max_val_images=1", "train.warmup_iters=1", "dataset.num_workers=0"]


def run(*args: str) -> None:
    print("$", " ".join(args), flush=True)
    subprocess.run([sys.executable, *args], cwd=ROOT, check=True)


def sets(items: list[str]) -> list[str]:
    return [part for item in items for part in ("--set", item)]


def bare_session_p50(model: Path, threads: int, iterations: int) -> float:
    """p50 (ms) of a bare ``InferenceSession.run`` on the backend's own session, on the same input."""
    from runtime.backends import load_backend
    from runtime.latency import summarize
    from runtime.sample_input import sample_batch

    backend = load_backend(model, "onnxruntime", "cpu", threads)
    session, feed = backend.session, {backend.input_name: sample_batch(backend.sidecar.pre)}
    times = []
    for i in range(iterations + iterations // 10):
        t = time.perf_counter()
        session.run(None, feed)
        if i >= iterations // 10:
            times.append((time.perf_counter() - t) * 1000)
    return summarize(times)["p50"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--out", default="/tmp/deploy-latency")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--teacher-iterations", type=int, default=20)
    args = parser.parse_args()
    out = Path(args.out)
    models = {"student": ("training/configs/culane/erfnet.yaml", []),
              "teacher": ("training/configs/culane/resnet101_psp.yaml", ["model.pretrained=null"])}
    for name, (config, extra) in models.items():
        if not (out / name / "last.pt").is_file():
            run("-m", "training.train", "--config", config, *sets([f"dataset.root={args.data_root}", f"output.dir={out / name}", *ONE_STEP, *extra]))
        if not (out / f"{name}.onnx").is_file():
            run("-m", "export.to_onnx", "--ckpt", str(out / name / "last.pt"), "--out", str(out / f"{name}.onnx"), "--parity-images", "4",
                "--no-pt2", "--data-root", args.data_root)
    for target in ("cpu", "trt"):
        path = out / f"student.int8{target}.onnx"
        if not path.is_file():
            run("-m", "calibration.calibrate", "--onnx", str(out / "student.onnx"), "--data-root", args.data_root, "--num-images", "32",
                "--method", "minmax", "--target", target, "--out", str(path), "--report-images", "5")
    rows = []
    for name in ("student", "student.int8cpu", "student.int8trt", "teacher"):
        iterations = args.teacher_iterations if name == "teacher" else args.iterations
        report = out / f"bench.{name}.json"
        run("-m", "runtime.benchmark", "--model", str(out / f"{name}.onnx"), "--device", "cpu", "--threads", str(args.threads),
            "--iterations", str(iterations), "--warmup", str(max(3, iterations // 10)), "--json", str(report), "--quiet")
        h = json.loads(report.read_text())["summary"]["host"]
        rows.append((name, h["p50"], h["p90"], h["p99"], h["fps"]))
    bare = {name: bare_session_p50(out / f"{name}.onnx", args.threads, args.iterations) for name in ("student", "student.int8cpu")}
    video_rows = []
    clip = ROOT.parent / "shared" / "data" / "videos" / "solidWhiteRight.mp4"
    if clip.is_file():
        for name in ("student", "student.int8cpu"):
            for write in (True, False):
                report = out / f"video.{name}.{'out' if write else 'nowrite'}.json"
                outputs = ["--out", str(report.with_suffix(".mp4"))] if write else ["--no-video"]
                run(str(ROOT / "runtime" / "infer_video.py"), "--model", str(out / f"{name}.onnx"), "--video", str(clip), *outputs,
                    "--report", str(report), "--device", "cpu", "--threads", str(args.threads), "--warmup", "10")
                r = json.loads(report.read_text())["summary"]
                video_rows.append((name, write, r["infer_host"]["p50"], r["total"]["p50"], r["loop_fps"]))
    run(str(ROOT / "runtime" / "compare_latency.py"), str(out / "bench.teacher.json"), str(out / "bench.student.json"), "--out", str(out / "latency.md"))
    print("\n| model (976x208, ONNX Runtime CPU) | p50 ms | p90 ms | p99 ms | FPS |\n|---|---:|---:|---:|---:|")
    for name, p50, p90, p99, fps in rows:
        print(f"| {name} | {p50:.1f} | {p90:.1f} | {p99:.1f} | {fps:.1f} |")
    print("\n| model | bare session.run p50 ms | backend.infer p50 ms | overhead |\n|---|---:|---:|---:|")
    by_name = {r[0]: r for r in rows}
    for name, b in bare.items():
        print(f"| {name} | {b:.2f} | {by_name[name][1]:.2f} | {100 * (by_name[name][1] / b - 1):+.1f} % |")
    if video_rows:
        print("\n| video (solidWhiteRight.mp4, 960x540) | output video | infer p50 ms | loop total p50 ms | loop FPS | vs model-only FPS |\n|---|---|---:|---:|---:|---:|")
        for name, write, infer, total, fps in video_rows:
            print(f"| {name} | {'yes' if write else 'no'} | {infer:.1f} | {total:.1f} | {fps:.1f} | {100 * fps / by_name[name][4]:.0f} % |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
