"""bf16 autocast without a GPU: one training step of every family with and without JDRL under
``--amp`` on the CPU, float32 losses and warps, and ``deblur --precision bf16``."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from _train_data import make_dpdd
from dpdeblur.cli import app
from dpdeblur.flow.warp import warp
from dpdeblur.io.images import read_image, write_image
from dpdeblur.models.jdrl import ReblurNet
from dpdeblur.models.weights import save_weights
from dpdeblur.train import fit, resolve_config

FAMILIES = ("dmtnet-t", "fcn", "unet")


@pytest.fixture(scope="module")
def dpdd(tmp_path_factory):
    return make_dpdd(tmp_path_factory.mktemp("dpdd"), n=(1, 0, 0), h=32, w=32)


@pytest.mark.parametrize("jdrl", [False, True], ids=["plain", "jdrl"])
@pytest.mark.parametrize("model", FAMILIES)
def test_one_bf16_training_step_on_cpu(dpdd, tmp_path, monkeypatch, model, jdrl, tiny):
    import dpdeblur.losses as losses

    seen: dict = {}
    build = losses.build_criterion

    def recording(*a, **k):  # the criterion sees the model's bf16 output and returns a float32 loss
        crit = build(*a, **k)
        fwd = crit.forward

        def forward(output, batch, epoch=0):
            loss, logs = fwd(output, batch, epoch)
            seen["loss"] = loss.dtype
            return loss, logs

        crit.forward = forward
        return crit

    monkeypatch.setattr(losses, "build_criterion", recording)
    convs = set()  # the dtypes the model's convolutions computed in (bf16: autocast was on)
    hook = torch.nn.modules.module.register_module_forward_hook(
        lambda m, i, o: convs.add(o.dtype) if isinstance(m, torch.nn.Conv2d) and torch.is_tensor(o) else None)
    cfg = resolve_config(dict(model=model, data_root=str(dpdd), model_config=tiny.config(model), out=str(tmp_path / "run"),
                              patch=32, batch_size=1, max_steps=1, progress=False, log_every=1, amp=True, jdrl=jdrl or None,
                              device="cpu", val_every=0))
    try:
        r = fit(cfg)
    finally:
        hook.remove()
    assert r.step == 1 and torch.bfloat16 in convs and seen["loss"] == torch.float32
    assert all(np.isfinite(x) for x in r.losses)
    rec = [json.loads(l) for l in (tmp_path / "run/log.jsonl").read_text().splitlines() if '"train"' in l]
    assert rec and ("L_r" in rec[-1]) == jdrl and np.isfinite(rec[-1]["loss"])


def test_amp_default_is_cuda_only():
    from dpdeblur.train.loop import amp_enabled

    cfg = resolve_config(dict(model="dmtnet-t"))
    assert cfg.amp is None
    assert amp_enabled(cfg, torch.device("cuda")) and not amp_enabled(cfg, torch.device("cpu"))
    cfg.amp = True
    assert amp_enabled(cfg, torch.device("cpu"))


def test_warp_grid_is_float32_under_bf16():
    """A zero flow on a 512-wide image is the identity: in bf16 the grid would hold 385 distinct columns."""
    img = torch.arange(512, dtype=torch.float32).repeat(1, 1, 4, 1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = warp(img, torch.zeros(1, 2, 4, 512, dtype=torch.bfloat16))
    assert out.dtype == torch.float32
    assert (out - img).abs().max() < 1e-3  # a bf16 grid is off by up to 2 columns here
    assert torch.arange(512, dtype=torch.bfloat16).unique().numel() < 512  # why it matters


def test_reblurnet_mixed_operands_compute_in_float32():
    torch.manual_seed(0)
    net = ReblurNet(m=3, channels=4)
    x = torch.rand(1, 3, 16, 16)
    ref = net(x, x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = net(x.bfloat16(), x)  # a bf16 model output and a float32 blurry input
    assert y.dtype == torch.float32 and torch.isfinite(y).all()
    assert (y - ref).abs().max() < 0.05


def test_deblur_precision_bf16_on_cpu(tmp_path, tiny):
    w = tmp_path / "w.safetensors"
    save_weights(tiny.model("dmtnet-t"), w)  # records the tiny config
    rng = np.random.default_rng(0)
    for v in "LR":
        write_image(tmp_path / f"in/p_{v}.png", rng.integers(0, 256, (32, 40, 3)).astype(np.uint8), 8)
    outs = {}
    for prec in ("fp32", "bf16"):
        r = CliRunner().invoke(app, ["deblur", str(tmp_path / "in"), "-o", str(tmp_path / prec), "--model", "dmtnet-t",
                                     "--weights", str(w), "--tile", "0", "--device", "cpu",
                                     "--precision", prec, "--json"])
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout[r.stdout.index("{"):])["precision"] == {"fp32": "float32", "bf16": "bfloat16"}[prec]
        outs[prec] = read_image(tmp_path / prec / "p_deblurred.png").rgb
    assert np.abs(outs["fp32"] - outs["bf16"]).mean() < 0.02
