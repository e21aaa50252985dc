import math

import torch
import torch.nn.functional as F

from training.losses import LaneSegLoss


def test_uniform_logits_give_log_values():
    loss = LaneSegLoss(background_weight=0.4, exist_weight=0.1)
    label = torch.randint(0, 5, (2, 4, 6))
    out = loss(torch.zeros(2, 5, 4, 6), torch.zeros(2, 4), label, torch.ones(2, 4))
    assert math.isclose(out["seg"].item(), math.log(5), rel_tol=1e-6)
    assert math.isclose(out["exist"].item(), math.log(2), rel_tol=1e-6)
    assert math.isclose(out["total"].item(), math.log(5) + 0.1 * math.log(2), rel_tol=1e-6)


def test_background_weight_and_ignored_pixels():
    # three pixels: background (weight 0.4), lane 2 (weight 1), ignored (255)
    logits = torch.tensor([[2.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0, 0.0], [9.0, -9.0, 0.0, 0.0, 0.0]]).T.reshape(1, 5, 1, 3)
    label = torch.tensor([[[0, 2, 255]]])
    ce = [-torch.log_softmax(logits[0, :, 0, i], 0)[c].item() for i, c in enumerate([0, 2])]
    expected = (0.4 * ce[0] + 1.0 * ce[1]) / (0.4 + 1.0)
    out = LaneSegLoss(background_weight=0.4)(logits, torch.zeros(1, 4), label, torch.zeros(1, 4))
    assert math.isclose(out["seg"].item(), expected, rel_tol=1e-6)
    torch.testing.assert_close(out["seg"], F.cross_entropy(logits, label, weight=torch.tensor([0.4, 1, 1, 1, 1]), ignore_index=255))


def test_existence_uses_logits_once():
    loss = LaneSegLoss()
    logits = torch.tensor([[3.0, -2.0, 0.5, 0.0]])
    target = torch.tensor([[1.0, 0.0, 1.0, 0.0]])
    out = loss(torch.zeros(1, 5, 2, 2), logits, torch.zeros(1, 2, 2, dtype=torch.long), target)
    p = torch.sigmoid(logits)
    manual = -(target * p.log() + (1 - target) * (1 - p).log()).mean()
    torch.testing.assert_close(out["exist"], manual)


def test_a_global_normaliser_makes_process_losses_sum_to_the_batch_loss():
    """What DDP needs: per-process losses with the global normaliser average to the full-batch loss."""
    torch.manual_seed(0)
    logits, label = torch.randn(4, 5, 3, 5), torch.randint(0, 5, (4, 3, 5))
    label[0, 0, :] = 255
    loss = LaneSegLoss()
    full = loss(logits, torch.zeros(4, 4), label, torch.zeros(4, 4))["seg"]
    weights = [loss.class_weight[label[i::2][label[i::2] != 255]].sum() for i in (0, 1)]
    mean_weight = (weights[0] + weights[1]) / 2
    parts = [loss(logits[i::2], torch.zeros(2, 4), label[i::2], torch.zeros(2, 4), weight_sum=lambda w: mean_weight)["seg"] for i in (0, 1)]
    torch.testing.assert_close((parts[0] + parts[1]) / 2, full)
