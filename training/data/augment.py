"""Training augmentation on top of the runtime's preprocessing (numpy + OpenCV).

Order, all at network size (cheap: photometric ops never touch the full-size frame):

0. with probability ``camera_p``, another camera (:func:`camera_homography`): pitch and yaw in
   ``+-camera_pitch`` / ``+-camera_yaw`` degrees, height and focal-length factors log-uniform in
   ``camera_height`` / ``camera_focal``, about a level camera of focal ``camera_f`` px centred on
   the frame; warped in one perspective warp together with step 1's crop and resize (the full-size
   frame is read once, the output is network-sized). A lane that leaves the view loses its
   existence flag (the caller's :func:`lanes_present`); ``.lines.txt`` points follow with
   :func:`runtime.camera_geometry.warp_points`;
1. geometry through :class:`runtime.preprocess.Preprocess` itself: the image and label are
   cropped and resized by a copy of it whose network size is scaled by ``s ~ U(scale)``; then a
   random window of the network size is cut (or the image padded, labels 255 = ignore);
2. a small affine: rotation by ``U(+-rotation)`` degrees about the centre and a horizontal
   translation by ``U(+-shift)`` of the width, whole pixels (one ``warpAffine``; label nearest
   neighbour; uncovered pixels: image 0, label 255);
3. horizontal flip with probability ``flip``: image and label mirrored, lane IDs swapped
   1<->4 and 2<->3 (0 and 255 unchanged); the caller reverses the existence flags
   (:func:`mirror_exist`) when :func:`augment` reports ``flipped``;
4. photometric jitter: brightness, contrast, saturation (factors ``1 +- x``), hue (degrees);
5. camera degradations: Gaussian blur with probability ``blur_p``, sigma ``U(0, blur_sigma]``
   network pixels; additive Gaussian noise, std ``U(0, noise_std)`` in 0..255 units, a random
   fraction ``c ~ U(0, 1)`` of its variance independent per channel (chroma), the rest shared
   (luma); JPEG re-compression with probability ``jpeg_p`` at quality ``U{jpeg_quality}``
   (dashcam frames are JPEG/H.264-compressed).

A step whose parameter is 0 draws no random number, so configs without the newer keys' effects
(the paper recipe: flip, shift, blur_p, noise_std, jpeg_p all 0) produce exactly the samples they
produced before those keys existed. Every random choice comes from the generator passed in, so a
sample is a pure function of (seed, epoch, index): identical across worker counts, processes and
resumed runs.
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import cv2
import numpy as np

from runtime.culane import IGNORE_LABEL, NUM_LANES
from runtime.camera_geometry import camera_homography
from runtime.preprocess import Preprocess

MIRROR_LANES = np.arange(256, dtype=np.uint8)
MIRROR_LANES[1 : NUM_LANES + 1] = np.arange(NUM_LANES, 0, -1)
"""Label lookup table of a horizontal mirror: lane k -> NUM_LANES + 1 - k; 0 and 255 unchanged."""


def random_camera(params: dict[str, Any], rng: np.random.Generator, pre: Preprocess) -> np.ndarray | None:
    """The homography of a random camera change (``camera_*`` keys), or None (probability ``1 - camera_p``;
    nothing drawn when ``camera_p`` is 0)."""
    if not chance(params.get("camera_p", 0.0), rng):
        return None
    pitch = float(rng.uniform(-params["camera_pitch"], params["camera_pitch"]))
    yaw = float(rng.uniform(-params["camera_yaw"], params["camera_yaw"]))
    height = float(np.exp(rng.uniform(*np.log(params["camera_height"]))))
    focal = float(np.exp(rng.uniform(*np.log(params["camera_focal"]))))
    return camera_homography(pitch, yaw, height, focal, f=params["camera_f"],
                             cx=(pre.src_width - 1) / 2, cy=(pre.src_height - 1) / 2)


def scaled_crop(pre: Preprocess, image: np.ndarray, label: np.ndarray, scale: float, rng: np.random.Generator,
                homography: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Resize by ``scale`` around the network size, then cut/pad a network-size window. With a
    ``homography`` (full-size pixels -> full-size pixels) the crop + resize and it are one
    perspective warp from the full-size frame (image bilinear, black outside; label nearest, 255
    outside)."""
    h, w = pre.net_height, pre.net_width
    big = replace(pre, net_width=max(8, round(w * scale)), net_height=max(8, round(h * scale)))
    if homography is None:
        img, lab = big.resize_image(image), big.label(label)
    else:
        big.check_size(image)
        kx, ky = big.scale_x, big.scale_y
        crop = np.array([[kx, 0, 0.5 * kx - 0.5], [0, ky, (0.5 - big.crop_top) * ky - 0.5], [0, 0, 1.0]])  # full -> network pixels
        m, size = crop @ homography, (big.net_width, big.net_height)
        img = cv2.warpPerspective(image, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        lab = cv2.warpPerspective(label, m, size, flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=IGNORE_LABEL)
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


def rotate(image: np.ndarray, label: np.ndarray, degrees: float, dx: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rotate (h, w, 3) image and (h, w) label by ``degrees`` about the centre, then move ``dx`` pixels right."""
    h, w = label.shape
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), degrees, 1.0)
    m[0, 2] += dx
    image = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    label = cv2.warpAffine(label, m, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=IGNORE_LABEL)
    return image, label


def hflip(image: np.ndarray, label: np.ndarray, mirror: np.ndarray = MIRROR_LANES) -> tuple[np.ndarray, np.ndarray]:
    """Mirror (h, w, 3) image and (h, w) label left-right; label values through ``mirror`` ((256,)
    lookup, :meth:`runtime.classes.ClassTable.mirror_lut`; default CULane's: lane IDs 1<->4, 2<->3)."""
    return cv2.flip(image, 1), mirror[label[:, ::-1]]


def lanes_present(exist: tuple[int, ...], label: np.ndarray) -> tuple[int, ...]:
    """Existence flags after a geometric change: a flagged lane whose pixels all left the (h, w)
    network-size label loses its flag (a flag is never added)."""
    return tuple(int(bool(e) and bool((label == k).any())) for k, e in enumerate(exist, start=1))


def mirror_exist(exist: tuple[int, ...] | np.ndarray) -> tuple[int, ...]:
    """Existence flags (e1, e2, e3, e4) of a mirrored image: (e4, e3, e2, e1)."""
    return tuple(exist)[::-1]


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


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Isotropic Gaussian blur of a uint8 image; ``sigma`` in pixels, kernel 2*ceil(3 sigma)+1."""
    k = 2 * math.ceil(3 * sigma) + 1
    return cv2.GaussianBlur(image, (k, k), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)


def gaussian_noise(image: np.ndarray, std: float, chroma: float, rng: np.random.Generator) -> np.ndarray:
    """Add N(0, std^2) per pixel and channel (0..255 units) to (h, w, 3) uint8: a fraction
    ``chroma`` of the variance independent per channel, the rest shared by the three."""
    h, w, c = image.shape
    noise = rng.standard_normal((h, w, c), dtype=np.float32) * np.float32(std * math.sqrt(chroma))
    noise += rng.standard_normal((h, w, 1), dtype=np.float32) * np.float32(std * math.sqrt(1.0 - chroma))
    noise += image
    return np.clip(np.rint(noise), 0, 255).astype(np.uint8)


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode a (h, w, 3) uint8 BGR image as JPEG at ``quality`` (1..100) and decode it."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("OpenCV could not JPEG-encode the augmented image")
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def chance(p: float, rng: np.random.Generator) -> bool:
    """True with probability ``p``; draws nothing when ``p`` is 0."""
    return bool(p) and bool(rng.random() < p)


def degrade(image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    """Camera degradations on (h, w, 3) uint8: blur, then noise, then JPEG (see the module doc)."""
    if chance(params["blur_p"], rng):
        image = gaussian_blur(image, params["blur_sigma"] * (1.0 - float(rng.random())))  # sigma in (0, blur_sigma]
    if params["noise_std"]:
        image = gaussian_noise(image, float(rng.uniform(0.0, params["noise_std"])), float(rng.uniform()), rng)
    if chance(params["jpeg_p"], rng):
        lo, hi = params["jpeg_quality"]
        image = jpeg_roundtrip(image, int(rng.integers(lo, hi + 1)))
    return image


def augment(pre: Preprocess, image: np.ndarray, label: np.ndarray, params: dict[str, Any],
            rng: np.random.Generator, mirror: np.ndarray = MIRROR_LANES) -> tuple[np.ndarray, np.ndarray, bool]:
    """Original-size (image, label) -> network-size (image (h, w, 3) uint8 BGR, label (h, w) uint8, flipped).

    ``flipped``: the pair was mirrored (classes already swapped in the label through ``mirror``);
    for lanes the caller must reverse the sample's existence flags with :func:`mirror_exist`.
    """
    homography = random_camera(params, rng, pre)
    lo, hi = params["scale"]
    img, lab = scaled_crop(pre, image, label, float(rng.uniform(lo, hi)), rng, homography)
    degrees = float(rng.uniform(-params["rotation"], params["rotation"])) if params["rotation"] else 0.0
    dx = round(float(rng.uniform(-params["shift"], params["shift"])) * pre.net_width) if params["shift"] else 0
    if degrees or dx:
        img, lab = rotate(img, lab, degrees, dx)
    flipped = chance(params["flip"], rng)
    if flipped:
        img, lab = hflip(img, lab, mirror)
    return degrade(photometric(img, params, rng), params, rng), lab, flipped
