"""The bundled dmtnet-t weights: pinned checksum, loaded by default, and better than the
blurry input on the held-out sample pairs (images never used for training)."""

from pathlib import Path

import numpy as np
import pytest

from dpdeblur.models import get_card, resolve_weights
from dpdeblur.models.weights import sha256_file

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "assets" / "samples"


def test_card_pins_the_bundled_file():
    card = get_card("dmtnet-t")
    assert card.weights and card.weights_sha256
    path = resolve_weights(card)
    assert path is not None and path.parent == ROOT / "assets" / "weights"
    assert sha256_file(path) == card.weights_sha256
    assert (path.parent / (Path(card.weights).stem + ".md")).is_file()  # its model card


def test_bundled_model_improves_held_out_samples():
    import dpdeblur
    from dpdeblur.io.images import read_image
    from dpdeblur.metrics import psnr_np

    gains = []
    for left in sorted(SAMPLES.glob("*_L.png")):
        sid = left.name[: -len("_L.png")]
        sharp = read_image(SAMPLES / "sharp" / f"{sid}.png").rgb
        blurry = read_image(SAMPLES / "combined" / f"{sid}.png").rgb
        out = dpdeblur.deblur(left, model="dmtnet-t", tile=0)  # default weights, finds the _R twin
        gains.append(psnr_np(out, sharp) - psnr_np(blurry, sharp))
    assert len(gains) == 3
    assert min(gains) > 1.0, gains  # measured: +1.58, +1.85, +1.60 dB (model card)
