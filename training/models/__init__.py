"""Model construction from a config: ERFNet student or PSPNet (ResNet) teacher."""
from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

from runtime.classes import class_table
from training.models.erfnet import ERFNet
from training.models.pspnet import PSPNet
from training.models.resnet import load_imagenet

log = logging.getLogger(__name__)


def build_model(config: dict[str, Any]) -> nn.Module:
    """The network a config describes (weights random, or ``model.pretrained`` loaded)."""
    m, inp = config["model"], config["input"]
    size = (inp["net_height"], inp["net_width"])
    table = class_table(config["dataset"].get("classes", "culane"))  # checkpoints older than class tables are CULane's
    classes = {"num_classes": table.num_classes, "num_lanes": table.num_lanes}
    if m["arch"] == "erfnet":
        in_channels = table.num_classes if m.get("input") == "label" else 3
        model: nn.Module = ERFNet(size, dropout=m["dropout"], in_channels=in_channels, **classes)
    else:
        # .get: checkpoints older than these options hold PSPNet's stride 8 without a decoder
        model = PSPNet(size, depth=m["depth"], head_channels=m["head_channels"], dropout=m["dropout"],
                       output_stride=m.get("output_stride", 8), decoder_channels=m.get("decoder_channels", 0), **classes)
    if m.get("pretrained"):
        load_pretrained(model, m["pretrained"])
    return model


def load_pretrained(model: nn.Module, path: str) -> None:
    """ImageNet weights into a PSPNet backbone, or an ERFNet(-CULane) checkpoint into ERFNet;
    reports missing and unexpected keys."""
    if isinstance(model, PSPNet):
        missing, unexpected = load_imagenet(model.backbone, path)
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("model", state.get("state_dict", state)) if isinstance(state, dict) else state
        state = {k.removeprefix("module."): v for k, v in state.items()}
        own = model.state_dict()
        compatible = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        result = model.load_state_dict(compatible, strict=False)
        missing, unexpected = list(result.missing_keys), sorted(set(state) - set(compatible))
    log.info("pretrained %s: %d missing keys %s, %d unexpected keys %s", path, len(missing), missing[:8], len(unexpected), unexpected[:8])


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def freeze_batchnorm(model: nn.Module) -> None:
    """Keep BatchNorm layers in eval mode (running statistics fixed) and their affine weights frozen."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
            for p in module.parameters():
                p.requires_grad_(False)


def load_trained(ckpt_path, device: torch.device) -> tuple[nn.Module, dict[str, Any]]:
    """The network of a training checkpoint (weights loaded, eval mode) and the checkpoint."""
    from training.checkpoint import load_checkpoint  # local: keeps model construction import-light

    ckpt = load_checkpoint(ckpt_path, "cpu")
    config = dict(ckpt["config"])
    config["model"] = {**config["model"], "pretrained": None}  # the checkpoint holds the weights
    model = build_model(config)
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), ckpt
