"""Weights that describe themselves (model name + builder config in the safetensors metadata are the
defaults; a contradiction names both) and the tiling policy on the model card."""

import json
import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from _train_data import make_dpdd
from dpdeblur.cli import app
from dpdeblur.errors import UsageError, WeightsError
from dpdeblur.io.images import read_image, write_image
from dpdeblur.models import create_model, get_card, list_models, resolve_model
from dpdeblur.models.weights import load_weights, save_weights, weights_model


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny):
    """`dpdeblur train` of dmtnet-t in a tiny, non-default --model-config for two steps."""
    base = tmp_path_factory.mktemp("run")
    root = make_dpdd(base / "dpdd", n=(2, 1, 0), h=48, w=48)
    out = base / "run"
    r = cli("train", "--dataset", "dpdd", "--data-root", root, "--model", "dmtnet-t", "--model-config", tiny.flag("dmtnet"),
            "--patch", "32", "--batch-size", "2", "--max-steps", "2", "-q", "--out", out)
    assert r.exit_code == 0, r.output
    return root, out


def reference(weights, tiny, left, right):
    """The result with everything spelled out: model, config, views stacked right then left."""
    model = create_model("dmtnet-t", weights=weights, **tiny.config("dmtnet")).eval()
    x = torch.cat([torch.from_numpy(v).permute(2, 0, 1) for v in (right, left)])[None]
    with torch.inference_mode():
        return model(x)[0].clamp(0, 1).permute(1, 2, 0).numpy()


def test_trained_weights_deblur_with_weights_alone(run, tiny, tmp_path):
    root, out = run
    w = out / "best.safetensors"
    assert weights_model(w) == ("dmtnet-t", tiny.config("dmtnet"))
    with pytest.raises(WeightsError, match="do not fit"):  # the config matters: the default one does not load
        load_weights(create_model("dmtnet-t"), w)
    lp, rp = root / "val_l/source/001_L.png", root / "val_r/source/001_R.png"
    r = cli("deblur", "--left", lp, "--right", rp, "-o", tmp_path / "o", "--weights", w, "--tile", "0",
            "--bit-depth", "16", "--json")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert rep["model"] == "dmtnet-t" and rep["model_config"] == tiny.config("dmtnet")
    ref = reference(w, tiny, read_image(lp).rgb, read_image(rp).rgb)
    got = read_image(tmp_path / "o" / "001_deblurred.png").rgb
    assert np.abs(got - ref).max() <= 0.5 / 65535 + 1e-6
    # the Python API too: no model, no config
    import dpdeblur

    y = dpdeblur.deblur((read_image(lp).rgb, read_image(rp).rgb), weights=w, tile=0)
    assert np.abs(y - ref).max() < 1e-6


def test_contradictions_name_both(run, tiny, tmp_path):
    _, out = run
    w = out / "last.safetensors"
    r = cli("deblur", tmp_path, "--model", "dmtnet-s", "--weights", w)
    assert r.exit_code == 2 and "dmtnet-t" in r.output and "dmtnet-s" in r.output, r.output
    r = cli("deblur", tmp_path, "--weights", w, "--model-config", "dim=24")
    assert r.exit_code == 2 and "dim=24" in r.output and "dim=12" in r.output, r.output
    with pytest.raises(UsageError, match=r"window=7 \(file: 4\)"):
        resolve_model("dmtnet-t", w, {"window": 7})
    with pytest.raises(UsageError, match=r"mlp_ratio=2.0 \(file: 4.0\)"):  # the builder's default, not in the file
        resolve_model(None, w, {"mlp_ratio": 2.0})
    # agreeing with the file is fine, and so is naming the model the file holds
    card, cfg = resolve_model("DMTNet-T", w, {"dim": 12, "mlp_ratio": 4.0})
    assert card.name == "dmtnet-t" and cfg == {**tiny.config("dmtnet"), "mlp_ratio": 4.0}


def test_files_that_do_not_say_need_a_model(run, tmp_path):
    _, out = run
    from dpdeblur.models.weights import read_state_dict

    pt = tmp_path / "w.pt"
    torch.save(read_state_dict(out / "last.safetensors"), pt)
    r = cli("deblur", tmp_path, "--weights", pt)
    assert r.exit_code == 2 and "does not say which model" in r.output and str(pt) in r.output, r.output
    r = cli("deblur", tmp_path)  # neither: the bundled default model, so what is missing here is images
    assert r.exit_code == 1 and "contain no images" in r.output and "--model" not in r.output, r.output


def test_fine_tuning_takes_model_and_config_from_the_weights(run, tiny):
    from dpdeblur.train import resolve_config

    _, out = run
    cfg = resolve_config({"weights": str(out / "last.safetensors")})
    assert (cfg.model, cfg.model_config, cfg.lr) == ("dmtnet-t", tiny.config("dmtnet"), 1e-4)  # dmtnet recipe
    with pytest.raises(UsageError, match="dmtnet-t.*dmtnet-b"):
        resolve_config({"weights": str(out / "last.safetensors"), "model": "dmtnet-b"})


def test_save_weights_describes_registry_models(tmp_path, tiny):
    p = tmp_path / "u.safetensors"
    save_weights(tiny.model("unet"), p)
    model = create_model(weights=p)
    assert model.card.name == "unet" and model.model_config == tiny.config("unet")


# ----------------------------------------------------------------------------- tiling policy on the card


@pytest.mark.parametrize("name", list_models())
def test_card_tiling_policy_matches_the_network(name):
    card = get_card(name)
    model = create_model(name, device="meta")
    assert card.tile_align == math.lcm(model.multiple_of, getattr(model, "tile_align", 1))
    assert card.tile == (512 if card.tileable else 0)
    assert get_card("fcn").tileable is False


def test_fcn_runs_whole_image_by_default(tmp_path, tiny):
    w = tmp_path / "fcn.safetensors"
    model = tiny.model("fcn")
    save_weights(model, w)
    img = np.random.default_rng(0).random((40, 56, 3)).astype(np.float32)
    write_image(tmp_path / "in" / "a.png", img, 16)
    r = cli("deblur", tmp_path / "in", "-o", tmp_path / "o", "--weights", w, "--json", "--bit-depth", "16")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["tile"] == 0 and "does not tile" not in r.output
    x = torch.from_numpy(read_image(tmp_path / "in" / "a.png").rgb).permute(2, 0, 1)[None]
    with torch.inference_mode():
        whole = model(x)[-1][0].clamp(0, 1).permute(1, 2, 0).numpy()
    assert np.abs(read_image(tmp_path / "o" / "a_deblurred.png").rgb - whole).max() <= 0.5 / 65535 + 1e-6
    # tiles can still be asked for; the user is told they change the result
    r = cli("deblur", tmp_path / "in", "-o", tmp_path / "t", "--weights", w, "--tile", "32", "--overlap", "8", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["tile"] == 32 and "does not tile exactly" in r.output


def test_deblurrer_defaults_from_the_card(tiny):
    from dpdeblur.inference.pipeline import Deblurrer

    assert Deblurrer(tiny.model("dmtnet-t")).settings.tile == 512
    assert Deblurrer(tiny.model("fcn")).settings.tile == 0
    with pytest.warns(RuntimeWarning, match="fcn does not tile exactly"):
        assert Deblurrer(tiny.model("fcn"), tile=64, overlap=16).settings.tile == 64
