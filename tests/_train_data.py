"""Tiny data sets for the training tests: a DPDD-shaped tree with real dual-pixel structure."""

from pathlib import Path

import cv2
import numpy as np

from dpdeblur.io.images import write_image

def dp_scene(h=64, w=64, seed=0, shift=2, sigma=1.5):
    """Sharp texture; left/right views = blurred copies shifted by +-shift px; combined = their mean."""
    rng = np.random.default_rng(seed)
    sharp = cv2.GaussianBlur(rng.random((h, w, 3)).astype(np.float32), (0, 0), 1.0)
    sharp = (sharp - sharp.min()) / (sharp.max() - sharp.min())
    blur = cv2.GaussianBlur(sharp, (0, 0), sigma)
    left = np.roll(blur, shift, axis=1)
    right = np.roll(blur, -shift, axis=1)
    return sharp, left, right, (left + right) / 2


def make_dpdd(root: Path, n=(2, 1, 1), h=64, w=64) -> Path:
    """``root`` laid out like DPDD with 16-bit PNGs: n train / val / test scenes."""
    k = 0
    for split, count in zip(("train", "val", "test"), n):
        for i in range(count):
            sharp, left, right, comb = dp_scene(h, w, seed=k)
            k += 1
            sid = f"{i + 1:03d}"
            write_image(root / f"{split}_c/target/{sid}.png", sharp, 16)
            write_image(root / f"{split}_c/source/{sid}.png", comb, 16)
            write_image(root / f"{split}_l/source/{sid}_L.png", left, 16)
            write_image(root / f"{split}_r/source/{sid}_R.png", right, 16)
    return root
