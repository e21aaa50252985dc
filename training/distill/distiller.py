"""The distillation a config asks for: frozen teacher(s), student taps, weighted losses.

Config (``distill:`` section; methods combine freely)::

    distill:
      method: [intra_kd, at]          # kd, at, intra_kd, skd (= skd_pixel + skd_pair + skd_holistic), lgad
      teacher: runs/culane/resnet101_psp/best.pt
      pairs: [[block2, layer2], [block3, layer4]]    # (student tap, teacher tap), the paper's default
      weights: {intra_kd: 0.1, at: 0.1}              # alpha_1, alpha_2 of eq. 5; defaults below
      aoi_kernel: 5
      skew_floor: 0.01                # intra_kd: damps the skewness of near-constant regions (see moment_pool)
      temperature: 1.0                # kd
      skd_pair_taps: [block3, psp]    # the features whose pair-wise similarities SKD matches
      skd_pair_scale: 0.5             # node = max pool over (scale*h, scale*w) windows
      lgad_teacher: runs/culane/lgad_teacher/best.pt
      lgad_pairs: [[block2, block2], [block3, block3]]
      teacher_half: true              # teacher in float16 on CUDA

The teacher runs in eval mode without gradients; its checkpoint must have been trained with the
student's preprocessing (crop, size, normalisation), which is checked.

A training step calls the distiller twice: ``distiller(x, label, seg, taps)`` for the weighted
losses, added to the task loss before the student's backward and optimiser step, then
``distiller.after_student_step()`` (SKD's discriminator update on that step's detached outputs,
the authors' order; see :mod:`training.distill.skd`). ``extra_state`` carries the discriminator
and its optimiser through ``--resume``.

**LGAD** is named for what it is (:data:`LGAD_NOTE`): the label-input teacher comes from LGAD's
abstract, the attention maps and their distance from SAD, the layer pairs and weight are ours.
"""
from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from runtime.classes import class_table
from runtime.errors import DataError
from training.checkpoint import load_checkpoint
from training.data.label_input import one_hot_label
from training.distill.attention import attention_loss, sad_attention_loss
from training.distill.intra_kd import DEFAULT_SKEW_FLOOR, RegionMaps, intra_kd_loss
from training.distill.kd import kd_loss
from training.distill.skd import HolisticDistiller, pairwise_loss

LGAD_NOTE = (
    "LGAD (Liu & Zhu, Neurocomputing 2021) as implemented here. Only the paper's abstract is known "
    "(no code is published). From the abstract: the teacher reads the lane label map and is trained to "
    "reproduce it, and its attention maps supervise the student's; the teacher is dropped after training. "
    "From SAD (Hou et al., ICCV 2019), LGAD's closest published relative: the attention map of a feature is "
    "the spatial softmax of its channel-wise sum of squared activations (p = 2), bilinearly resized, and two "
    "maps are compared by an L2 (mean squared) distance. Our choices: the teacher is the student's "
    "architecture (ERFNet) reading the one-hot label map (ignored pixels all zero) and trained with the "
    "student's task loss; the layer pairs are the student's encoder blocks 2 and 3 against the same blocks of "
    "the teacher; the label teacher reads the batch's augmented label, so its maps line up with the student's "
    "input; the term is on from the first iteration (no SAD-style warm-up); its weight, 0.5, puts its "
    "gradient within a factor 2 of attention transfer's at AT's weight 0.1 (training.loss_balance at 320x64 "
    "on synthetic data: 8 % vs 4 % of the task gradient at the student's initialisation, 23 % vs 41 % after "
    "150 iterations). Caveat: on raw sums of squares the spatial softmax is nearly one-hot for these "
    "networks (one position holds 96-100 % of the mass: the label teacher's on a lane, the student's at the "
    "image border), so the gradient comes from the images whose two strongest positions are close, and its "
    "size depends on the networks' state more than on the weight."
)

METHODS = ("kd", "at", "intra_kd", "skd_pixel", "skd_pair", "skd_holistic", "lgad")
ALIASES = {"skd": ("skd_pixel", "skd_pair", "skd_holistic")}
DEFAULT_WEIGHTS = {
    "kd": 1.0,
    "at": 0.1,  # IntRA-KD eq. 5: alpha_2
    "intra_kd": 0.1,  # IntRA-KD eq. 5: alpha_1
    "skd_pixel": 10.0,  # SKD: lambda_1 (paper and code)
    "skd_pair": 0.5,  # SKD run script's --lambda-pa, behind the released results (code default 1.0; paper lambda_1 = 10)
    "skd_holistic": 0.1,  # SKD: lambda_2 (paper and code's lambda_d; the gradient penalty's 10 is inside it: 1 overall)
    # ours: gradient share of the task gradient (training.loss_balance, 320x64, 10 batches of 8; teachers
    # of 150 iterations): at the student's initialisation LGAD 0.5 -> 8.1 % (0.1 -> 1.6 %), AT 0.1 -> 4.3 %;
    # after 150 student iterations LGAD 0.5 -> 23 % (0.1 -> 4.6 %), AT 0.1 -> 41 %. See LGAD_NOTE.
    "lgad": 0.5,
}
DEFAULTS: dict[str, Any] = {
    "method": [],
    "teacher": None,
    "pairs": [["block2", "layer2"], ["block3", "layer4"]],
    "weights": {},
    "aoi_kernel": 5,
    "skew_floor": DEFAULT_SKEW_FLOOR,
    "temperature": 1.0,
    "skd_pair_taps": ["block3", "psp"],
    "skd_pair_scale": 0.5,
    "skd_discriminator_lr": 4e-4,
    "skd_gradient_penalty": 10.0,
    "lgad_teacher": None,
    "lgad_pairs": [["block2", "block2"], ["block3", "block3"]],
    "teacher_half": True,
}
TEACHER_METHODS = {"kd", "at", "intra_kd", "skd_pixel", "skd_pair", "skd_holistic"}


def resolve(section: dict[str, Any] | None) -> dict[str, Any] | None:
    """Defaults filled in, aliases expanded, names checked; None when nothing is distilled."""
    if not section:
        return None
    unknown = set(section) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"distill: unknown keys {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    cfg = {**copy.deepcopy(DEFAULTS), **copy.deepcopy(section)}
    methods = cfg["method"]
    methods = [methods] if isinstance(methods, str) else list(methods)
    expanded: list[str] = []
    for m in methods:
        for name in ALIASES.get(m, (m,)):
            if name not in METHODS:
                raise ValueError(f"distill.method: unknown method {m!r}; choose from {METHODS + tuple(ALIASES)}")
            if name not in expanded:
                expanded.append(name)
    if not expanded:
        return None
    cfg["method"] = expanded
    bad = set(cfg["weights"]) - set(METHODS)
    if bad:
        raise ValueError(f"distill.weights: unknown methods {sorted(bad)}")
    cfg["weights"] = {m: float(cfg["weights"].get(m, DEFAULT_WEIGHTS[m])) for m in expanded}
    if TEACHER_METHODS & set(expanded) and not cfg["teacher"]:
        raise ValueError(f"distill.teacher: {sorted(TEACHER_METHODS & set(expanded))} need a teacher checkpoint")
    if "lgad" in expanded and not cfg["lgad_teacher"]:
        raise ValueError("distill.lgad_teacher: lgad needs a label-input teacher checkpoint (model.input: label)")
    return cfg


def load_frozen(path: str, student_config: dict[str, Any], device: torch.device, half: bool) -> nn.Module:
    """A teacher from its checkpoint: eval mode, no gradients, float16 on CUDA when ``half``."""
    from training.models import build_model  # local: models import nothing from here

    ckpt = load_checkpoint(path, "cpu")
    config = copy.deepcopy(ckpt["config"])
    if config["input"] != student_config["input"]:
        raise DataError(path, "teacher was trained with other preprocessing (input size/crop/normalisation) than the student")
    classes = config["dataset"].get("classes", "culane"), student_config["dataset"]["classes"]
    if classes[0] != classes[1]:
        raise DataError(path, f"teacher was trained on the {classes[0]!r} classes, the student on {classes[1]!r}")
    config["model"]["pretrained"] = None
    model = build_model(config)
    model.load_state_dict(ckpt["model"])
    model.eval().requires_grad_(False).to(device)
    if half and device.type == "cuda":
        model.half()
    return model


class Distiller(nn.Module):
    """Computes the weighted distillation losses of one training step."""

    def __init__(self, cfg: dict[str, Any], student_config: dict[str, Any], device: torch.device, cpu_bf16: bool = False) -> None:
        super().__init__()
        self.cfg = cfg
        self.cpu_bf16 = cpu_bf16 and device.type == "cpu"  # teacher forward under CPU bfloat16 autocast
        self.methods: list[str] = cfg["method"]
        self.weights: dict[str, float] = cfg["weights"]
        self.device = device
        self.half = bool(cfg["teacher_half"]) and device.type == "cuda"
        self.num_classes = class_table(student_config["dataset"]["classes"]).num_classes
        self.teacher = load_frozen(cfg["teacher"], student_config, device, cfg["teacher_half"]) if TEACHER_METHODS & set(self.methods) else None
        self.lgad_teacher = load_frozen(cfg["lgad_teacher"], student_config, device, cfg["teacher_half"]) if "lgad" in self.methods else None
        self.holistic = (
            HolisticDistiller(self.num_classes, cfg["skd_discriminator_lr"], cfg["skd_gradient_penalty"], self.weights["skd_holistic"]).to(device)
            if "skd_holistic" in self.methods else None
        )
        pairs = [tuple(p) for p in cfg["pairs"]] if {"at", "intra_kd"} & set(self.methods) else []
        self.pairs: list[tuple[str, str]] = pairs
        self.skd_pair = tuple(cfg["skd_pair_taps"]) if "skd_pair" in self.methods else None
        self.lgad_pairs = [tuple(p) for p in cfg["lgad_pairs"]] if "lgad" in self.methods else []
        student = {s for s, _ in self.pairs} | {s for s, _ in self.lgad_pairs} | ({self.skd_pair[0]} if self.skd_pair else set())
        self.student_taps = tuple(sorted(student))
        self.teacher_taps = tuple(sorted({t for _, t in self.pairs} | ({self.skd_pair[1]} if self.skd_pair else set())))
        self.lgad_taps = tuple(sorted({t for _, t in self.lgad_pairs}))
        self._critic_batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None  # (x, seg_s, seg_t) of the last forward

    def train(self, mode: bool = True) -> "Distiller":
        super().train(mode)
        for t in (self.teacher, self.lgad_teacher):
            if t is not None:
                t.eval()  # teachers stay in eval mode (BatchNorm statistics fixed, no dropout)
        return self

    @torch.no_grad()
    def _teacher(self, model: nn.Module, x: torch.Tensor, taps: tuple[str, ...]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        inp = x.half() if self.half else x
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.cpu_bf16):
            out = model(inp, taps=taps) if taps else model(inp)  # without taps a model returns (seg, exist) only
        feats = out[2] if taps else {}
        return out[0].float(), {k: v.float() for k, v in feats.items()}

    def forward(self, x: torch.Tensor, label: torch.Tensor, seg_s: torch.Tensor, taps_s: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Weighted losses ``{"distill/<method>": tensor}`` (already multiplied by their weights)."""
        out: dict[str, torch.Tensor] = {}
        seg_t, taps_t = (None, {})
        if self.teacher is not None:
            seg_t, taps_t = self._teacher(self.teacher, x, self.teacher_taps)
        if "kd" in self.methods:
            out["kd"] = kd_loss(seg_s, seg_t, self.cfg["temperature"])
        if "skd_pixel" in self.methods:
            out["skd_pixel"] = kd_loss(seg_s, seg_t, 1.0)
        if "at" in self.methods:
            out["at"] = sum(attention_loss(taps_s[s], taps_t[t]) for s, t in self.pairs)
        if "intra_kd" in self.methods:
            regions = RegionMaps(label, self.num_classes, self.cfg["aoi_kernel"])  # shared by all pairs
            out["intra_kd"] = sum(intra_kd_loss(taps_s[s], taps_t[t], label, self.num_classes, self.cfg["aoi_kernel"], regions,
                                                self.cfg["skew_floor"])
                                  for s, t in self.pairs)
        if "skd_pair" in self.methods:
            s, t = self.skd_pair  # type: ignore[misc]
            out["skd_pair"] = pairwise_loss(taps_s[s], taps_t[t], self.cfg["skd_pair_scale"])
        if "skd_holistic" in self.methods:
            out["skd_holistic"] = self.holistic.generator_loss(x, seg_s)  # type: ignore[union-attr]
            self._critic_batch = (x.detach(), seg_s.detach(), seg_t)  # for after_student_step
        if "lgad" in self.methods:
            _, taps_l = self._teacher(self.lgad_teacher, one_hot_label(label, self.num_classes), self.lgad_taps)  # type: ignore[arg-type]
            out["lgad"] = sum(sad_attention_loss(taps_s[s], taps_l[t]) for s, t in self.lgad_pairs)
        return {f"distill/{k}": self.weights[k] * v for k, v in out.items()}

    def after_student_step(self) -> dict[str, float]:
        """After the student's optimiser step: SKD's one discriminator step on the outputs of the
        last ``forward``, detached (the authors' order, 1:1); ``{"distill/skd_critic": L_D}`` or {}."""
        batch, self._critic_batch = self._critic_batch, None
        if self.holistic is None or batch is None:
            return {}
        return {"distill/skd_critic": self.holistic.discriminator_step(*batch)}

    # -- state that must survive --resume ----------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        return self.holistic.state() if self.holistic is not None else {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if self.holistic is not None and state:
            self.holistic.load_state(state)

