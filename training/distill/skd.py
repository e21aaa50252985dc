"""Structured knowledge distillation (Liu et al., CVPR 2019): pair-wise and holistic terms.

Followed from the official code (irfanICMLL/structure_knowledge_distillation, utils/criterion.py,
networks/sagan_models.py) where it and the paper differ; the choices are marked.

**Pixel-wise** is :func:`training.distill.kd.kd_loss` at temperature 1 (KL from teacher to
student per pixel; the code's cross-entropy form has the same gradient). We average over images
too (the code sums over the batch), so the weight does not depend on the batch size.

**Pair-wise.** Nodes are the features max-pooled over windows of ``scale`` times the feature
map's height and width (the code's ``--pool-scale 0.5``; max rather than the paper's average
pooling, which the authors found better); a_ij = f_i . f_j / (|f_i| |f_j|) for every pair of
nodes, separately for student and teacher; L_pa = sum_ij (a_ij^S - a_ij^T)^2 / (nodes)^2, mean
over images. Default features: the student's encoder output and the teacher's PSP output.

**Holistic.** A conditional Wasserstein GAN with gradient penalty: the discriminator D scores an
(image, class-probability map) pair (the paper's conditioning; the released code feeds only the
logits). D is trained to rank teacher maps above student maps,
``L_D = w * (D(x, S) - D(x, T) + gp * (|grad D(x, m)| - 1)^2)`` on per-sample interpolates m
(gp = 10, w = the holistic weight, 0.1), with SGD (lr 4e-4, momentum 0.9) once per student step;
the student, as the generator, minimises ``L_ho = -D(x, S)`` (weighted by w by the distiller).
D: strided 3x3 convolutions with spectral normalisation and LeakyReLU(0.1), global average
pooling (the code's SAGAN self-attention layers are left out).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def node_similarity(feature: torch.Tensor) -> torch.Tensor:
    """(N, C, h, w) -> (N, h*w, h*w) cosine similarities between spatial nodes."""
    f = feature.float().flatten(2)
    f = f / f.norm(dim=1, keepdim=True).clamp(min=1e-8)
    return f.transpose(1, 2) @ f


def pool_nodes(feature: torch.Tensor, scale: float) -> torch.Tensor:
    h, w = feature.shape[-2:]
    kh, kw = max(1, math.ceil(h * scale)), max(1, math.ceil(w * scale))
    return F.max_pool2d(feature, (kh, kw), stride=(kh, kw), ceil_mode=True)


def pairwise_loss(student_feature: torch.Tensor, teacher_feature: torch.Tensor, scale: float = 0.5) -> torch.Tensor:
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
