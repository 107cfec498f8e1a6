"""Tiled inference: exact for local models, seamless, global statistics shared by tiles."""

import numpy as np
import pytest
import torch
from torch import nn

from dpdeblur.inference.tiling import TileSettings, blend_profile, pooled_modules, tile_starts, tiled_forward
from dpdeblur.models import list_models
from dpdeblur.models.blocks import PaddedModel

class ConvNet(PaddedModel):
    """Three 3x3 convs: receptive-field radius 3; pads itself to a multiple of 4 like the real models."""

    multiple_of = 4

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.GELU(), nn.Conv2d(8, 8, 3, padding=1), nn.GELU(), nn.Conv2d(8, 3, 3, padding=1))

    def forward_padded(self, x):
        return [x, x + self.body(x)]  # lists: the engine uses the last item


def test_tile_starts_equal_and_clamped():
    assert tile_starts(300, 128, 32) == [0, 96, 172]
    assert tile_starts(100, 128, 32) == [0]
    for size, t, o in [(1000, 256, 64), (513, 512, 64), (777, 128, 64)]:
        s = tile_starts(size, t, o)
        assert s[0] == 0 and s[-1] == size - t and all(b - a <= t - o for a, b in zip(s, s[1:]))


@pytest.mark.parametrize("blend", ["hann", "linear", "crop"])
def test_blend_weights_partition_of_unity(blend):
    starts, t = tile_starts(700, 256, 64), 256
    total = torch.zeros(700)
    for k, s in enumerate(starts):
        total[s : s + t] += blend_profile(starts, k, t, blend)
    assert torch.allclose(total, torch.ones(700), atol=1e-6)


@pytest.mark.parametrize("blend", ["hann", "linear", "crop"])
def test_conv_tiled_equals_whole(blend):
    torch.manual_seed(0)
    net = ConvNet().eval()
    x = torch.rand(1, 3, 203, 317)
    with torch.inference_mode():
        whole = net(x)[-1]
    for tile, tb in [(64, 1), (96, 3)]:
        out = tiled_forward(net, x, TileSettings(tile=tile, overlap=32, blend=blend, tile_batch=tb))
        assert out.shape == whole.shape
        assert (out - whole).abs().max() < 1e-5


class Wide(nn.Module):
    """Receptive field larger than the overlap (radius 12 > 32/4): tiles are not exact."""

    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 3, 25, padding=12, padding_mode="zeros")

    def forward(self, x):
        return self.c(x)


def test_no_seam():
    torch.manual_seed(0)
    net = Wide().eval()
    x = torch.rand(1, 3, 256, 384)
    with torch.inference_mode():
        whole = net(x)
    out = tiled_forward(net, x, TileSettings(tile=96, overlap=32))
    err = (out - whole).abs()[0].mean(0)  # (H, W)
    assert err.max() > 1e-4  # not trivially exact...
    ys = tile_starts(256, 96, 32)
    xs = tile_starts(384, 96, 32)
    rows = torch.tensor(sorted({s for s in ys[1:]} | {s + 96 - 1 for s in ys[:-1]}))
    cols = torch.tensor(sorted({s for s in xs[1:]} | {s + 96 - 1 for s in xs[:-1]}))
    interior = err[16:-16, 16:-16].mean()
    # ...but the error on rows/columns at tile borders is no larger than elsewhere
    assert err[rows].mean() <= 1.2 * err.mean() and err[:, cols].mean() <= 1.2 * err.mean()
    assert err[rows].mean() <= 1.5 * interior + 1e-7


def test_tile_zero_is_whole_image():
    net = ConvNet().eval()
    x = torch.rand(1, 3, 50, 70)
    out = tiled_forward(net, x, TileSettings(tile=0))
    with torch.inference_mode():
        assert torch.equal(out, net(x)[-1])


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_runs_tiled(name, tiny):
    model = tiny.model(name)
    card = model.card
    x = torch.rand(1, card.in_channels, 96, 136)
    out = tiled_forward(model, x, TileSettings(tile=64, overlap=32))
    assert out.shape == (1, 3, 96, 136) and torch.isfinite(out).all()


def test_global_stats_remedy_matches_whole_image_pooling(tiny):
    torch.manual_seed(0)
    model = tiny.model("dmtnet-s")
    mods = pooled_modules(model)
    assert len(mods) == 1
    # make the selection strongly data dependent so the effect is visible
    with torch.no_grad():
        mods[0].conv.weight.mul_(200)
    gx = torch.linspace(0, 1, 256)[None, :].expand(192, 256)  # ramps: tiles differ in their statistics
    gy = torch.linspace(0, 1, 192)[:, None].expand(192, 256)
    x = torch.stack([gx, gy, torch.rand(192, 256)])
    x = torch.cat([x, x.flip(-1)])[None]
    pooled = []  # what the selection module pools over the whole image (its input's global mean)
    h = mods[0].register_forward_pre_hook(lambda m, a: pooled.append(a[0].mean(dim=(2, 3), keepdim=True)))
    with torch.inference_mode():
        whole = model(x)
    h.remove()
    img_pooled = pooled[0]

    def err(**kw):
        return float((tiled_forward(model, x, TileSettings(tile=64, overlap=32, **kw)) - whole).abs().max())

    off, on = err(global_stats=False), err(global_stats=True)
    assert on < 0.2 * off
    # the override used by the second pass is the whole image's pooled feature
    seen = []
    h = mods[0].register_forward_pre_hook(lambda m, a: seen.append(m.pooled_override))
    tiled_forward(model, x, TileSettings(tile=64, overlap=32))
    h.remove()
    assert seen[-1] is not None and torch.allclose(seen[-1], img_pooled[:1], atol=5e-3)
    assert mods[0].pooled_override is None  # cleaned up


class OOMAbove(ConvNet):
    """Raises CUDA-style out-of-memory for inputs larger than 64 px."""

    def forward_padded(self, x):
        if max(x.shape[-2:]) > 64:
            raise torch.OutOfMemoryError("fake")
        return super().forward_padded(x)


def test_out_of_memory_halves_tile_once():
    torch.manual_seed(0)
    net = OOMAbove().eval()
    x = torch.rand(1, 3, 100, 140)
    msgs = []
    out = tiled_forward(net, x, TileSettings(tile=256, overlap=32, min_tile=32), warn=msgs.append)
    assert len(msgs) == 1 and "tile reduced to" in msgs[0]
    with torch.inference_mode():
        assert (out - ConvNet.forward_padded(net, x)[-1]).abs().max() < 1e-5


def test_tiles_on_dmtnet_window_grid_match_whole_image(tiny):
    """DMTNet's tile_align: window-aligned tiles reproduce the whole image (transformer part)."""
    torch.manual_seed(0)
    model = tiny.model("dmtnet-t", window=7)  # the card's window: 28-px grid
    assert model.tile_align == 28 == model.card.tile_align
    x = torch.rand(1, 6, 120, 232)
    with torch.inference_mode():
        whole = model(x)
    out = tiled_forward(model, x, TileSettings(tile=112, overlap=48))
    model.tile_align = 1
    unaligned = tiled_forward(model, x, TileSettings(tile=112, overlap=48))
    assert (out - whole).abs().max() < 0.1 * (unaligned - whole).abs().max()


def test_progress_counts_every_forward_pass(tiny, capsys):
    """``progress(done, total)`` after every tile batch, both passes with global statistics;
    ``dpdeblur.deblur(..., progress=True)`` shows it as a tqdm bar."""
    from dpdeblur.inference.tiling import plan_tiles

    model = tiny.model("dmtnet-s")
    x = torch.rand(1, 6, 96, 136)
    n = len(plan_tiles(model, 96, 136, 64, 32)[2])
    for stats, passes in ((False, 1), (True, 2)):
        calls = []
        tiled_forward(model, x, TileSettings(tile=64, overlap=32, tile_batch=2, global_stats=stats),
                      progress=lambda d, t: calls.append((d, t)))
        assert calls[-1] == (passes * n, passes * n) and [d for d, _ in calls] == sorted({d for d, _ in calls})
    import dpdeblur

    rgb = tiny.model("unet")
    n = len(plan_tiles(rgb, 40, 56, 32, 8)[2])
    capsys.readouterr()
    y = dpdeblur.deblur(np.random.default_rng(0).random((40, 56, 3)), rgb, tile=32, overlap=8, progress=True)
    assert y.shape == (40, 56, 3) and f"{n}/{n}" in capsys.readouterr().err
