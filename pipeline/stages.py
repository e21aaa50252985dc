"""The pipeline's stages: for each, the commands it runs, the files it reads and the files it makes.

A stage is *fresh* (skipped) when all its outputs exist and none is older than its newest input;
``--force`` redoes it. Every command is the stage's own public CLI, so a user can run, resume or
replace any one of them by hand (the log of each stage starts with the exact commands).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from pipeline import paper_backends
from pipeline.paper_backends import PaperBackend
from runtime.thread_trial import usable_cores

ROOT = Path(__file__).resolve().parents[1]
SHARED_CLIP = ROOT.parent / "shared" / "data" / "videos" / "solidWhiteRight.mp4"
SHARED_DATA = ROOT.parent / "shared" / "data"
SHARED_DEV_SETS = (SHARED_DATA / "culane_real_dev", SHARED_DATA / "culane_real_other")
"""The real dev sets every deployed CULane model is scored on when present (``list/all.txt``): CULane
frames of two drives, and frames of other cameras (TuSimple, Waymo) of other sizes. Measurement only
(DESIGN.md): nothing is trained, tuned or chosen on them."""
PRECISIONS = ("fp32", "fp16", "int8")
TASKS = {"apolloscape": "markings"}  # dataset -> task when not "lanes" (runtime.classes: lanes are decoded and scored by F1, markings by mIoU)
BENCHMARKS = ("culane", "apolloscape", "llamas")  # the paper's three: each its synthetic default, configs and paper pair
MODELS = {  # run folder -> (role, method)
    "teacher": ("teacher", "teacher"),
    "student": ("student", "baseline"),
    "student_intra_kd": ("student", "intra_kd"),
}


@dataclass(frozen=True)
class ExtraEval:
    """A CULane-format root that every deployed model is also scored on (measurement only, never trained on)."""

    name: str  # folder name under reports/<ds>/extra_eval/, unique within a run
    root: Path
    list: Path  # absolute

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "root": str(self.root), "list": str(self.list)}


@dataclass
class Layout:
    """Where everything of one pipeline run lives (DESIGN.md: data/, runs/, artifacts/, reports/)."""

    dataset: str  # name in paths: e.g. culane, or culane-synth for the synthetic default
    data_root: Path
    synthetic: bool
    profile: str
    settings: dict[str, Any]
    base: Path = ROOT
    extra_eval: list[ExtraEval] = field(default_factory=list)
    source_root: Path | None = None  # a reduced profile on a real root: the root its subset (data_root) is drawn from
    task: str = "lanes"  # "markings": class maps scored by mIoU (no INT8 calibration, lane decoding or extra lane sets)
    benchmark: str = "culane"  # whose frames, configs and paper pair: culane, apolloscape or llamas (LLAMAS: mAP besides F1)

    @property
    def markings(self) -> bool:
        return self.task == "markings"

    @property
    def llamas(self) -> bool:
        return self.benchmark == "llamas"

    @property
    def metric_report(self) -> str:
        """The file ``training.evaluate`` writes in a run's ``eval_test/``: ``f1.json`` (lanes) or ``miou.json`` (markings)."""
        return "miou.json" if self.markings else "f1.json"

    @property
    def source_dir(self) -> Path:
        """A synthetic marking or LLAMAS set's official-layout source, beside the converted root it trains from."""
        return self.data_root.parent / f"{self.data_root.name}-src"

    @property
    def runs(self) -> Path:
        return self.base / "runs" / self.dataset

    @property
    def artifacts(self) -> Path:
        return self.base / "artifacts" / self.dataset

    @property
    def reports(self) -> Path:
        return self.base / "reports" / self.dataset

    @property
    def logs(self) -> Path:
        return self.runs / "logs"

    @property
    def synthetic_video(self) -> Path:
        return self.data_root.parent / f"{self.data_root.name}-video" / "drive.mp4"  # beside, not inside, the dataset

    def extra_dir(self, extra: ExtraEval) -> Path:
        return self.reports / "extra_eval" / extra.name

    def run_dir(self, model: str) -> Path:
        return self.runs / model

    def ckpt(self, model: str) -> Path:
        return self.run_dir(model) / "last.pt"

    def onnx(self, name: str, precision: str = "fp32") -> Path:
        suffix = {"fp32": ".onnx", "fp16": ".fp16.onnx", "int8": ".int8.onnx", "int8ort": ".int8ort.onnx", "int8cpu": ".int8cpu.onnx"}[precision]
        return self.artifacts / f"{name}{suffix}"

    def engine(self, precision: str) -> Path:
        return self.artifacts / f"student.{precision}.engine"

    def videos(self) -> list[tuple[str, Path, Path | None]]:
        """(tag, video, ground-truth dir or None): the synthetic drive (scored; lanes only) and the real clip if present."""
        out: list[tuple[str, Path, Path | None]] = []
        if self.synthetic and self.benchmark == "culane":
            out.append(("synthetic", self.synthetic_video, self.synthetic_video.parent / "drive_gt"))
        if SHARED_CLIP.is_file():
            out.append(("dashcam", SHARED_CLIP, None))
        return out


Command = list[str]


@dataclass
class Stage:
    name: str
    description: str
    commands: Callable[[Layout], list[Command]]
    inputs: Callable[[Layout], list[Path]]
    outputs: Callable[[Layout], list[Path]]
    optional: Callable[[Layout], str | None] = field(default=lambda layout: None)  # reason to skip, if any
    signature: Callable[[Layout], Any] = field(default=lambda layout: None)  # settings whose change makes the stage stale
    restart_dir: Callable[[Layout], Path | None] = field(default=lambda layout: None)
    """A training stage's run folder: cleared before the stage reruns for another reason than an
    interrupted run (``--force``, another signature, newer inputs), so training starts afresh
    instead of resuming a checkpoint of other data or settings."""


def py(*args: str) -> Command:
    return [sys.executable, *args]


def sets(items: list[str]) -> list[str]:
    return [part for item in items for part in ("--set", item)]


# -- data -------------------------------------------------------------------------------------
def data_commands(lay: Layout) -> list[Command]:
    d = lay.settings["data"]
    if lay.llamas and lay.source_root is None:  # the synthetic LLAMAS-style set, then the converter (IntRA-KD's val / test of valid)
        return [py("-m", "lanedata.llamas.synthetic", "--out", str(lay.source_dir), "--train", str(d["train"]), "--valid", str(d["valid"]),
                   "--seed", str(d["seed"]), "--no-progress", "--force"),
                py("-m", "lanedata.llamas.convert", "--llamas-root", str(lay.source_dir), "--split", "train", "--split", "valid", "--split-valid",
                   "--out-root", str(lay.data_root), "--force")]
    if lay.markings and lay.source_root is None:  # the synthetic ApolloScape-style set, then the converter as for the real one
        lists = [a for split in ("train", "val", "test") for a in ("--list", f"{split}={lay.source_dir / 'lists' / f'{split}.txt'}")]
        return [py("-m", "lanedata.apolloscape.synthetic", "--out", str(lay.source_dir), "--train", str(d["train"]), "--val", str(d["val"]),
                   "--test", str(d["test"]), "--seed", str(d["seed"]), "--no-progress", "--force"),
                py("-m", "lanedata.apolloscape.convert", "--apollo-root", str(lay.source_dir), *lists, "--out-root", str(lay.data_root), "--force")]
    if lay.source_root is not None:
        return [py("-m", "pipeline.subset", "--source", str(lay.source_root), "--out", str(lay.data_root), "--train", str(d["train"]),
                   "--val", str(d["val"]), "--test-per-category", str(d["test_per_category"]), "--seed", str(d["seed"]))]
    return [py("-m", "lanedata.synthetic", "--out", str(lay.data_root), "--train", str(d["train"]), "--val", str(d["val"]),
               "--test-per-category", str(d["test_per_category"]), "--seed", str(d["seed"]), "--video", str(lay.synthetic_video),
               "--frames", str(d["video_frames"]), "--no-progress", "--force")]  # the pipeline owns this folder


def data_signature(lay: Layout) -> dict[str, Any]:
    """The generator's settings and version, or the subset's draw and source: other data makes the dataset stale."""
    from lanedata.synthetic import versions

    d = dict(lay.settings["data"])
    if lay.source_root is None:
        version = {"apolloscape": versions.APOLLOSCAPE, "llamas": versions.LLAMAS}.get(lay.benchmark, versions.CULANE)
        return {**d, "generator": version, **({"task": lay.task} if lay.markings else {}),
                **({"benchmark": lay.benchmark} if lay.llamas else {})}
    d.pop("video_frames", None)  # the generator's setting: not the subset's
    return {**d, "source": str(lay.source_root)}


def data_outputs(lay: Layout) -> list[Path]:
    """The training list, the test list (markings: ``test_gt.txt``) and what the data stage makes last:
    a subset's record, the marking or LLAMAS generator's manifest, or the synthetic drive."""
    if lay.source_root is not None:
        last = lay.data_root / "subset.json"
    else:
        last = lay.synthetic_video if lay.benchmark == "culane" else lay.source_dir / "synthetic.json"
    test = "test_gt.txt" if lay.markings else "test.txt"
    return [lay.data_root / "list" / "train_gt.txt", lay.data_root / "list" / test, last]


def data_skip(lay: Layout) -> str | None:
    return None if lay.synthetic or lay.source_root is not None else "a real dataset root is given (full scale)"


# -- training ---------------------------------------------------------------------------------
def processes() -> int:
    """Training processes: ``NPROC`` if set, else one per NVIDIA GPU that ``nvidia-smi -L`` lists (DDP), else 1."""
    if os.environ.get("NPROC"):
        return max(1, int(os.environ["NPROC"]))
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return 1
    return max(1, sum(line.startswith("GPU ") for line in listing.splitlines()))


def train_command(lay: Layout, model: str, key: str, extra: list[str]) -> list[Command]:
    s = lay.settings
    config = ROOT / "training" / "configs" / s["configs"][key]
    overrides = [f"dataset.root={lay.data_root}", f"dataset.name={lay.dataset}", f"output.dir={lay.run_dir(model)}",
                 *s["train"], *s[key], *extra]
    nproc = processes()
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc)] if nproc > 1 else []
    return [py(*launcher, "-m", "training.train", "--config", str(config), "--resume", *sets(overrides)),
            py("-m", "training.evaluate", "--ckpt", str(lay.ckpt(model)), "--split", "test", "--workers", "2")]


def config_chain_text(path: Path) -> str:
    """The text of a training config and of every ``base:`` it builds on (first the file itself)."""
    texts, seen = [], set()
    while path not in seen and path.is_file():
        seen.add(path)
        text = path.read_text(encoding="utf-8")
        texts.append(text)
        base = (yaml.safe_load(text) or {}).get("base")
        if not base:
            break
        path = (path.parent / base).resolve()
    return "\n".join(texts)


def train_signature(lay: Layout, model: str, key: str, extra: list[str]) -> str:
    """SHA-1 of what defines a training run: its config files and the overrides the pipeline adds."""
    command = train_command(lay, model, key, extra)[0]
    config = Path(command[command.index("--config") + 1])
    overrides = [c for c in command[command.index("--config") + 2 :] if c not in ("--set", "--resume")]
    return hashlib.sha1(("\n".join(overrides) + "\n" + config_chain_text(config)).encode()).hexdigest()


def train_outputs(lay: Layout, model: str) -> list[Path]:
    return [lay.ckpt(model), lay.run_dir(model) / "eval_test" / lay.metric_report]


# -- export and calibration -------------------------------------------------------------------
def export_commands(lay: Layout) -> list[Command]:
    n = str(lay.settings["parity_images"])
    return [
        py("-m", "export.to_onnx", "--ckpt", str(lay.ckpt("student_intra_kd")), "--out", str(lay.onnx("student")), "--parity-images", n),
        py("-m", "export.to_onnx", "--ckpt", str(lay.ckpt("teacher")), "--out", str(lay.onnx("teacher")), "--parity-images", n, "--no-pt2"),
        py("-m", "export.to_fp16", "--onnx", str(lay.onnx("student")), "--out", str(lay.onnx("student", "fp16")), "--check-images", n),
    ] + ([py("-m", "export.to_onnx", "--ckpt", str(lay.ckpt("student")), "--out", str(lay.onnx("student_alone")), "--parity-images", n,
             "--no-pt2")] if not lay.markings else [])  # lanes: the student alone on the real frames too (LLAMAS: its mAP, 0.570 -> 0.598)


def export_outputs(lay: Layout) -> list[Path]:
    return [lay.onnx("student"), lay.onnx("teacher"), lay.onnx("student", "fp16"), *([lay.onnx("student_alone")] if not lay.markings else [])]


def calibrate_commands(lay: Layout) -> list[Command]:
    c = lay.settings["calibration"]
    common = ["--onnx", str(lay.onnx("student")), "--data-root", str(lay.data_root), "--list", "train_gt.txt",
              "--num-images", str(c["images"]), "--method", c["method"]]
    limit = [] if lay.settings["eval_max_images"] is None else ["--report-images", str(lay.settings["eval_max_images"])]
    return [py("-m", "export.modelopt_int8", *common[:-2], "--method", c.get("modelopt_method", "entropy"), "--out", str(lay.onnx("student", "int8")), *limit),
            py("-m", "calibration.calibrate", *common, "--target", "trt", "--out", str(lay.onnx("student", "int8ort")), *limit),
            py("-m", "calibration.calibrate", *common, "--target", "cpu", "--out", str(lay.onnx("student", "int8cpu")), *limit)]


def calibrate_skip(lay: Layout) -> str | None:
    return ("marking models: the INT8 calibration's accuracy report scores lanes (F1), not class maps; FP32 and FP16 are deployed"
            if lay.markings else None)


def precisions(lay: Layout) -> tuple[str, ...]:
    """The student's deployed precisions: FP32, FP16 and INT8 (lanes); FP32 and FP16 (markings: no calibration stage)."""
    return PRECISIONS[:2] if lay.markings else PRECISIONS


def engines_skip(lay: Layout) -> str | None:
    from runtime.backends.tensorrt_backend import trt_available

    return trt_available()


def engine_commands(lay: Layout) -> list[Command]:
    cache = lay.artifacts / "timing.cache"
    return [py("-m", "export.to_tensorrt", "--onnx", str(lay.onnx("student", p)), "--out", str(lay.engine(p)), "--timing-cache", str(cache))
            for p in precisions(lay)]


# -- evaluation through the runtime -----------------------------------------------------------
def deployed(lay: Layout) -> dict[str, Path]:
    """Name -> artifact of every deployed model the evaluate stage judges (engines where built)."""
    out = {"student.fp32": lay.onnx("student"), "student.fp16": lay.onnx("student", "fp16"),
           **({} if lay.markings else {"student.int8": lay.onnx("student", "int8"), "student.int8ort": lay.onnx("student", "int8ort"),
                                       "student.int8cpu": lay.onnx("student", "int8cpu")}),
           "teacher.fp32": lay.onnx("teacher")}
    for p in precisions(lay):
        if lay.engine(p).is_file():
            out[f"student.{p}.engine"] = lay.engine(p)
    return out


def evaluate_commands(lay: Layout) -> list[Command]:
    limit = [] if lay.settings["eval_max_images"] is None else ["--max-images", str(lay.settings["eval_max_images"])]
    b = lay.settings["bench"]
    cmds = []
    for name, model in deployed(lay).items():
        device = ["--device", "cuda"] if model.suffix == ".engine" else ["--device", "cpu"]
        cmds.append(py("-m", "runtime.evaluate", "--model", str(model), "--data-root", str(lay.data_root), *device,
                       "--report", str(lay.reports / "eval" / f"{name}.json"), *limit))
        cmds.append(py("-m", "runtime.benchmark", "--model", str(model), *device, "--iterations", str(b["iterations"]),
                       "--warmup", str(b["warmup"]), "--json", str(lay.reports / "bench" / f"{name}.json"), "--quiet"))
    for extra in lay.extra_eval:
        cmds += extra_eval_commands(lay, extra)
    return cmds


def extra_eval_commands(lay: Layout, extra: ExtraEval) -> list[Command]:
    """Every deployed model on an extra root (per drive too), a contact sheet of the student and the teacher, and
    the student's camera-shift report (:mod:`runtime.evaluate_shifts`)."""
    out = lay.extra_dir(extra)
    cmds = [py("-m", "runtime.evaluate", "--model", str(model), "--data-root", str(extra.root), "--list", str(extra.list),
               "--group-by", "drive", "--device", "cuda" if model.suffix == ".engine" else "cpu", "--report", str(out / f"{name}.json"))
            for name, model in extra_models(lay).items()]
    cmds.append(py("-m", "runtime.contact_sheet", "--model", str(lay.onnx("student")), "--label", "student (fp32)",
                   "--model", str(lay.onnx("teacher")), "--label", "teacher (fp32)", "--data-root", str(extra.root),
                   "--list", str(extra.list), "--device", "cpu", "--out", str(out / "contact_sheet.png")))
    cmds.append(py("-m", "runtime.evaluate_shifts", "--model", str(lay.onnx("student")), "--label", "student (fp32)",
                   "--data-root", str(extra.root), "--list", str(extra.list), "--report", str(out / "camera_shift.json")))
    return cmds


def evaluate_outputs(lay: Layout) -> list[Path]:
    return ([lay.reports / kind / f"{name}.json" for name in deployed(lay) for kind in ("eval", "bench")]
            + [p for extra in lay.extra_eval for p in extra_eval_outputs(lay, extra)])


def extra_models(lay: Layout) -> dict[str, Path]:
    """Name -> artifact of every model scored on the extra sets: the deployed ones and the student alone (FP32), so
    that the real frames show what distillation changed."""
    return {**deployed(lay), "student_alone.fp32": lay.onnx("student_alone")}


def extra_eval_outputs(lay: Layout, extra: ExtraEval) -> list[Path]:
    return ([lay.extra_dir(extra) / f"{name}.json" for name in extra_models(lay)]
            + [lay.extra_dir(extra) / "contact_sheet.png", lay.extra_dir(extra) / "camera_shift.json"])


def extra_eval_signature(lay: Layout) -> list[dict[str, str]] | None:
    """The extra sets (None without any), recorded with the evaluate and summary stages: other sets make both stale."""
    return [extra.to_dict() for extra in lay.extra_eval] or None


# -- LLAMAS' official segmentation mAP --------------------------------------------------------
MAP_SKIPPED = ("student.int8ort", "student.int8cpu")  # ONNX Runtime's INT8 layouts: their F1 is in the evaluate stage


def map_models(lay: Layout) -> dict[str, Path]:
    """Name -> artifact of each model scored by LLAMAS' mAP: the teacher, the student alone (FP32), the distilled
    student in every deployed precision (FP32, FP16, ModelOpt INT8, engines where built)."""
    return {**{k: v for k, v in deployed(lay).items() if k not in MAP_SKIPPED}, "student_alone.fp32": lay.onnx("student_alone")}


def map_commands(lay: Layout) -> list[Command]:
    """Per model: probability maps of the test split in the official layout (``lanedata.llamas.predict``), their
    mAP (``lanedata.llamas.evaluate``), then the maps (5 PNGs of 1276x717 an image) removed before the next model. Every test
    frame (the official script scores every label of the split: ``eval_max_images`` does not apply)."""
    cmds = []
    for name, model in map_models(lay).items():
        pred = lay.runs / "llamas_pred" / name
        device = ["--device", "cuda"] if model.suffix == ".engine" else ["--device", "cpu"]
        cmds.append(py("-m", "lanedata.llamas.predict", "--model", str(model), "--llamas-root", str(lay.data_root), "--split", "test",
                       "--pred-root", str(pred), *device))
        cmds.append(py("-m", "lanedata.llamas.evaluate", "--labels-root", str(lay.data_root / "labels"), "--pred-root", str(pred), "--split", "test",
                       "--workers", "2", "--out", str(lay.reports / "map" / f"{name}.json")))
        cmds.append(py("-c", "import shutil, sys; shutil.rmtree(sys.argv[1], ignore_errors=True)", str(pred)))
    return cmds


def map_outputs(lay: Layout) -> list[Path]:
    return [lay.reports / "map" / f"{name}.json" for name in map_models(lay)]


# -- video and comparison ---------------------------------------------------------------------
def video_commands(lay: Layout) -> list[Command]:
    v = lay.settings["video"]
    limit = [] if v["max_frames"] is None else ["--max-frames", str(v["max_frames"])]
    cmds = []
    for tag, video, gt in lay.videos():
        for role in ("teacher", "student"):
            out = lay.reports / "video" / f"{tag}.{role}"
            gt_args = ["--gt", str(gt)] if gt is not None else []
            cmds.append(py(str(ROOT / "runtime" / "infer_video.py"), "--model", str(lay.onnx(role)), "--video", str(video),
                           "--out", f"{out}.mp4", "--report", f"{out}.json", "--device", "cpu", "--warmup", str(v["warmup"]),
                           *limit, *gt_args))
    return cmds


def video_outputs(lay: Layout) -> list[Path]:
    return [lay.reports / "video" / f"{tag}.{role}.json" for tag, _, _ in lay.videos() for role in ("teacher", "student")]


def compare_commands(lay: Layout) -> list[Command]:
    bench = lay.reports / "bench"
    return [py(str(ROOT / "runtime" / "compare_latency.py"), str(bench / "teacher.fp32.json"), str(bench / "student.fp32.json"),
               "--out", str(lay.reports / "latency.md"))]


# -- the paper's pair at the paper's size ------------------------------------------------------
GPU_TIMING = {"iterations": 1000, "warmup": 100}  # the pair on a GPU backend: milliseconds per call, so a trtexec-like count
PAPER_MODELS = {  # role -> (training config, overrides): the paper's teacher and student, untrained (latency only)
    "teacher": ("culane/resnet101_psp.yaml", ["model.pretrained=null"]),
    "student": ("culane/erfnet.yaml", []),
}


def paper_models(lay: Layout) -> dict[str, tuple[str, list[str]]]:
    """The paper's pair for this benchmark (the folder of its configs): CULane's or LLAMAS' (4 lanes + existence),
    ApolloScape's (36 classes)."""
    folder = lay.benchmark
    return {role: (f"{folder}/{Path(config).name}", extra) for role, (config, extra) in PAPER_MODELS.items()}


def paper_video(lay: Layout) -> Path | None:
    """The clip the paper pair's per-frame latency is measured on: the real dashcam clip, else the synthetic drive."""
    videos = lay.videos()
    return next((v for tag, v, _ in videos if tag == "dashcam"), videos[0][1] if videos else None)


def paper_commands(lay: Layout, backends: tuple[PaperBackend, ...] | None = None) -> list[Command]:
    """ResNet-101 + PSP and ERFNet built at the paper's input size (one training step: weights do not
    change latency), exported through the real export path, timed interleaved on the same backend,
    compared, and run through the video loop for the per-frame latency (both with every core: the
    same threads as the benchmark, not each its own thread trial, so that the pair stays comparable).
    Then the same pair on each GPU backend ``backends`` names (default: what this machine has,
    :func:`pipeline.paper_backends.available`), one interleaved run and comparison per backend."""
    backends = paper_backends.available() if backends is None else backends
    engines = [b.artifact.removesuffix(".engine") for b in backends if b.artifact.endswith(".engine")]
    p = lay.settings["paper_latency"]
    out = lay.reports / "paper"

    def best_effort(tag: str, step: str, command: Command) -> Command:  # a GPU step: its failure is recorded, the run goes on
        return py("-m", "pipeline.best_effort", "--record", str(out / f"failed.{tag}.{step}.json"), "--", *command)

    one_step = [f"input.net_width={p['width']}", f"input.net_height={p['height']}", f"dataset.root={lay.data_root}",
                f"dataset.name={lay.dataset}", "train.batch_size=2", "train.iterations=1", "train.val_every=1",
                "train.checkpoint_every=1", "train.max_val_images=1", "train.warmup_iters=1", "dataset.num_workers=0",
                *p.get("overrides", [])]
    cmds = []
    for role, (config, extra) in paper_models(lay).items():
        run = lay.runs / "paper" / role
        cmds.append(py("-m", "training.train", "--config", str(ROOT / "training" / "configs" / config),
                       *sets([*one_step, f"output.dir={run}", *extra])))
        cmds.append(py("-m", "export.to_onnx", "--ckpt", str(run / "last.pt"), "--out", str(paper_onnx(lay, role)),
                       "--parity-images", str(p.get("parity_images", 4)), "--no-pt2", "--data-root", str(lay.data_root)))
        if any(b.artifact == "pt2" for b in backends):  # the torch.export program, beside a second ONNX in paper/torch/
            cmds.append(best_effort("torch-cuda", f"export-{role}", py(
                "-m", "export.to_onnx", "--ckpt", str(run / "last.pt"), "--out", str(paper_artifact(lay, role, "pt2").with_suffix(".onnx")),
                "--parity-images", "1", "--data-root", str(lay.data_root))))
        if "fp16" in engines:
            cmds.append(best_effort("tensorrt-fp16", f"fp16-{role}", py(
                "-m", "export.to_fp16", "--onnx", str(paper_onnx(lay, role)), "--out", str(paper_artifact(lay, role, "fp16.onnx")),
                "--check-images", "0")))  # untrained weights: latency only, no accuracy to check
        for precision in engines:
            source = paper_artifact(lay, role, "onnx" if precision == "fp32" else f"{precision}.onnx")
            cmds.append(best_effort(f"tensorrt-{precision}", f"engine-{role}", py(
                "-m", "export.to_tensorrt", "--onnx", str(source), "--out", str(paper_artifact(lay, role, f"{precision}.engine")),
                "--timing-cache", str(lay.artifacts / "paper" / "timing.cache"))))
    reports = [str(out / f"bench.{role}.json") for role in PAPER_MODELS]
    cmds.append(py("-m", "runtime.benchmark", "--model", str(paper_onnx(lay, "teacher")), "--model", str(paper_onnx(lay, "student")),
                   "--device", "cpu", "--threads", str(usable_cores()), "--iterations", str(p["iterations"]),
                   "--warmup", str(p["warmup"]), "--json", reports[0], "--json", reports[1], "--quiet"))
    cmds.append(py(str(ROOT / "runtime" / "compare_latency.py"), *reports, "--out", str(out / "latency.md")))
    for backend in backends:
        tagged = [str(out / f"bench.{backend.tag}.{role}.json") for role in PAPER_MODELS]
        cmds.append(best_effort(backend.tag, "benchmark", py(
            "-m", "runtime.benchmark", *(a for role in PAPER_MODELS for a in ("--model", str(paper_artifact(lay, role, backend.artifact)))),
            *backend.options, "--iterations", str(GPU_TIMING["iterations"]), "--warmup", str(GPU_TIMING["warmup"]),
            *(a for report in tagged for a in ("--json", report)), "--quiet")))
        cmds.append(best_effort(backend.tag, "compare", py(str(ROOT / "runtime" / "compare_latency.py"), *tagged,
                                                            "--out", str(out / f"latency.{backend.tag}.md"))))
    video = paper_video(lay)
    if video is not None:
        for role in PAPER_MODELS:
            cmds.append(py(str(ROOT / "runtime" / "infer_video.py"), "--model", str(paper_onnx(lay, role)), "--video", str(video),
                           "--no-video", "--report", str(out / f"video.{role}.json"), "--device", "cpu", "--threads", str(usable_cores()),
                           "--max-frames", str(p["video_frames"]), "--warmup", str(p["video_warmup"])))
    return cmds


def paper_artifact(lay: Layout, role: str, artifact: str) -> Path:
    """The paper pair's ``<role>.<artifact>`` (onnx, fp16.onnx, fp32.engine, ...); the torch.export
    programs (``pt2``) in ``paper/torch/``, beside the ONNX exported with them."""
    folder = lay.artifacts / "paper" / ("torch" if artifact == "pt2" else "")
    return folder / f"{role}.{artifact}"


def paper_onnx(lay: Layout, role: str) -> Path:
    return paper_artifact(lay, role, "onnx")


def paper_outputs(lay: Layout) -> list[Path]:
    out = lay.reports / "paper"
    videos = [out / f"video.{role}.json" for role in PAPER_MODELS] if paper_video(lay) is not None else []
    tagged = [out / f"latency.{b.tag}.json" for b in paper_backends.available()]
    return [paper_onnx(lay, "teacher"), paper_onnx(lay, "student"), out / "latency.json", *tagged, *videos]


def paper_signature(lay: Layout) -> dict[str, Any]:
    """The stage's settings, and the GPU backends it times on (only where there are any: a CPU
    machine's signature stays the settings alone)."""
    tags = [b.tag for b in paper_backends.available()]
    return {**(lay.settings["paper_latency"] or {}), **({"backends": tags} if tags else {})}


def summary_commands(lay: Layout) -> list[Command]:
    return [py("-m", "pipeline.summary", "--dataset", lay.dataset, "--data-root", str(lay.data_root), "--profile", lay.profile,
               "--base", str(lay.base), "--task", lay.task, "--benchmark", lay.benchmark, *(["--synthetic"] if lay.synthetic else []))]


STAGES: list[Stage] = [
    Stage("data", "synthetic dataset (CULane with a drive video, ApolloScape-style markings, LLAMAS-style lanes), or a seeded subset of a real root",
          data_commands,
          lambda lay: [lay.source_root / "list" / f"{n}_gt.txt" for n in ("train", "val")] if lay.source_root else [], data_outputs,
          optional=data_skip, signature=data_signature),
    Stage("teacher", "teacher (ResNet + pyramid pooling)", lambda lay: train_command(lay, "teacher", "teacher", []),
          lambda lay: data_outputs(lay)[:1], lambda lay: train_outputs(lay, "teacher"),
          signature=lambda lay: train_signature(lay, "teacher", "teacher", []), restart_dir=lambda lay: lay.run_dir("teacher")),
    Stage("student", "student alone (ERFNet)", lambda lay: train_command(lay, "student", "student", []),
          lambda lay: data_outputs(lay)[:1], lambda lay: train_outputs(lay, "student"),
          signature=lambda lay: train_signature(lay, "student", "student", []), restart_dir=lambda lay: lay.run_dir("student")),
    Stage("student_kd", "student distilled with IntRA-KD + attention transfer",
          lambda lay: train_command(lay, "student_intra_kd", "student_kd", [f"distill.teacher={lay.ckpt('teacher')}"]),
          lambda lay: [lay.ckpt("teacher"), *data_outputs(lay)[:1]], lambda lay: train_outputs(lay, "student_intra_kd"),
          signature=lambda lay: train_signature(lay, "student_intra_kd", "student_kd", [f"distill.teacher={lay.ckpt('teacher')}"]),
          restart_dir=lambda lay: lay.run_dir("student_intra_kd")),
    Stage("export", "ONNX (parity-checked), torch.export, FP16", export_commands,
          lambda lay: [lay.ckpt("student_intra_kd"), lay.ckpt("teacher"), *([lay.ckpt("student")] if lay.llamas else [])], export_outputs),
    Stage("calibrate", "INT8 Q/DQ from real images (TensorRT: ModelOpt and ONNX Runtime layouts; CPU layout)", calibrate_commands,
          lambda lay: [lay.onnx("student")],
          lambda lay: [lay.onnx("student", "int8"), lay.onnx("student", "int8ort"), lay.onnx("student", "int8cpu")],
          optional=calibrate_skip),
    Stage("engines", "TensorRT engines FP32/FP16/INT8", engine_commands,
          lambda lay: [lay.onnx("student", p) for p in precisions(lay)], lambda lay: [lay.engine(p) for p in precisions(lay)],
          optional=engines_skip),
    Stage("evaluate", "accuracy (F1 per category, or mIoU per class) and latency of every deployed model", evaluate_commands,
          lambda lay: [*deployed(lay).values(), *(extra.list for extra in lay.extra_eval)], evaluate_outputs,
          signature=extra_eval_signature),
    Stage("map", "LLAMAS' official segmentation mAP of every deployed model and the student alone", map_commands,
          lambda lay: list(map_models(lay).values()), map_outputs,
          optional=lambda lay: None if lay.llamas else "LLAMAS only (its official mAP)"),
    Stage("video", "teacher and student on dashcam video", video_commands,
          lambda lay: [lay.onnx("teacher"), lay.onnx("student")], video_outputs),
    Stage("compare", "teacher vs student latency report", compare_commands,
          lambda lay: [lay.reports / "bench" / "teacher.fp32.json", lay.reports / "bench" / "student.fp32.json"],
          lambda lay: [lay.reports / "latency.md", lay.reports / "latency.json"]),
    Stage("paper", "the paper's pair (ResNet-101 + PSP vs ERFNet) at its input size: latency, model and frame", paper_commands,
          lambda lay: [data_outputs(lay)[0]], paper_outputs, signature=paper_signature,
          optional=lambda lay: None if lay.settings.get("paper_latency") else "this profile times no paper pair (paper_latency: null)"),
    Stage("summary", "SUMMARY.md and summary.json", summary_commands,
          lambda lay: [p for stage in STAGES[:-1] for p in stage.outputs(lay)],
          lambda lay: [lay.reports / "SUMMARY.md", lay.reports / "summary.json"], signature=extra_eval_signature),
]
STAGE_NAMES = [s.name for s in STAGES]
