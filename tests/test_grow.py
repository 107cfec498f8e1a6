"""Growing DMTNet: a larger variant starts from a smaller one's weights and computes exactly what
it did (new DMSSRMs leave the output unchanged), then trains away from it."""

import json

import pytest
import torch
from typer.testing import CliRunner

from _train_data import make_dpdd
from dpdeblur.cli import app
from dpdeblur.errors import WeightsError
from dpdeblur.models.weights import grow_weights, read_state_dict, save_weights


@pytest.mark.parametrize("small,large", [("dmtnet-t", "dmtnet-s"), ("dmtnet-t", "dmtnet-b"), ("dmtnet-s", "dmtnet-l")])
def test_grown_model_computes_what_the_smaller_did(small, large, tiny, tmp_path):
    s = tiny.model(small)
    for p in s.parameters():  # away from the init: the copy must carry learned values, not defaults
        p.data.add_(0.05 * torch.randn_like(p))
    save_weights(s, tmp_path / "s.safetensors")
    g = tiny.model(large)
    new = grow_weights(g, tmp_path / "s.safetensors")
    old = set(read_state_dict(tmp_path / "s.safetensors"))
    assert new and all(k.startswith("reconstruction.") for k in new) and not old & set(new)
    x = torch.rand(2, 6, 32, 48)
    with torch.no_grad():
        assert torch.allclose(g(x), s(x), atol=1e-6)


def test_grown_model_trains_its_new_modules(tiny, tmp_path):
    save_weights(tiny.model("dmtnet-t"), tmp_path / "t.safetensors")
    g = tiny.model("dmtnet-s", train=True)
    grow_weights(g, tmp_path / "t.safetensors")
    before = g.reconstruction[0].fuse.weight.detach().clone()
    opt = torch.optim.Adam(g.parameters(), lr=1e-2)
    x, y = torch.rand(2, 6, 32, 32), torch.rand(2, 3, 32, 32)
    for _ in range(2):
        opt.zero_grad()
        (g(x) - y).abs().mean().backward()
        opt.step()
    assert not torch.equal(before, g.reconstruction[0].fuse.weight)  # the zero fusion conv gets gradients
    assert g.reconstruction[0].branches[0].up[0].weight.grad.abs().sum() > 0  # and, through it, the branches


def test_grow_refuses_what_is_not_a_smaller_variant(tiny, tmp_path):
    save_weights(tiny.model("dmtnet-s"), tmp_path / "s.safetensors")
    with pytest.raises(WeightsError, match="nothing to grow"):
        grow_weights(tiny.model("dmtnet-s"), tmp_path / "s.safetensors")
    with pytest.raises(WeightsError, match="lacks"):
        grow_weights(tiny.model("dmtnet-t"), tmp_path / "s.safetensors")  # larger into smaller
    save_weights(tiny.model("dmtnet-t", dim=16), tmp_path / "wide.safetensors")
    with pytest.raises(WeightsError, match="shape mismatch"):
        grow_weights(tiny.model("dmtnet-s"), tmp_path / "wide.safetensors")
    with pytest.raises(WeightsError, match="only DMTNet"):
        grow_weights(tiny.model("unet"), tmp_path / "s.safetensors")


def test_train_grow_from_cli(tiny, tmp_path):
    root = make_dpdd(tmp_path / "d", n=(2, 1, 0), h=48, w=48)
    t = tiny.model("dmtnet-t")
    save_weights(t, tmp_path / "t.safetensors")
    base = ["train", "--dataset", "dpdd", "--data-root", str(root), "--model", "dmtnet-s", "--model-config", tiny.flag("dmtnet"),
            "--patch", "32", "--batch-size", "2", "--lr", "1e-9", "--ema", "0", "-q", "--json"]
    r = CliRunner().invoke(app, [*base, "--grow-from", str(tmp_path / "t.safetensors"), "--max-steps", "2", "--out", str(tmp_path / "g")])
    assert r.exit_code == 0, r.output
    # lr 1e-9 (Adam moves each weight by ~1e-9 a step): the grown run still computes what dmtnet-t did
    g = tiny.model("dmtnet-s")
    g.load_state_dict(read_state_dict(tmp_path / "g/last.safetensors"))
    x = torch.rand(1, 6, 32, 32)
    with torch.no_grad():
        assert torch.allclose(g(x), t(x), atol=1e-5)
    assert json.loads((tmp_path / "g/config.json").read_text())["grow_from"] == str(tmp_path / "t.safetensors")
    r = CliRunner().invoke(app, [*base, "--grow-from", str(tmp_path / "t.safetensors"), "--weights", str(tmp_path / "t.safetensors"),
                                 "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "--weights and --grow-from" in r.output and not (tmp_path / "x").exists()
