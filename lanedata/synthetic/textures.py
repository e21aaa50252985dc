"""Noise textures shared by every frame of a process: fine grain and low-frequency blotches.

They are made once per process from a fixed seed, so a frame is a pure function of its scene;
frames take random windows of them, which costs a slice instead of fresh random numbers.
"""
from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

BANK_SHAPE = (1024, 2048)


@lru_cache(maxsize=1)
def bank() -> tuple[np.ndarray, np.ndarray]:
    """(grain, blotch): float32 arrays; grain (1024, 2048, 3) ~ N(0, 1) per channel,
    blotch (1024, 2048) low-frequency noise in [-1, 1]."""
    rng = np.random.default_rng(20240521)
    h, w = BANK_SHAPE
    grain = rng.standard_normal((h, w, 3), dtype=np.float32)
    blotch = np.zeros((h, w), dtype=np.float32)
    for cell, weight in ((128, 0.5), (32, 0.3), (8, 0.2)):
        coarse = rng.standard_normal((h // cell + 2, w // cell + 2)).astype(np.float32)
        up = cv2.resize(coarse, (w + 2 * cell, h + 2 * cell), interpolation=cv2.INTER_CUBIC)
        blotch += weight * up[cell : cell + h, cell : cell + w]
    blotch /= np.float32(np.abs(blotch).max())
    return grain, blotch


def window(texture: np.ndarray, rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A random (h, w) window of a bank texture (a view: do not modify it)."""
    h, w = shape
    if h > texture.shape[0] or w > texture.shape[1]:  # a larger frame than the bank's: tile it
        texture = np.pad(texture, ((0, max(0, h - texture.shape[0])), (0, max(0, w - texture.shape[1]))), mode="wrap")
    y = int(rng.integers(0, texture.shape[0] - h + 1))
    x = int(rng.integers(0, texture.shape[1] - w + 1))
    return texture[y : y + h, x : x + w]
