"""KD, SKD, LGAD and the distiller: ~0 for identical networks, positive otherwise, and wired right."""
import copy

import pytest
import torch

from training.checkpoint import save_checkpoint
from training.config import load_config
from training.data.label_input import one_hot_label
from training.distill.distiller import Distiller, resolve
from training.distill.intra_kd import intra_kd_loss
from training.distill.kd import kd_loss
from training.distill.skd import HolisticDistiller, pairwise_loss
from training.models import build_model

CONFIG = "training/configs/synthetic/erfnet.yaml"


def test_kd_is_zero_for_identical_logits_and_scales_with_t_squared():
    s, t = torch.randn(2, 5, 8, 12), torch.randn(2, 5, 8, 12)
    assert kd_loss(s, s.clone()).item() == pytest.approx(0.0, abs=1e-7)
    assert kd_loss(s, t).item() > 0
    assert kd_loss(s, t, 4.0).item() == pytest.approx(16 * kd_loss(s / 4, t / 4).item(), rel=1e-5)
    # teacher logits at another resolution are resized (bilinearly) to the student's
    low = torch.nn.functional.avg_pool2d(s, 2)
    resized = torch.nn.functional.interpolate(low, size=s.shape[-2:], mode="bilinear", align_corners=False)
    assert kd_loss(s, low).item() == pytest.approx(kd_loss(s, resized).item(), rel=1e-6)


def test_pairwise_is_zero_for_identical_features_and_positive_otherwise():
    f = torch.randn(2, 16, 14, 66)
    assert pairwise_loss(f, f.clone(), 0.5).item() == pytest.approx(0.0, abs=1e-7)
    assert pairwise_loss(f, torch.randn(2, 32, 14, 66), 0.25).item() > 0  # channel counts may differ
    assert pairwise_loss(f, f * 3.0, 0.1).item() == pytest.approx(0.0, abs=1e-6)  # cosine: scale-free


def test_holistic_critic_is_blind_to_identical_maps_and_learns_to_separate_different_ones():
    torch.manual_seed(0)
    h = HolisticDistiller(5, lr=1e-2, weight=1.0)
    image = torch.randn(4, 3, 32, 96)
    t = torch.randn(4, 5, 32, 96) * 3
    def gap(s):  # eval: spectral norm's power iteration frozen, D a fixed function
        h.discriminator.eval()
        with torch.no_grad():
            value = (h.discriminator(image, torch.softmax(t, 1)) - h.discriminator(image, torch.softmax(s, 1))).mean().item()
        h.discriminator.train()
        return value

    s = torch.randn(4, 5, 32, 96)
    before = gap(s)
    for _ in range(30):
        h.discriminator_step(image, s, t)
    assert gap(s) > max(before, 0)  # the critic now scores teacher maps above student maps
    s.requires_grad_(True)
    h.optimizer.zero_grad(set_to_none=True)
    h.generator_loss(image, s).backward()
    assert s.grad.abs().sum() > 0 and all(p.grad is None for p in h.discriminator.parameters())  # D gets nothing


def untrained_checkpoint(path, arch: str, **model) -> dict:
    cfg = load_config(CONFIG, ["input.net_width=128", "input.net_height=32", f"model.arch={arch}"] + [f"model.{k}={v}" for k, v in model.items()])
    net = build_model(cfg)
    save_checkpoint(path, {"model": net.state_dict(), "config": cfg, "iteration": 0})
    return cfg


def test_distiller_combines_methods_and_keeps_teachers_frozen(tmp_path):
    untrained_checkpoint(tmp_path / "t.pt", "pspnet", depth=18, head_channels=16)
    untrained_checkpoint(tmp_path / "l.pt", "erfnet", input="label")
    student_cfg = load_config(CONFIG, ["input.net_width=128", "input.net_height=32"])
    cfg = resolve({"method": ["intra_kd", "at", "kd", "skd", "lgad"], "teacher": str(tmp_path / "t.pt"), "lgad_teacher": str(tmp_path / "l.pt")})
    assert cfg["method"] == ["intra_kd", "at", "kd", "skd_pixel", "skd_pair", "skd_holistic", "lgad"]
    assert cfg["weights"]["intra_kd"] == 0.1 and cfg["weights"]["at"] == 0.1  # the paper's alpha_1, alpha_2
    d = Distiller(cfg, student_cfg, torch.device("cpu")).train()
    assert not d.teacher.training and not any(p.requires_grad for p in d.teacher.parameters())
    student = build_model(student_cfg)
    x = torch.randn(2, 3, 32, 128)
    y = torch.randint(0, 5, (2, 32, 128))
    seg, exist, taps = student(x, taps=d.student_taps)
    losses = d(x, y, seg, taps)
    assert set(losses) == {f"distill/{m}" for m in cfg["method"]}
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert student.encoder.layers[0].conv.weight.grad is not None
    assert all(p.grad is None for p in d.teacher.parameters())
    # a teacher made for other preprocessing is refused
    other = load_config(CONFIG, ["input.net_width=256", "input.net_height=64"])
    with pytest.raises(Exception, match="other preprocessing"):
        Distiller(cfg, other, torch.device("cpu"))
    with pytest.raises(ValueError, match="need a teacher"):
        resolve({"method": ["kd"]})


def test_lgad_teacher_reads_one_hot_labels():
    label = torch.tensor([[[0, 1, 255], [4, 2, 3]]])
    onehot = one_hot_label(label)
    assert onehot.shape == (1, 5, 2, 3)
    assert onehot[0, :, 0, 2].sum() == 0 and onehot[0, 4, 1, 0] == 1 and onehot.sum() == 5
    model = build_model(load_config(CONFIG, ["input.net_width=128", "input.net_height=32", "model.input=label"]))
    seg, exist = model(one_hot_label(torch.randint(0, 5, (1, 32, 128))))
    assert seg.shape == (1, 5, 32, 128)


def test_a_short_distillation_lowers_the_affinity_loss():
    torch.manual_seed(0)
    student_cfg = load_config(CONFIG, ["input.net_width=128", "input.net_height=32", "model.dropout=0.0"])
    teacher = build_model(copy.deepcopy({**student_cfg, "model": {**student_cfg["model"], "arch": "pspnet", "depth": 18, "head_channels": 16}})).eval()
    student = build_model(student_cfg).train()
    x = torch.randn(4, 3, 32, 128)
    y = torch.zeros(4, 32, 128, dtype=torch.long)
    for k, col in enumerate((20, 50, 80, 110), start=1):
        y[:, :, col : col + 3] = k
    with torch.no_grad():
        _, _, t = teacher(x, taps=("layer2", "layer4"))

    def lm() -> torch.Tensor:
        _, _, s = student(x, taps=("block2", "block3"))
        return intra_kd_loss(s["block2"], t["layer2"], y) + intra_kd_loss(s["block3"], t["layer4"], y)

    before = lm().item()
    opt = torch.optim.SGD(student.parameters(), lr=0.05, momentum=0.9)
    for _ in range(40):
        opt.zero_grad()
        lm().backward()
        opt.step()
    assert lm().item() < 0.5 * before


def test_sad_attention_for_lgad_is_zero_for_identical_features():
    from training.distill.attention import sad_attention_loss

    f = torch.randn(2, 16, 8, 12)
    assert sad_attention_loss(f, f.clone()).item() == pytest.approx(0.0, abs=1e-12)
    assert sad_attention_loss(torch.randn(2, 16, 8, 12), f).item() > 0


def test_two_overrides_of_the_distillation_weights_keep_both():
    """`--set distill.weights.at=0 --set distill.weights.intra_kd=1` is L_m alone at weight 1: a shallow merge of the
    distill section kept only the last weight, and AT silently ran at its default 0.1."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "training/configs/synthetic/erfnet_intra_kd.yaml"
    config = load_config(path, ["distill.weights.at=0", "distill.weights.intra_kd=1"])
    assert config["distill"]["weights"] == {"intra_kd": 1, "at": 0}
    assert resolve(config["distill"])["weights"] == {"intra_kd": 1.0, "at": 0.0}
    assert load_config(path, ["distill.pairs=[[block3, layer4]]"])["distill"]["pairs"] == [["block3", "layer4"]]  # lists replace
