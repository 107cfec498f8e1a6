"""The bundled weights: pinned checksums, loaded by default, the default model used
without --model, and better than the blurry input on the held-out sample pairs (images
never used for training)."""

from pathlib import Path

import numpy as np
import pytest

from dpdeblur.models import get_card, resolve_weights
from dpdeblur.models.cards import BUNDLED, DEFAULT_MODEL
from dpdeblur.models.weights import sha256_file

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "assets" / "samples"
MB = 1 << 20


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_card_pins_the_bundled_file(name):
    card = get_card(name)
    assert card.weights and card.weights_sha256
    path = resolve_weights(card)
    assert path is not None and path.parent == ROOT / "assets" / "weights"
    assert sha256_file(path) == card.weights_sha256
    assert path.stat().st_size <= 50 * MB  # the repository's limit for a weights file
    assert (path.parent / (Path(card.weights).stem + ".md")).is_file()  # its model card


def test_default_model_is_a_bundled_dual_pixel_model():
    card = get_card(DEFAULT_MODEL)
    assert DEFAULT_MODEL in BUNDLED and card.layout == "dp"


def _gains(name):
    import dpdeblur
    from dpdeblur.io.images import read_image
    from dpdeblur.metrics import psnr_np

    gains = []
    for left in sorted(SAMPLES.glob("*_L.png")):
        sid = left.name[: -len("_L.png")]
        sharp = read_image(SAMPLES / "sharp" / f"{sid}.png").rgb
        blurry = read_image(SAMPLES / "combined" / f"{sid}.png").rgb
        out = dpdeblur.deblur(left, model=name, tile=0)  # default weights, finds the _R twin
        gains.append(psnr_np(out, sharp) - psnr_np(blurry, sharp))
    return gains


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_model_improves_held_out_samples(name):
    gains = _gains(name)
    assert len(gains) == 3
    # measured (model cards): dmtnet-t +1.58, +1.85, +1.60 dB; dmtnet-s see its card
    assert min(gains) > 1.0, gains


def test_deblur_without_a_model_runs_the_default(tmp_path):
    from typer.testing import CliRunner

    import dpdeblur
    from dpdeblur.cli.app import app
    from dpdeblur.io.images import read_image

    r = CliRunner().invoke(app, ["deblur", "--left", str(SAMPLES / "coffee_L.png"), "--right", str(SAMPLES / "coffee_R.png"),
                                 "-o", str(tmp_path), "--tile", "0", "--json"])
    assert r.exit_code == 0, r.output
    assert f'"model": "{DEFAULT_MODEL}"' in r.stdout
    got = read_image(tmp_path / "coffee_deblurred.png").rgb
    want = dpdeblur.deblur((SAMPLES / "coffee_L.png", SAMPLES / "coffee_R.png"), model=DEFAULT_MODEL, tile=0)
    assert np.abs(got - want).max() <= 0.5 / 255 + 1e-6  # the 8-bit file of the same result
    assert np.array_equal(dpdeblur.deblur((SAMPLES / "coffee_L.png", SAMPLES / "coffee_R.png"), tile=0), want)


def test_models_marks_the_default():
    import json

    from typer.testing import CliRunner

    from dpdeblur.cli.app import app

    r = CliRunner().invoke(app, ["models", "--json"])
    assert r.exit_code == 0, r.output
    cards = json.loads(r.stdout)
    assert [c["name"] for c in cards if c["default"]] == [DEFAULT_MODEL]
    assert next(c for c in cards if c["name"] == DEFAULT_MODEL)["weights_path"]
