import pytest
import torch
import torch.nn.functional as F

from training.models.erfnet import ERFNet
from training.models.pspnet import PSPNet, adaptive_avg_pool
from training.models.resnet import ResNet, load_imagenet


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_erfnet_shapes_taps_and_size():
    model = ERFNet((208, 976)).eval()
    assert 2.4e6 < n_params(model) < 2.7e6  # paper: 2.49 M
    x = torch.randn(2, 3, 208, 976)
    with torch.no_grad():
        out = model(x)
        assert len(out) == 2  # no taps unless asked: the exported graph stays lean
        seg, exist, taps = model(x, taps=("block2", "block3"))
    assert seg.shape == (2, 5, 208, 976) and exist.shape == (2, 4)
    assert taps["block2"].shape == (2, 64, 52, 244) and taps["block3"].shape == (2, 128, 26, 122)
    torch.testing.assert_close(out[0], seg)


def test_existence_input_follows_the_configured_size():
    big, small = ERFNet((208, 976)), ERFNet((112, 528))
    assert big.lane_exist.linear1.in_features == 5 * 13 * 61 == 3965  # ERFNet-CULane's 3965
    assert small.lane_exist.linear1.in_features == 5 * 7 * 33
    assert n_params(big) - n_params(small) == (3965 - 5 * 7 * 33) * 128
    with pytest.raises(ValueError, match="input size differs"):
        small(torch.randn(1, 3, 128, 528))
    with pytest.raises(ValueError, match="multiples of 16"):
        ERFNet((100, 528))


def test_existence_outputs_logits_not_probabilities():
    model = ERFNet((64, 128)).eval()
    with torch.no_grad():
        model.lane_exist.linear2.bias.fill_(8.0)  # a sigmoid inside would cap this below 1
        _, exist = model(torch.randn(1, 3, 64, 128))
    assert (exist > 1).all()


@pytest.mark.parametrize("bins", [1, 2, 3, 6])
def test_matrix_pooling_is_exactly_adaptive_pooling(bins):
    x = torch.randn(2, 4, 26, 122)
    torch.testing.assert_close(adaptive_avg_pool(x, bins), F.adaptive_avg_pool2d(x, bins))
    x = torch.randn(1, 2, 7, 33)
    torch.testing.assert_close(adaptive_avg_pool(x, bins), F.adaptive_avg_pool2d(x, bins))


def test_teacher_shapes_and_taps():
    model = PSPNet((64, 192), depth=18, head_channels=64).eval()
    with torch.no_grad():
        seg, exist, taps = model(torch.randn(2, 3, 64, 192), taps=("layer2", "layer4", "psp"))
    assert seg.shape == (2, 5, 64, 192) and exist.shape == (2, 4)
    assert taps["layer2"].shape == (2, 128, 8, 24) and taps["layer4"].shape == (2, 512, 8, 24)  # output stride 8
    assert taps["psp"].shape == (2, 64, 8, 24)
    with pytest.raises(KeyError, match="unknown teacher taps"):
        model(torch.randn(1, 3, 64, 192), taps=("layer9",))


def test_stride_16_teacher_with_decoder_predicts_at_a_quarter():
    model = PSPNet((64, 192), depth=18, head_channels=64, output_stride=16, decoder_channels=32).eval()
    b = model.backbone
    assert b.layer3[0].conv1.stride == (2, 2) and b.layer3[1].conv2.dilation == (1, 1)  # layer3 strided, not dilated
    assert b.layer4[0].conv2.dilation == (1, 1) and b.layer4[1].conv2.dilation == (2, 2)  # torchvision [False, False, True]
    with torch.no_grad():
        seg, exist, taps = model(torch.randn(2, 3, 64, 192), taps=("layer1", "layer2", "layer4", "psp"))
    assert seg.shape == (2, 5, 64, 192) and exist.shape == (2, 4)
    assert taps["layer2"].shape == (2, 128, 8, 24) and taps["layer4"].shape == (2, 512, 4, 12)  # output stride 16
    assert taps["psp"].shape == (2, 64, 4, 12) and model.lane_exist.flat_features == 5 * 2 * 6
    assert model.classifier[1].in_channels == 32 and model.decoder.fuse[0].in_channels == 64 + 48
    logits = {}
    model.classifier.register_forward_hook(lambda m, i, o: logits.update(shape=o.shape))
    with torch.no_grad():
        model(torch.randn(1, 3, 64, 192))
    assert logits["shape"] == (1, 5, 16, 48)  # the classifier predicts at 1/4, from the decoder's map


def test_teacher_options_default_to_pspnet_and_old_configs_build_it():
    from training.config import DEFAULTS, ConfigError, validate
    from training.models import build_model

    config = {**DEFAULTS, "input": {**DEFAULTS["input"], "net_width": 192, "net_height": 64}}
    old = {k: v for k, v in DEFAULTS["model"].items() if k not in ("output_stride", "decoder_channels")}
    model = build_model({**config, "model": {**old, "arch": "pspnet", "depth": 18, "head_channels": 32}})
    assert model.backbone.output_stride == 8 and model.decoder is None  # a checkpoint's config from before the options
    for key, bad in (("output_stride", 32), ("decoder_channels", -1), ("decoder_channels", True)):
        with pytest.raises(ConfigError, match=f"model.{key}"):
            validate({**config, "model": {**DEFAULTS["model"], key: bad}})
    with pytest.raises(ValueError, match="output stride must be 8 or 16"):
        ResNet(18, output_stride=4)


def test_resnet101_teacher_size_and_torchvision_names():
    model = PSPNet((208, 976), depth=101)
    assert 60e6 < n_params(model) < 70e6  # ResNet-101 trunk 42.5 M + PSP head + existence
    keys = set(model.backbone.state_dict())
    for key in ("conv1.weight", "bn1.running_mean", "layer1.0.downsample.0.weight", "layer3.22.conv3.weight", "layer4.2.bn3.bias"):
        assert key in keys
    # torchvision's replace_stride_with_dilation: a layer's first block keeps the previous dilation
    b = model.backbone
    assert b.layer3[0].conv2.dilation == (1, 1) and b.layer3[1].conv2.dilation == (2, 2)
    assert b.layer4[0].conv2.dilation == (2, 2) and b.layer4[2].conv2.dilation == (4, 4)
    assert b.layer4[0].conv2.stride == (1, 1) and b.layer4[0].downsample[0].stride == (1, 1)


def test_imagenet_weights_load_and_report_keys(tmp_path):
    source = ResNet(18)
    state = source.state_dict()
    state["fc.weight"], state["fc.bias"] = torch.zeros(1000, 512), torch.zeros(1000)
    path = tmp_path / "resnet18.pth"
    torch.save(state, path)
    target = ResNet(18)
    missing, unexpected = load_imagenet(target, str(path))
    assert missing == [] and sorted(unexpected) == ["fc.bias", "fc.weight"]
    torch.testing.assert_close(target.layer3[0].conv1.weight, source.layer3[0].conv1.weight)
