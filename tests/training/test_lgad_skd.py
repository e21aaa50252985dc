"""LGAD moves the student; SKD follows the authors' code (update order, node pooling, detached norms)."""
import copy

import pytest
import torch
import torch.nn.functional as F

from tests.helpers import small_run
from training.checkpoint import load_checkpoint, save_checkpoint
from training.config import load_config
from training.data.label_input import one_hot_label
from training.distill.attention import attention_loss, sad_attention_loss
from training.distill.distiller import DEFAULT_WEIGHTS, LGAD_NOTE, Distiller, resolve
from training.distill.skd import HolisticDistiller, node_similarity, pairwise_loss, pool_nodes
from training.distributed import Dist
from training.losses import LaneSegLoss
from training.models import build_model
from training.train import Trainer

CONFIG = "training/configs/synthetic/erfnet.yaml"
SIZE = ["input.net_width=128", "input.net_height=32"]
CPU = torch.device("cpu")


def checkpoint(path, *overrides: str) -> str:
    """An untrained model's checkpoint at the test size (seeded: the same teacher every time)."""
    cfg = load_config(CONFIG, SIZE + list(overrides))
    torch.manual_seed(1)
    save_checkpoint(path, {"model": build_model(cfg).state_dict(), "config": cfg, "iteration": 0})
    return str(path)


def lanes(n: int = 2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A batch: noise images, four vertical lanes as labels, all lanes present."""
    x = torch.randn(n, 3, 32, 128, generator=torch.Generator().manual_seed(0))
    y = torch.zeros(n, 32, 128, dtype=torch.long)
    for k, col in enumerate((20, 50, 80, 110), start=1):
        y[:, :, col : col + 3] = k
    return x, y, torch.ones(n, 4)


def params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(u, v) for u, v in zip(a, b))


def flat_grad(loss: torch.Tensor, wrt: list[torch.Tensor]) -> torch.Tensor:
    grads = torch.autograd.grad(loss, wrt, retain_graph=True, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).flatten() for g, p in zip(grads, wrt)])


# -- LGAD ----------------------------------------------------------------------------------------
def test_lgad_note_says_what_comes_from_where():
    for part in ("abstract", "SAD", "Our choices", "softmax", "label map"):
        assert part in LGAD_NOTE
    assert DEFAULT_WEIGHTS["lgad"] > 0.1  # 0.1: a fifth to a tenth of AT's share (see DEFAULT_WEIGHTS)


def lgad_student(tmp_path, weight: float | None = None) -> tuple[Distiller, dict]:
    section = {"method": ["lgad"], "lgad_teacher": checkpoint(tmp_path / "label_teacher.pt", "model.input=label")}
    if weight is not None:
        section["weights"] = {"lgad": weight}
    student_cfg = load_config(CONFIG, SIZE + ["model.dropout=0.0"])
    return Distiller(resolve(section), student_cfg, CPU).train(), student_cfg


def short_training(student_cfg: dict, distiller: Distiller | None, steps: int = 3) -> list[torch.Tensor]:
    torch.manual_seed(0)
    student = build_model(student_cfg).train()
    loss_fn = LaneSegLoss(5, 0.4, 0.1)
    opt = torch.optim.SGD(student.parameters(), lr=0.01, momentum=0.9)
    x, y, e = lanes()
    for _ in range(steps):
        seg, exist, taps = student(x, taps=("block2", "block3"))
        loss = loss_fn(seg, exist, y, e)["total"]
        if distiller is not None:
            loss = loss + sum(distiller(x, y, seg, taps).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return params(student)


def test_lgad_changes_the_students_training(tmp_path):
    distiller, student_cfg = lgad_student(tmp_path)
    plain, again = short_training(student_cfg, None), short_training(student_cfg, None)
    assert same(plain, again)  # the comparison is deterministic
    lgad = short_training(student_cfg, distiller)
    changed = [not torch.allclose(a, b, rtol=1e-5, atol=1e-7) for a, b in zip(plain, lgad)]
    assert sum(changed) > len(changed) // 2  # most tensors moved, not just one by rounding


def test_lgad_gradient_reaches_the_taps_and_is_a_share_of_the_task_like_at(tmp_path):
    distiller, student_cfg = lgad_student(tmp_path)
    torch.manual_seed(0)
    student = build_model(student_cfg).train()
    x, y, e = lanes()
    seg, exist, taps = student(x, taps=distiller.student_taps)
    weighted = distiller(x, y, seg, taps)["distill/lgad"]
    tap_grads = torch.autograd.grad(weighted, [taps["block2"], taps["block3"]], retain_graph=True)
    assert all(g.abs().sum() > 0 and torch.isfinite(g).all() for g in tap_grads)
    # shares of the task gradient on the student's parameters: LGAD at its default weight against
    # attention transfer at its default weight on the same tap pairs (same label teacher)
    weights = [p for p in student.parameters() if p.requires_grad]
    task = flat_grad(LaneSegLoss(5, 0.4, 0.1)(seg, exist, y, e)["total"], weights).norm()
    lgad = flat_grad(weighted, weights).norm() / task
    with torch.no_grad():
        _, _, t = distiller.lgad_teacher(one_hot_label(y), taps=distiller.lgad_taps)
    at = DEFAULT_WEIGHTS["at"] * sum(attention_loss(taps[s], t[k]) for s, k in distiller.lgad_pairs)
    at_share = flat_grad(at, weights).norm() / task
    assert 0.1 * at_share < lgad < 1.0  # not negligible next to AT's, nor larger than the task's own


def test_sad_attention_is_a_spatial_softmax_of_squared_activations():
    f = torch.randn(2, 8, 4, 6)
    s = torch.randn(2, 8, 4, 6)
    p_f = torch.softmax(f.pow(2).sum(1).flatten(1), dim=1)
    p_s = torch.softmax(s.pow(2).sum(1).flatten(1), dim=1)
    assert sad_attention_loss(s, f).item() == pytest.approx(((p_s - p_f) ** 2).mean().item(), rel=1e-6)
    # maps of different sizes meet at the coarser one, by bilinear resizing of the squared sum
    fine = torch.randn(2, 8, 8, 12)
    a = F.interpolate(fine.pow(2).sum(1, keepdim=True), size=(4, 6), mode="bilinear", align_corners=False)
    expected = ((torch.softmax(a.flatten(1), 1) - p_f) ** 2).mean()
    assert sad_attention_loss(fine, f).item() == pytest.approx(expected.item(), rel=1e-6)


# -- SKD: pair-wise term -------------------------------------------------------------------------
def test_pair_nodes_pool_with_the_codes_integer_window_and_ceil_mode():
    f = torch.randn(1, 4, 65, 65)
    nodes = pool_nodes(f, 0.5)  # window int(32.5) = 32: nodes over rows/cols 0-31, 32-63, 64
    assert nodes.shape[-2:] == (3, 3)
    assert torch.equal(nodes[..., 2, 2], f[..., 64, 64])
    assert torch.equal(nodes[..., 0, 1], f[..., :32, 32:64].amax(dim=(-2, -1)))
    assert pool_nodes(torch.randn(1, 4, 8, 40), 0.5).shape[-2:] == (2, 2)
    assert pool_nodes(torch.randn(1, 4, 1, 3), 0.5).shape[-2:] == (1, 3)  # window at least 1


def test_pair_similarity_uses_detached_norms_as_the_authors_code():
    torch.manual_seed(0)
    s = torch.randn(2, 16, 8, 40, requires_grad=True)
    t = torch.randn(2, 32, 8, 40)

    def reference(norm_grad: bool) -> torch.Tensor:  # cosines of 2x2 max-pooled nodes, squared error / nodes^2
        def sim(f):
            f = F.max_pool2d(f, (4, 20)).flatten(2)
            norm = f.norm(dim=1, keepdim=True)
            f = f / ((norm if norm_grad else norm.detach()) + 1e-8)
            return f.transpose(1, 2) @ f
        return ((sim(s) - sim(t)) ** 2).sum(dim=(1, 2)).mean() / 16

    loss = pairwise_loss(s, t, 0.5)
    assert loss.item() == pytest.approx(reference(True).item(), rel=1e-5)  # the value is the cosines'
    grad, = torch.autograd.grad(loss, s)
    torch.testing.assert_close(grad, torch.autograd.grad(reference(False), s)[0])
    assert not torch.allclose(grad, torch.autograd.grad(reference(True), s)[0])  # not the exact cosine gradient
    assert node_similarity(torch.zeros(1, 3, 2, 2)).abs().sum() == 0  # zero nodes: no division by zero


def test_skd_default_weights_are_the_authors_run_script():
    assert DEFAULT_WEIGHTS["skd_pixel"] == 10.0 and DEFAULT_WEIGHTS["skd_pair"] == 0.5 and DEFAULT_WEIGHTS["skd_holistic"] == 0.1


# -- SKD: the discriminator's step comes after the student's -------------------------------------
def skd_distiller(tmp_path) -> tuple[Distiller, dict]:
    teacher = checkpoint(tmp_path / "teacher.pt", "model.arch=pspnet", "model.depth=18", "model.head_channels=16")
    student_cfg = load_config(CONFIG, SIZE + ["model.dropout=0.0"])
    return Distiller(resolve({"method": ["skd"], "teacher": teacher}), student_cfg, CPU).train(), student_cfg


def test_discriminator_steps_only_after_the_student_on_the_cached_detached_outputs(tmp_path):
    d, student_cfg = skd_distiller(tmp_path)
    torch.manual_seed(0)
    student = build_model(student_cfg).train()
    opt = torch.optim.SGD(student.parameters(), lr=0.05)
    x, y, e = lanes()
    critic = params(d.holistic.discriminator)
    seg, exist, taps = student(x, taps=d.student_taps)
    losses = d(x, y, seg, taps)
    assert same(critic, params(d.holistic.discriminator))  # forward leaves D alone
    twin = HolisticDistiller(5, weight=DEFAULT_WEIGHTS["skd_holistic"])  # D as the hook will find it
    twin.load_state(copy.deepcopy(d.holistic.state()))  # (spectral norm's vectors included)
    seg_t = d._teacher(d.teacher, x, ())[0]
    opt.zero_grad()
    (LaneSegLoss()(seg, exist, y, e)["total"] + sum(losses.values())).backward()
    assert all(p.grad is None for p in d.holistic.discriminator.parameters())  # the student's loss trains no D
    opt.step()
    torch.manual_seed(5)
    report = d.after_student_step()
    assert set(report) == {"distill/skd_critic"} and not same(critic, params(d.holistic.discriminator))
    torch.manual_seed(5)  # the same step by hand on the forward's outputs (pre-step student), detached
    twin.discriminator_step(x, seg.detach(), seg_t)
    assert same(params(twin.discriminator), params(d.holistic.discriminator))
    stepped = params(d.holistic.discriminator)
    assert d.after_student_step() == {} and same(stepped, params(d.holistic.discriminator))  # 1:1, once per forward


def test_discriminator_state_survives_a_checkpoint(tmp_path):
    d, student_cfg = skd_distiller(tmp_path)
    student = build_model(student_cfg).train()
    x, y, _ = lanes()
    for _ in range(2):
        seg, _, taps = student(x, taps=d.student_taps)
        d(x, y, seg.detach(), {k: v.detach() for k, v in taps.items()})
        d.after_student_step()
    save_checkpoint(tmp_path / "ckpt.pt", {"model": {}, "distiller": d.extra_state()})
    resumed, _ = skd_distiller(tmp_path)
    resumed.load_extra_state(load_checkpoint(tmp_path / "ckpt.pt")["distiller"])
    assert same(params(d.holistic.discriminator), params(resumed.holistic.discriminator))
    for run in (d, resumed):  # the next step is the same: momentum and spectral-norm vectors came along
        seg, _, taps = student(x, taps=run.student_taps)
        run(x, y, seg.detach(), {k: v.detach() for k, v in taps.items()})
        torch.manual_seed(3)
        run.after_student_step()
    assert same(params(d.holistic.discriminator), params(resumed.holistic.discriminator))


def test_trainer_steps_the_discriminator_after_the_student(tiny_dataset, tmp_path):
    teacher = checkpoint(tmp_path / "teacher.pt", "model.arch=pspnet", "model.depth=18", "model.head_channels=16")
    cfg = load_config(CONFIG, small_run(tiny_dataset, tmp_path / "s", "train.iterations=2", "train.warmup_iters=1",
                                        "distill={method: [skd_holistic], teacher: \"%s\"}" % teacher))
    trainer = Trainer(cfg, Dist())
    distiller, student = trainer.distiller, next(trainer.model.parameters())
    forward, hook, events = distiller.forward, distiller.after_student_step, []

    def record_forward(*args):
        events.append(("forward", student.detach().clone(), params(distiller.holistic.discriminator)))
        return forward(*args)

    def record_hook():
        before = params(distiller.holistic.discriminator)
        out = hook()
        events.append(("hook", student.detach().clone(), before, params(distiller.holistic.discriminator)))
        return out

    distiller.forward, distiller.after_student_step = record_forward, record_hook
    trainer.run()
    assert [e[0] for e in events] == ["forward", "hook"] * 2
    for (_, w_fwd, d_fwd), (_, w_hook, d_before, d_after) in zip(events[0::2], events[1::2]):
        assert not torch.equal(w_fwd, w_hook)  # the student had stepped when D stepped
        assert same(d_fwd, d_before) and not same(d_before, d_after)  # D moved in the hook only
