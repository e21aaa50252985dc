"""IntRA-KD against an independent NumPy reference, and its properties."""
import numpy as np
import pytest
import torch

from training.distill.attention import attention_loss, attention_map
import torch.nn.functional as F

from training.data.label_input import one_hot_label
from training.distill.intra_kd import RegionMaps, affinity, affinity_loss, aoi_maps, intra_kd_loss, moment_pool


def reference_moments(f: np.ndarray, m: np.ndarray):
    """Straight from the definitions, float64, one image: f (C, h, w), m (K, h, w)."""
    K, C = m.shape[0], f.shape[0]
    out = np.zeros((3, K, C))
    present = np.zeros(K, bool)
    for k in range(K):
        sel = m[k] > 0
        if not sel.any():
            continue
        present[k] = True
        x = f[:, sel].astype(np.float64)  # (C, n)
        mu = x.mean(1)
        var = ((x - mu[:, None]) ** 2).mean(1)
        skew = (((x - mu[:, None]) / np.sqrt(var + 1e-6)[:, None]) ** 3).mean(1)
        out[:, k] = mu, var, skew
    return out, present


def reference_loss(fs, ft, ms, mt):
    ps, present_s = reference_moments(fs, ms)
    pt, present_t = reference_moments(ft, mt)
    present = present_s & present_t
    def cos(p):
        n = np.linalg.norm(p, axis=-1, keepdims=True)
        u = p / np.maximum(n, 1e-8)
        return u @ np.swapaxes(u, -1, -2)
    cs, ct = cos(ps), cos(pt)
    idx = np.flatnonzero(present)
    n = len(idx)
    diff = (cs - ct)[:, idx][:, :, idx]
    return (diff**2).sum() / (3 * n * n)


def random_case(seed: int, h=8, w=12, cs=6, ct=9):
    g = torch.Generator().manual_seed(seed)
    label = torch.zeros(2, h * 4, w * 4, dtype=torch.long)
    label[:, :, 5:8] = 1
    label[:, :, 20:23] = 2
    label[0, :, 33:35] = 3  # class 3 only in image 0; class 4 nowhere
    label[:, :2, :] = 255
    fs = torch.randn(2, cs, h, w, generator=g) * 2 + 1
    ft = torch.randn(2, ct, h, w, generator=g) - 3
    return label, fs, ft


def test_moments_match_the_numpy_reference():
    label, fs, _ = random_case(0)
    aoi = aoi_maps(label, 5, 5, (8, 12))
    moments, present = moment_pool(fs, aoi)
    for i in range(2):
        ref, ref_present = reference_moments(fs[i].numpy(), aoi[i].numpy())
        np.testing.assert_array_equal(present[i].numpy(), ref_present)
        np.testing.assert_allclose(moments[i].numpy(), ref, rtol=2e-4, atol=2e-4)
    assert present[0].tolist() == [True, True, True, True, False] and present[1, 3].item() is False


def test_loss_matches_the_numpy_reference():
    for seed in range(3):
        label, fs, ft = random_case(seed)
        loss = intra_kd_loss(fs, ft, label, 5, 5).item()
        ms, mt = aoi_maps(label, 5, 5, (8, 12)), aoi_maps(label, 5, 5, (8, 12))
        ref = np.mean([reference_loss(fs[i].numpy(), ft[i].numpy(), ms[i].numpy(), mt[i].numpy()) for i in range(2)])
        assert loss == pytest.approx(ref, rel=1e-3, abs=1e-6)


def test_identical_features_give_zero_and_different_ones_do_not():
    label, fs, ft = random_case(1, cs=7, ct=7)
    assert intra_kd_loss(fs, fs.clone(), label).item() == pytest.approx(0.0, abs=1e-10)
    assert intra_kd_loss(fs, ft, label).item() > 1e-3


def test_invariances_the_maths_promises():
    label, fs, ft = random_case(2)
    base = intra_kd_loss(fs, ft, label).item()
    # scaling all channels by s > 0 scales mu1 by s, mu2 by s^2, leaves skewness: cosines unchanged
    assert intra_kd_loss(fs * 3.7, ft, label).item() == pytest.approx(base, rel=1e-4)
    assert intra_kd_loss(fs, ft * 0.2, label).item() == pytest.approx(base, rel=1e-4)
    # scaling one channel changes the moment vectors' directions
    skewed = fs.clone()
    skewed[:, 0] *= 10
    assert abs(intra_kd_loss(skewed, ft, label).item() - base) > 1e-3
    # the channel counts of student and teacher differ (6 vs 9 here): no projection needed
    assert np.isfinite(base) and base > 1e-3


def test_gradients_reach_the_student_only():
    label, fs, ft = random_case(3)
    fs.requires_grad_(True)
    ft.requires_grad_(True)
    intra_kd_loss(fs, ft, label).backward()
    assert fs.grad is not None and fs.grad.abs().sum() > 0
    assert ft.grad is None


def test_absent_classes_and_empty_aois_are_safe():
    label = torch.full((1, 32, 48), 255, dtype=torch.long)  # everything ignored: no class anywhere
    fs, ft = torch.randn(1, 4, 8, 12, requires_grad=True), torch.randn(1, 5, 8, 12)
    loss = intra_kd_loss(fs, ft, label)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(fs.grad).all()
    label = torch.zeros(1, 32, 48, dtype=torch.long)  # background only: one class, nothing to relate
    assert intra_kd_loss(torch.randn(1, 4, 8, 12), ft, label).item() == pytest.approx(0.0, abs=1e-10)
    constant = torch.ones(1, 4, 8, 12)  # zero variance everywhere: finite
    label[:, :, 10:14] = 2
    assert torch.isfinite(intra_kd_loss(constant, ft, label))


def test_aoi_of_a_one_pixel_line_grows_by_two_pixels_with_a_5x5_kernel():
    label = torch.zeros(1, 20, 20, dtype=torch.long)
    label[0, :, 9] = 3
    aoi = aoi_maps(label, 5, 5)
    cols = torch.nonzero(aoi[0, 3].any(0)).flatten().tolist()
    assert cols == [7, 8, 9, 10, 11]
    assert aoi_maps(label, 5, 3)[0, 3].any(0).nonzero().flatten().tolist() == [8, 9, 10]
    # AOIs overlap: the dilated background covers the one-pixel lane too
    assert aoi[0, 0].all()
    # brought to 1/4 resolution, a thin lane survives (max pooling), ignored pixels belong nowhere
    small = aoi_maps(label, 5, 5, (5, 5))
    assert small[0, 3].any(0).nonzero().flatten().tolist() == [1, 2]
    label[0, :5] = 255
    assert aoi_maps(label, 5, 1)[0, :, :5].sum() == 0
    with pytest.raises(ValueError, match="odd"):
        aoi_maps(label, 5, 4)


def test_affinity_is_cosine_and_symmetric():
    m = torch.randn(2, 3, 5, 7)
    c = affinity(m)
    assert torch.allclose(c, c.transpose(-1, -2)) and torch.allclose(torch.diagonal(c, dim1=-2, dim2=-1), torch.ones(2, 3, 5), atol=1e-6)
    present = torch.tensor([[True] * 5, [True, True, False, False, False]])
    # the loss normalises by 3 n^2 over present classes (n = 5 and n = 2), per image, then averages
    # the images; entries of absent classes (image 1: classes 2-4) must not count at all
    shifted = c + torch.tensor([0.1, 0.3]).view(2, 1, 1, 1)
    shifted[1, :, 2:, :] += 5.0
    shifted[1, :, :, 2:] += 5.0
    assert affinity_loss(shifted, c, present).item() == pytest.approx((0.01 + 0.09) / 2, rel=1e-5)


def test_attention_transfer():
    fs, ft = torch.randn(2, 8, 16, 24, requires_grad=True), torch.randn(2, 32, 8, 12)
    a = attention_map(ft, (8, 12))
    assert a.shape == (2, 96) and torch.allclose(a.norm(dim=1), torch.ones(2))
    assert attention_loss(ft * 2.0, ft).item() == pytest.approx(0.0, abs=1e-10)  # scale-free
    loss = attention_loss(fs, ft)
    assert 0 < loss.item() <= 2.0  # distance between unit vectors
    loss.backward()
    assert fs.grad is not None


def test_fused_aoi_pooling_equals_dilation_then_max_pooling():
    """RegionMaps pools once from the label; the definition dilates at full resolution (average
    filter > 0) and then max-pools to the feature grid. Equal for divisible and other sizes."""
    g = torch.Generator().manual_seed(4)
    dense = torch.randint(0, 5, (2, 48, 96), generator=g)
    dense[dense == 4] = 0
    dense[:, :, 40:41] = 3
    dense[:, :6] = 255
    sparse = torch.full((2, 48, 96), 255)  # thin lanes in an ignored background: mostly empty AOIs
    sparse[0, 20, 7] = 1
    sparse[1, 30:, 61] = 2
    sparse[:, 47, 95] = 4
    for label, kernel in [(lbl, k) for lbl in (dense, sparse) for k in (1, 3, 5, 7)]:
        onehot = one_hot_label(label, 5)
        dilated = (F.avg_pool2d(onehot, kernel, stride=1, padding=kernel // 2, count_include_pad=False) > 0).float()
        regions = RegionMaps(label, 5, kernel)
        for size in [(48, 96), (12, 24), (6, 12), (7, 13), (5, 40)]:
            expected = F.adaptive_max_pool2d(dilated, size) if size != (48, 96) else dilated
            assert torch.equal(regions.at(size), expected), (kernel, size)
        assert regions.at((6, 12)) is regions.at((6, 12))  # made once per resolution


def test_one_hot_labels_are_contiguous_and_ignore_255():
    label = torch.tensor([[0, 3, 255], [4, 1, 2]])
    onehot = one_hot_label(label, 5)
    assert onehot.shape == (5, 2, 3) and onehot.is_contiguous()
    assert onehot[:, 0, 2].sum() == 0 and onehot[3, 0, 1] == 1 and onehot.sum() == 5
    assert one_hot_label(label[None], 5).shape == (1, 5, 2, 3)
    for bad in (7, -1):
        with pytest.raises(ValueError, match="class indices 0..4 or 255"):
            one_hot_label(torch.tensor([[0, bad]]), 5)


def test_moments_stay_float32_under_autocast():
    label, fs, ft = random_case(6)
    fs.requires_grad_(True)
    expected = intra_kd_loss(fs, ft, label)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = intra_kd_loss(fs, ft, label)
    assert loss.dtype == torch.float32 and loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()
    assert fs.grad.dtype == torch.float32 and torch.isfinite(fs.grad).all()


def autograd_moments(feature: torch.Tensor, aoi: torch.Tensor, eps: float = 1e-6, skew_floor: float = 0.0) -> torch.Tensor:
    """The masked central moments written plainly, differentiated by autograd: (N, 3, K, C)."""
    m = aoi[:, :, None]  # (N, K, 1, h, w)
    f = feature[:, None]  # (N, 1, C, h, w)
    count = m.sum(dim=(3, 4)).clamp(min=1.0)
    mean = (m * f).sum(dim=(3, 4)) / count
    centred = f - mean[..., None, None]
    var = (m * centred**2).sum(dim=(3, 4)) / count
    image_var = feature.detach().var(dim=(2, 3), unbiased=False)[:, None]  # (N, 1, C)
    skew = (m * centred**3).sum(dim=(3, 4)) / count / (var + eps + skew_floor * image_var).pow(1.5)
    return torch.stack([mean, var, skew], dim=1)


@pytest.mark.parametrize("skew_floor", [0.0, 0.01])
def test_hand_written_moment_gradient_equals_autograd(skew_floor):
    label, fs, _ = random_case(5)
    aoi = aoi_maps(label, 5, 5, (8, 12))
    present = aoi.flatten(2).sum(2) > 0
    weights = torch.randn(2, 3, 5, 6, dtype=torch.float64)
    f64 = fs.double().requires_grad_(True)
    moments, _ = moment_pool(f64, aoi, skew_floor=skew_floor)
    (moments * weights).sum().backward()
    f_ref = fs.double().requires_grad_(True)
    ref = autograd_moments(f_ref, aoi.double(), skew_floor=skew_floor) * present[:, None, :, None]
    (ref * weights).sum().backward()
    torch.testing.assert_close(moments.double(), ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(f64.grad, f_ref.grad, rtol=1e-5, atol=1e-7)
    small = torch.randn(1, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    small_aoi = (torch.rand(1, 5, 4, 5, generator=torch.Generator().manual_seed(1)) > 0.4).double()
    assert torch.autograd.gradcheck(lambda x: moment_pool(x, small_aoi)[0], (small,))


def test_skew_floor_tames_near_constant_regions():
    """A channel almost constant over a lane AOI (a ReLU that is ~0 there) has a meaningless
    skewness whose gradient explodes without the floor; with it the gradient stays of the order
    of the other channels' and the loss keeps its scale invariance."""
    label, fs, ft = random_case(7)
    lane = aoi_maps(label, 5, 5, (8, 12))[:, 1:2].bool().expand_as(fs[:, :1])
    fs[:, :1][lane] = 1e-2 * torch.randn(int(lane.sum()), generator=torch.Generator().manual_seed(0))  # ~constant in the lane
    grads = {}
    for floor in (0.0, 0.01):
        f = fs.clone().requires_grad_(True)
        loss = intra_kd_loss(f, ft, label, skew_floor=floor)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(f.grad).all()
        grads[floor] = f.grad
        scaled = intra_kd_loss(fs * 5.0, ft, label, skew_floor=floor).item()
        if floor:  # without the floor the absolute eps decides such a region's skewness: not scale-free
            assert scaled == pytest.approx(loss.item(), rel=1e-4)
    spiky, tamed = grads[0.0][:, 0].abs().max(), grads[0.01][:, 0].abs().max()
    assert spiky > 30 * grads[0.0][:, 1:].abs().max()  # one near-constant channel dominates the gradient
    assert tamed < 2 * grads[0.01][:, 1:].abs().max() and spiky > 100 * tamed


def hard_features(seed: int, label: torch.Tensor, h=8, w=12) -> torch.Tensor:
    """Features float32 cannot sum naively (N, 6, h, w): per channel, constant everywhere; constant
    on the lane AOIs far from 0; nearly flat there (5 + 1e-3 noise); ReLU-sparse; a large offset
    (1000 + 0.01 noise); plain N(0, 1)."""
    g = torch.Generator().manual_seed(seed)
    n = label.shape[0]
    lane = aoi_maps(label, 5, 5, (h, w))[:, 1:].amax(1)  # (N, h, w): any lane's AOI
    noise = lambda scale: scale * torch.randn(n, h, w, generator=g)  # noqa: E731
    channels = [
        torch.full((n, h, w), 3.7),
        torch.where(lane > 0, torch.full((n, h, w), 5.0), noise(1.0)),
        torch.where(lane > 0, 5.0 + noise(1e-3), noise(1.0)),
        torch.relu(noise(2.0) - 2.5),
        1000.0 + noise(1e-2),
        noise(1.0),
    ]
    return torch.stack(channels, dim=1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_float32_moments_loss_and_gradient_match_float64_on_hard_features(seed):
    """The measured failure of raw-sum moments: skewness +-100 where it is 0, L_m 5x off."""
    label, _, ft = random_case(seed)
    fs = hard_features(seed, label)
    aoi = aoi_maps(label, 5, 5, (8, 12))
    present = aoi.flatten(2).sum(2) > 0
    m32, _ = moment_pool(fs, aoi)
    m64 = autograd_moments(fs.double(), aoi.double()) * present[:, None, :, None]
    assert m32.dtype == torch.float32
    torch.testing.assert_close(m32[:, 0].double(), m64[:, 0], rtol=1e-6, atol=1e-6)  # means
    torch.testing.assert_close(m32[:, 1].double(), m64[:, 1], rtol=1e-4, atol=1e-9)  # variances
    torch.testing.assert_close(m32[:, 2].double(), m64[:, 2], rtol=1e-4, atol=1e-5)  # skewness
    for teacher in (ft, hard_features(seed + 10, label)):
        f32 = fs.clone().requires_grad_(True)
        f64 = fs.double().requires_grad_(True)
        l32 = intra_kd_loss(f32, teacher, label)
        l64 = intra_kd_loss(f64, teacher.double(), label)
        l32.backward()
        l64.backward()
        assert l64.item() > 1e-5  # a loss worth comparing
        assert abs(l32.item() - l64.item()) <= 1e-4 * l64.item()
        assert (f32.grad.double() - f64.grad).norm() <= 1e-4 * f64.grad.norm()


def test_a_lane_less_image_counts_as_zero_in_the_batch_mean():
    label, fs, ft = random_case(8)
    alone = intra_kd_loss(fs[:1], ft[:1], label[:1])
    background_only = label.clone()
    background_only[1][background_only[1] != 255] = 0
    both = intra_kd_loss(fs, ft, background_only)
    assert alone.item() > 0 and both.item() == pytest.approx(alone.item() / 2, rel=1e-6)
    assert intra_kd_loss(fs[1:], ft[1:], background_only[1:]).item() == pytest.approx(0.0, abs=1e-10)  # cos(v, v) = 1 to rounding
