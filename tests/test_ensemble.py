"""Self-ensemble (--tta): four flips, views swapped when mirrored, outputs flipped back and averaged."""

import json

import numpy as np
import torch
from typer.testing import CliRunner

from dpdeblur.cli import app
from dpdeblur.inference.ensemble import FLIPS, flip_input, flip_output, self_ensemble
from dpdeblur.inference.pipeline import Deblurrer, Loaded
from dpdeblur.inference.tiling import TileSettings, tiled_forward
from dpdeblur.io.images import read_image, write_image
from dpdeblur.models.weights import save_weights


def test_mirror_swaps_the_views_and_undo_restores():
    right, left = torch.rand(1, 3, 5, 7), torch.rand(1, 3, 5, 7)
    x = torch.cat([right, left], 1)
    m = flip_input(x, True, False, views=2)
    assert torch.equal(m[:, :3], left.flip(-1)) and torch.equal(m[:, 3:], right.flip(-1))
    assert torch.equal(flip_input(x, False, True, views=2), x.flip(-2))  # upside down: same order
    assert torch.equal(flip_input(x, True, False, views=1), x.flip(-1))  # one image: plain mirror
    for mirror, ud in FLIPS:
        assert torch.equal(flip_output(flip_input(right, mirror, ud), mirror, ud), right)


def test_ensemble_of_equivariant_model_is_the_model():
    """Mean of the views is mirror-equivariant for dual-pixel input (swap + flip): the ensemble changes nothing."""
    x = torch.rand(2, 6, 9, 11)
    f = lambda v, k: (v[:, :3] + v[:, 3:]) / 2  # noqa: E731
    assert torch.allclose(self_ensemble(f, x, views=2), f(x, 0), atol=1e-7)


def test_ensemble_averages_the_physical_variants():
    """A model that returns its first view slot: the mirrored variant's first slot holds the mirrored
    *other* view, so the ensemble is the mean of both views (no swap would give the first view)."""
    x = torch.rand(1, 6, 8, 10)
    seen = []
    out = self_ensemble(lambda v, k: seen.append(k) or v[:, :3], x, views=2)
    assert seen == [0, 1, 2, 3]
    assert torch.allclose(out, (x[:, :3] + x[:, 3:]) / 2, atol=1e-7)
    ramp = lambda v, k: v[:, :3] * torch.arange(v.shape[-1])  # noqa: E731  (not mirror-equivariant)
    j = torch.arange(x.shape[-1])  # mirrored variants see the other view at the mirrored column
    expect = (x[:, :3] * j + x[:, 3:] * (x.shape[-1] - 1 - j)) / 2
    assert torch.allclose(self_ensemble(ramp, x, views=2), expect, atol=1e-5)


def test_deblurrer_tta_is_mean_of_flipped_tiled_runs(tiny):
    model = tiny.model("dmtnet-t")
    rng = np.random.default_rng(0)
    views = {"left": rng.random((40, 56, 3)).astype(np.float32), "right": rng.random((40, 56, 3)).astype(np.float32)}
    d = Deblurrer(model, tile=32, overlap=16, device="cpu", tta=True)
    calls = []
    y = d.run(Loaded(views=views), progress=lambda done, total: calls.append((done, total)))
    x = d.model_input(Loaded(views=views))
    s = TileSettings(tile=32, overlap=16)
    expect = sum(flip_output(tiled_forward(model, flip_input(x, m, u, 2), s), m, u) for m, u in FLIPS) / 4
    assert np.allclose(y, expect[0].clamp(0, 1).permute(1, 2, 0).numpy(), atol=1e-6)
    plain = Deblurrer(model, tile=32, overlap=16, device="cpu").run(Loaded(views=views))
    assert np.abs(y - plain).max() > 1e-4  # a random model is not flip-equivariant: the ensemble differs
    total = calls[-1][1]
    assert calls[-1] == (total, total) and total % 4 == 0 and [c for c, _ in calls] == sorted(c for c, _ in calls)


def test_cli_tta_flag(tiny, tmp_path):
    save_weights(tiny.model("dmtnet-t"), tmp_path / "dp.safetensors")
    rng = np.random.default_rng(1)
    for v in "LR":
        write_image(tmp_path / f"a_{v}.png", (rng.random((40, 56, 3)) * 255).astype(np.uint8), 8)
    outs = {}
    for flag in ([], ["--tta"]):
        out = tmp_path / ("tta" if flag else "plain")
        r = CliRunner().invoke(app, ["deblur", str(tmp_path / "a_L.png"), "-o", str(out), "--weights",
                                     str(tmp_path / "dp.safetensors"), "--tile", "0", "--json", *flag])
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["tta"] is bool(flag)
        outs[bool(flag)] = read_image(out / "a_deblurred.png").rgb
    assert outs[True].shape == outs[False].shape == (40, 56, 3) and not np.array_equal(outs[True], outs[False])
