"""Structured knowledge distillation (Liu et al., CVPR 2019): pair-wise and holistic terms.

Followed from the official code (irfanICMLL/structure_knowledge_distillation: utils/criterion.py,
utils/utils.py, networks/kd_model.py, networks/sagan_models.py, run_train_val.sh) where the paper
is silent or differs; the choices are marked.

**Pixel-wise** is :func:`training.distill.kd.kd_loss` at temperature 1 (KL from teacher to
student per pixel; the code's cross-entropy form has the same gradient).

**Pair-wise** (as the code): nodes are the feature map max-pooled with kernel = stride =
int(scale * h) x int(scale * w) and ceil mode (``--pool-scale 0.5``: a 3x3 node grid on the
code's 65x65 map, 2x2 on an even map; max rather than the paper's average pooling); each node
vector is divided by its L2 norm *detached* (+1e-8), so a_ij is the cosine of nodes i, j but its
gradient does not go through the norms; L_pa = sum_ij (a_ij^S - a_ij^T)^2 / nodes^2, mean over
images. Default features: the student's encoder output and the teacher's PSP output.

**Holistic.** A conditional Wasserstein GAN with gradient penalty: the discriminator D scores an
(image, class-probability map) pair. D is trained to rank teacher maps above student maps,
``L_D = w * (D(x, S) - D(x, T) + gp * (|grad D(x, m)| - 1)^2)`` on per-sample interpolates m
(gp = 10, w = the holistic weight, 0.1: the penalty weighs 1 overall, as in the code), with SGD
(lr 4e-4, momentum 0.9); the student, as the generator, minimises ``L_ho = -D(x, S)`` (weighted
by w by the distiller). **Update order (the code's):** student forward, student loss and step,
then one D step on that forward's outputs, detached (1:1, no critic warm-up): the distiller
caches them in ``forward`` and :meth:`HolisticDistiller.discriminator_step` runs from
``Distiller.after_student_step``, which the trainer calls after the student's optimiser step.

Remaining differences from the authors' code:

- D's layout: 3x3 stride-2 spectral-normed convs 64-128-256-256 with LeakyReLU(0.1), a 1x1 conv
  to scores averaged over the map; theirs: BatchNorm on the input, 4x4 stride-2 convs
  64-128-256-512, a SAGAN self-attention block after the 256- and 512-channel convs, a 4x4 conv
  to the score. No self-attention here (cost on CPU; not ablated in the paper).
- D's input: the image (resized) concatenated with softmax probabilities at the student's output
  resolution (the paper's conditioning, as the CVPR-era code); the released code feeds the raw
  logits only, at 1/8 resolution. The gradient penalty interpolates probabilities, not logits.
- D's optimiser: constant lr, no weight decay; theirs decays it with the student's poly schedule
  and uses the run script's weight decay 5e-4.
- Pixel term: averaged over images and over pixels at the student's output resolution; the code
  sums over the batch (8 per GPU: 8x our weight at their batch) of per-image means at 1/8.
- Pair term: the student's tap may differ from the teacher's in channels (ERFNet encoder output
  vs PSP output) and in size (then the student's node grid is max-pooled to the teacher's); the
  code pools both with the teacher's kernel from two PSP outputs of the same size.
- Pair weight 0.5 (their run script), not the code's default 1.0 nor the paper's lambda_1 = 10
  (see DEFAULT_WEIGHTS).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def node_similarity(feature: torch.Tensor) -> torch.Tensor:
    """(N, C, h, w) -> (N, h*w, h*w) cosine similarities between spatial nodes; as the authors'
    code, the norms are detached (the gradient treats them as constants)."""
    f = feature.float().flatten(2)
    f = f / (f.norm(dim=1, keepdim=True).detach() + 1e-8)
    return f.transpose(1, 2) @ f


def node_kernel(size: tuple[int, int], scale: float) -> tuple[int, int]:
    """The code's pooling window: int(scale * h) x int(scale * w), at least 1x1."""
    return max(1, int(size[0] * scale)), max(1, int(size[1] * scale))


def pool_nodes(feature: torch.Tensor, scale: float) -> torch.Tensor:
    """(N, C, h, w) -> (N, C, gh, gw): max over windows of :func:`node_kernel`, stride = window,
    ceil mode (a partial last window is a node: 65 at scale 0.5 -> 3 nodes)."""
    k = node_kernel(tuple(feature.shape[-2:]), scale)
    return F.max_pool2d(feature, k, stride=k, ceil_mode=True)


def pairwise_loss(student_feature: torch.Tensor, teacher_feature: torch.Tensor, scale: float = 0.5) -> torch.Tensor:
    """(N, Cs, hs, ws), (N, Ct, ht, wt) -> scalar L_pa (see the module docstring)."""
    s = pool_nodes(student_feature, scale)
    t = pool_nodes(teacher_feature.detach(), scale)
    if s.shape[-2:] != t.shape[-2:]:
        s = F.adaptive_max_pool2d(s, t.shape[-2:])
    a_s, a_t = node_similarity(s), node_similarity(t)
    nodes = a_t.shape[-1]
    return (((a_s - a_t) ** 2).sum(dim=(1, 2)) / nodes**2).mean()


class Discriminator(nn.Module):
    """Scores (image, probability map) pairs; input is their concatenation at the map's size."""

    def __init__(self, num_classes: int, width: int = 64) -> None:
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        chans = [3 + num_classes, width, width * 2, width * 4, width * 4]
        layers: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += [sn(nn.Conv2d(cin, cout, 3, stride=2, padding=1)), nn.LeakyReLU(0.1)]
        self.body = nn.Sequential(*layers)
        self.head = sn(nn.Conv2d(chans[-1], 1, 1))

    def forward(self, image: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        if image.shape[-2:] != probs.shape[-2:]:
            image = F.interpolate(image, size=probs.shape[-2:], mode="bilinear", align_corners=False)
        return self.head(self.body(torch.cat([image, probs], dim=1))).mean(dim=(1, 2, 3))


class HolisticDistiller(nn.Module):
    """The discriminator, its optimiser, and the two losses of the holistic term."""

    def __init__(self, num_classes: int, lr: float = 4e-4, gradient_penalty: float = 10.0, weight: float = 0.1) -> None:
        super().__init__()
        self.discriminator = Discriminator(num_classes)
        self.gp = gradient_penalty
        self.weight = weight
        self.optimizer = torch.optim.SGD(self.discriminator.parameters(), lr=lr, momentum=0.9)
        self.sync: Callable[[Any], None] | None = None  # under DDP: averages D's gradients over processes

    @staticmethod
    def _probs(logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits.float(), dim=1)

    def discriminator_step(self, image: torch.Tensor, student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> float:
        """One WGAN-GP update of D; returns its loss."""
        d = self.discriminator
        d.requires_grad_(True)
        fake, real = self._probs(student_logits.detach()), self._probs(teacher_logits.detach())
        alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
        mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        score = d(image, mixed)
        grad, = torch.autograd.grad(score.sum(), mixed, create_graph=True)
        penalty = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
        loss = self.weight * (d(image, fake).mean() - d(image, real).mean() + self.gp * penalty)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.sync is not None:
            self.sync(self.discriminator.parameters())
        self.optimizer.step()
        return float(loss.detach())

    def generator_loss(self, image: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
        """-D(x, S): gradients flow to the student only."""
        self.discriminator.requires_grad_(False)
        return -self.discriminator(image, self._probs(student_logits)).mean()

    def state(self) -> dict[str, Any]:
        return {"discriminator": self.discriminator.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.discriminator.load_state_dict(state["discriminator"])
        self.optimizer.load_state_dict(state["optimizer"])
