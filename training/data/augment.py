"""Training augmentation on top of the runtime's preprocessing (numpy + OpenCV).

The geometry goes through :class:`runtime.preprocess.Preprocess` itself: the image and label are
cropped and resized by a copy of it whose network size is scaled by ``s``; then a random window of
the network size is cut (or the image padded, labels with 255 = ignore), and the pair rotated by
a small angle about the centre (label: nearest neighbour, border 255). Photometric jitter changes
brightness, contrast, saturation and hue of the uint8 image. No horizontal flip: it would swap
lane IDs 1<->4 and 2<->3.

Every random choice comes from the generator passed in, so a sample is a pure function of
(seed, epoch, index): identical across worker counts, processes and resumed runs.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import cv2
import numpy as np

from runtime.culane import IGNORE_LABEL
from runtime.preprocess import Preprocess


def scaled_crop(pre: Preprocess, image: np.ndarray, label: np.ndarray, scale: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Resize by ``scale`` around the network size, then cut/pad a network-size window."""
    h, w = pre.net_height, pre.net_width
    big = replace(pre, net_width=max(8, round(w * scale)), net_height=max(8, round(h * scale)))
    img, lab = big.resize_image(image), big.label(label)
    out_img = np.zeros((h, w, 3), np.uint8)
    out_lab = np.full((h, w), IGNORE_LABEL, np.uint8)
    bh, bw = lab.shape
    # source window (when larger) or destination offset (when smaller), per axis
    sy = int(rng.integers(0, bh - h + 1)) if bh >= h else 0
    sx = int(rng.integers(0, bw - w + 1)) if bw >= w else 0
    dy = 0 if bh >= h else int(rng.integers(0, h - bh + 1))
    dx = 0 if bw >= w else int(rng.integers(0, w - bw + 1))
    ch, cw = min(h, bh), min(w, bw)
    out_img[dy : dy + ch, dx : dx + cw] = img[sy : sy + ch, sx : sx + cw]
    out_lab[dy : dy + ch, dx : dx + cw] = lab[sy : sy + ch, sx : sx + cw]
    return out_img, out_lab


def rotate(image: np.ndarray, label: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    h, w = label.shape
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), degrees, 1.0)
    image = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    label = cv2.warpAffine(label, m, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=IGNORE_LABEL)
    return image, label


def photometric(image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    """Brightness, contrast, saturation (factors 1 +- x) and hue (degrees) jitter on BGR uint8."""
    img = image.astype(np.float32)
    if params["brightness"]:
        img *= rng.uniform(1 - params["brightness"], 1 + params["brightness"])
    if params["contrast"]:
        mean = img.mean()
        img = (img - mean) * rng.uniform(1 - params["contrast"], 1 + params["contrast"]) + mean
    img = np.clip(img, 0, 255).astype(np.uint8)
    if params["saturation"] or params["hue"]:
        hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV).astype(np.float32)
        if params["hue"]:
            hsv[..., 0] = (hsv[..., 0] + rng.uniform(-params["hue"], params["hue"]) / 2.0) % 180.0
        if params["saturation"]:
            hsv[..., 1] *= rng.uniform(1 - params["saturation"], 1 + params["saturation"])
        img = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2BGR)
    return img


def augment(pre: Preprocess, image: np.ndarray, label: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Original-size (image, label) -> network-size (image uint8 BGR, label uint8) augmented."""
    lo, hi = params["scale"]
    img, lab = scaled_crop(pre, image, label, float(rng.uniform(lo, hi)), rng)
    if params["rotation"]:
        img, lab = rotate(img, lab, float(rng.uniform(-params["rotation"], params["rotation"])))
    return photometric(img, params, rng), lab
