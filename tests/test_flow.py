"""Flow: warping, DIS accuracy on a known zoom + shift, calibration mask, align command."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from dpdeblur.errors import UsageError
from dpdeblur.flow import calibration_mask, gaussian_blur, get_estimator, invert_flow, warp
from dpdeblur.bench.synthetic import texture, zoom_shift_flow
from dpdeblur.flow.align import align_pair, deformed_gt, load_flow, paired_folders, save_flow


def test_warp_integer_shift_and_border():
    x = torch.rand(2, 3, 8, 10)
    flow = torch.zeros(2, 2, 8, 10)
    flow[0, 0] = 2  # image 0: sample 2 px to the right
    flow[1, 1] = -1  # image 1: sample 1 px up
    y = warp(x, flow)
    assert torch.allclose(y[0, :, :, :8], x[0, :, :, 2:], atol=1e-6)
    assert torch.allclose(y[0, :, :, 8:], x[0, :, :, 9:].expand(-1, -1, 2), atol=1e-6)  # border padding
    assert torch.allclose(y[1, :, 1:], x[1, :, :-1], atol=1e-6)
    assert torch.allclose(warp(x, torch.zeros(2, 2, 8, 10)), x, atol=1e-6)
    # half-pixel shift is the bilinear average
    half = torch.zeros(1, 2, 8, 10)
    half[:, 0] = 0.5
    assert torch.allclose(warp(x[:1], half)[..., :9], (x[:1, ..., :9] + x[:1, ..., 1:]) / 2, atol=1e-6)


@pytest.mark.slow
def test_dis_epe_on_known_zoom_and_subpixel_shift():
    mov = texture(512, 512)
    flow = zoom_shift_flow(512, 512)
    ref = warp(mov, flow)  # ref(p) = mov(p + flow(p))
    est = get_estimator("dis", preset="medium")
    f = est(ref, mov)
    epe = (f - flow).norm(dim=1)[:, 16:-16, 16:-16].mean().item()
    assert epe < 0.25
    # a blurry reference matched to the Gaussian-blurred sharp image stays accurate
    f2 = est(gaussian_blur(ref, 2.0), mov, smooth_mov=2.0)
    assert (f2 - flow).norm(dim=1)[:, 16:-16, 16:-16].mean().item() < 0.25


def test_flow_has_no_gradient_and_follows_device():
    a = torch.rand(1, 3, 32, 32, requires_grad=True)
    f = get_estimator()(a, a.detach())
    assert not f.requires_grad and f.shape == (1, 2, 32, 32) and f.device == a.device


def test_estimator_errors():
    with pytest.raises(UsageError, match="known: dis"):
        get_estimator("pwc")
    with pytest.raises(UsageError, match="preset"):
        get_estimator("dis", preset="slow")


def test_calibration_mask():
    flow = torch.zeros(1, 2, 20, 20)
    flow[:, 0] = 2.0
    flow[:, 0, 5:8, 5:8] = 6.0  # an outlier patch
    m = calibration_mask(flow, lam=0.35)
    assert m.shape == (1, 1, 20, 20)
    assert m[0, 0, 5:8, 5:8].sum() == 0  # outliers masked
    assert m[0, 0, :, -2:].sum() == 0  # targets outside the image masked
    assert m[0, 0, 10:, :15].min() == 1
    # nearly aligned pairs are kept whole thanks to the tolerance floor
    tiny = torch.randn(1, 2, 20, 20) * 0.05
    assert calibration_mask(tiny).mean() > 0.95


def test_invert_flow():
    f = zoom_shift_flow(64, 64, zoom=0.01, dx=1.5, dy=-0.5)
    g = invert_flow(f)
    # f(q + g(q)) = -g(q)
    assert torch.allclose(warp(f, g), -g, atol=2e-3)


def test_align_pair_and_deformed_gt():
    sharp = texture(96, 128, 1)
    flow = torch.zeros(1, 2, 96, 128)
    flow[:, 0], flow[:, 1] = 2.0, -1.0
    blur = gaussian_blur(warp(sharp, flow), 1.0)  # blur(p) = sharp(p + (2, -1)), blurred
    r = align_pair(blur[0].permute(1, 2, 0).numpy(), sharp[0].permute(1, 2, 0).numpy(), sharp_sigma=1.0)
    assert r.flow.shape == (2, 96, 128) and r.deformed.shape == (96, 128, 3) and r.mask.dtype == bool
    assert r.stats["mean_dx"] == pytest.approx(2.0, abs=0.15)
    assert r.stats["mean_dy"] == pytest.approx(-1.0, abs=0.15)
    assert r.stats["masked_fraction"] < 0.1
    out = warp(sharp, flow)
    dg = deformed_gt(out, sharp)
    assert (dg - out)[..., 8:-8, 8:-8].abs().mean() < 0.01 < (sharp - out).abs().mean()
    dg_np = deformed_gt(out[0].permute(1, 2, 0).numpy(), sharp[0].permute(1, 2, 0).numpy())
    assert isinstance(dg_np, np.ndarray) and dg_np.shape == (96, 128, 3)


def test_flow_cache_roundtrip(tmp_path):
    f = np.random.randn(2, 5, 7).astype(np.float32) * 3
    save_flow(tmp_path / "a.npy", f)
    g = load_flow(tmp_path / "a.npy")
    assert g.dtype == np.float32 and g.shape == (2, 5, 7) and np.abs(g - f).max() < 5e-3


ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}


def _write_pairs(root, n=2, shift=2.0):
    from dpdeblur.io.images import write_image

    for i in range(n):
        sharp = texture(64, 80, i)
        flow = torch.zeros(1, 2, 64, 80)
        flow[:, 0] = shift
        blur = gaussian_blur(warp(sharp, flow), 1.5)
        write_image(root / "blur" / f"p{i}.png", blur[0].permute(1, 2, 0).numpy(), 16)
        write_image(root / "sharp" / f"p{i}.png", sharp[0].permute(1, 2, 0).numpy(), 16)


def test_align_command(tmp_path):
    _write_pairs(tmp_path)
    from typer.testing import CliRunner

    from dpdeblur.cli import app

    args = ["align", "--blur", str(tmp_path / "blur"), "--sharp", str(tmp_path / "sharp"),
            "--out", str(tmp_path / "out"), "--json"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["ok"] == 2 and summary["failed"] == 0
    assert summary["mean"]["mean_dx"] == pytest.approx(2.0, abs=0.2)
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["ok"] == 2
    from dpdeblur.io.images import read_image

    gt = read_image(tmp_path / "out" / "gt" / "p0.png")
    assert gt.bit_depth == 16 and gt.rgb.shape == (64, 80, 3)
    assert load_flow(tmp_path / "out" / "flow" / "p1.npy")[0, 10:-10, 10:-10].mean() == pytest.approx(2.0, abs=0.2)
    # second run skips, an unpaired folder is a one-line error with exit 1
    r2 = CliRunner().invoke(app, args)
    assert r2.exit_code == 0 and json.loads(r2.stdout)["skipped"] == 2
    (tmp_path / "sharp" / "p1.png").rename(tmp_path / "sharp" / "q1.png")
    r3 = CliRunner().invoke(app, args)
    assert r3.exit_code == 1 and "unpaired" in r3.stderr


def test_align_help_does_not_import_torch():
    code = (
        "import sys; from dpdeblur.cli import app; import typer.testing as tt;"
        "r=tt.CliRunner().invoke(app, ['align', '--help']); assert r.exit_code==0 and '--sharp' in r.output;"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, check=True)
    assert out.stdout.strip() == "False"


def test_paired_folders_order(tmp_path):
    _write_pairs(tmp_path, n=3)
    pairs = paired_folders(tmp_path / "blur", tmp_path / "sharp")
    assert [p.id for p in pairs] == ["p0", "p1", "p2"] and pairs[1].sharp.name == "p1.png"
