"""FCN: parameter count against the paper, any input size, stage outputs, ratio loss."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from dpdeblur.losses.fcn import MultiStageRatioLoss
from dpdeblur.models import create_model, get_card
from dpdeblur.models.fcn import merge_patches, split_patches


def test_counts_match_card_and_paper():
    card = get_card("fcn")
    model = create_model("fcn", device="meta")
    params = sum(p.numel() for p in model.parameters())
    assert params == card.params == 20307387
    assert abs(params / 20.309e6 - 1) < 0.001  # the paper's 20.309M
    x = torch.empty(1, 3, 1120, 1680, device="meta")
    with FlopCounterMode(display=False) as fc:
        out = model(x)
    assert fc.get_total_flops() // 2 == card.macs == 10836017740800
    assert len(out) == 4 and all(o.shape == (1, 3, 1120, 1680) for o in out)


def test_card():
    card = get_card("fcn")
    assert card.layout == "rgb" and card.views == () and card.in_channels == 3
    assert card.paper_metrics["gopro_psnr"] == pytest.approx(33.32)
    assert card.paper_metrics["gopro_ssim"] == pytest.approx(0.972)


@pytest.mark.parametrize("grid", [(2, 4), (2, 2), (2, 1), (1, 1)])
def test_patch_split_merge_roundtrip(grid):
    x = torch.arange(2 * 3 * 8 * 16, dtype=torch.float32).view(2, 3, 8, 16)
    p = split_patches(x, grid)
    assert p.shape == (2 * grid[0] * grid[1], 3, 8 // grid[0], 16 // grid[1])
    assert torch.equal(p[1], x[0, :, : 8 // grid[0], 16 // grid[1] : 2 * 16 // grid[1]]) if grid[1] > 1 else True
    assert torch.equal(merge_patches(p, grid), x)


@pytest.mark.parametrize("size", [(32, 48), (37, 53), (5, 7)])
def test_any_size_returns_every_stage(size, tiny):
    model = create_model("fcn", **tiny.config("fcn"))
    x = torch.rand(2, 3, *size, requires_grad=True)
    out = model(x)
    assert isinstance(out, list) and len(out) == 4
    assert all(o.shape == (2, 3, *size) for o in out)
    sum(o.square().mean() for o in out).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"no gradient reaches {name}"


def test_padding_is_cropped(tiny):
    model = create_model("fcn", **tiny.config("fcn")).eval()
    x = torch.rand(1, 3, 33, 47)
    with torch.no_grad():
        from dpdeblur.models.blocks import pad_to_multiple

        xp, _ = pad_to_multiple(x, model.multiple_of)
        assert xp.shape[-2:] == (48, 48)
        ref = model.forward_padded(xp)
        for a, b in zip(model(x), ref):
            assert torch.allclose(a, b[..., :33, :47])


def test_query_maps_in_unit_interval(tiny):
    model = create_model("fcn", **tiny.config("fcn"))
    q = model.stages[0].qk.query_maps(torch.randn(2, 8, 16, 16) * 10)
    assert q.shape == (2, 2, 16, 16) and q.min() >= 0 and q.max() <= 1


def test_zero_output_heads_give_identity(tiny):
    model = create_model("fcn", **tiny.config("fcn"))
    for m in list(model.msam) + [model.rim]:
        conv = m.to_img if hasattr(m, "to_img") else m.tail
        torch.nn.init.zeros_(conv.weight)
        torch.nn.init.zeros_(conv.bias)
    x = torch.rand(1, 3, 16, 16)
    assert all(torch.allclose(o, x) for o in model(x))


def test_ratio_loss_value_and_gradient():
    crit = MultiStageRatioLoss(4)
    gt = torch.zeros(1, 3, 4, 4)
    outs = [torch.full_like(gt, v) for v in (0.4, 0.3, 0.2, 0.1)]
    loss, logs = crit(outs, {"sharp": gt}, 0)
    # at init every ratio is 1/4
    expect = sum((v * v + 1e-6) ** 0.5 for v in (0.4, 0.3, 0.2, 0.1)) / 4
    assert loss.item() == pytest.approx(expect, rel=1e-5)
    assert [logs[f"r{s}"] for s in range(4)] == pytest.approx([0.25] * 4)
    loss.backward()
    g = crit.logits.grad
    assert g is not None and g.abs().sum() > 0
    assert g[0] > 0 > g[3]  # the worst stage's ratio is pushed down, the best one's up


def test_ratios_stay_bounded_and_sum_to_one_while_training():
    crit = MultiStageRatioLoss(4, r_min=0.05)
    opt = torch.optim.SGD(crit.parameters(), lr=50.0)
    gt = torch.zeros(1, 3, 4, 4)
    outs = [torch.full_like(gt, v) for v in (0.4, 0.3, 0.2, 0.1)]
    for _ in range(200):
        opt.zero_grad()
        crit(outs, {"sharp": gt}, 0)[0].backward()
        opt.step()
    r = crit.ratios().detach()
    assert r.sum().item() == pytest.approx(1.0, abs=1e-6)
    assert (r >= 0.05 - 1e-6).all() and (r <= 1).all()
    assert r[0].item() == pytest.approx(0.05, abs=1e-3)  # floored, not collapsed to 0
    assert r[3] > 0.8


def test_ratio_loss_on_single_tensor_and_wrong_length():
    crit = MultiStageRatioLoss(4)
    gt = torch.zeros(1, 3, 4, 4)
    loss, logs = crit(torch.ones_like(gt), {"sharp": gt}, 0)
    assert loss.item() == pytest.approx(1.0, rel=1e-5) and "pixel" in logs
    with pytest.raises(ValueError, match="expected 4 stage outputs"):
        crit([gt, gt], {"sharp": gt}, 0)


def test_query_key_groups_follow_the_stage_patch_count(tiny):
    """Section 3.2: as many queries and key groups as image chunks at each stage (8, 4, 2, 1)."""
    model = create_model("fcn", device="meta")
    assert get_card("fcn").config["groups"] == (8, 4, 2, 1) and model.groups == (8, 4, 2, 1)
    assert [s.qk.query.out_channels for s in model.stages] == [8, 4, 2, 1]
    assert [s.qk.groups for s in model.stages] == [8, 4, 2, 1]
    # an int gives every stage the same count (the earlier all-8 structure); a query conv has 97 G parameters
    old = create_model("fcn", device="meta", groups=8)
    assert [s.qk.groups for s in old.stages] == [8] * 4
    assert sum(p.numel() for p in old.parameters()) - get_card("fcn").params == 97 * (4 * 8 - (8 + 4 + 2 + 1)) == 1649
    with pytest.raises(ValueError, match="fcn groups"):
        create_model("fcn", **{**tiny.config("fcn"), "groups": (8, 4, 2)})
    with pytest.raises(ValueError, match="fcn groups"):
        create_model("fcn", **{**tiny.config("fcn"), "groups": 3})


def test_single_query_map_weighs_every_key_group(tiny):
    model = create_model("fcn", **{**tiny.config("fcn"), "groups": (8, 4, 2, 1)})
    qk = model.stages[3].qk
    x = torch.randn(1, 8, 16, 16)
    q = qk.query_maps(x)
    assert q.shape == (1, 1, 16, 16)
    with torch.no_grad():
        ref = x + qk.proj(q * qk.key(x))  # one map broadcast over all key channels
        assert torch.allclose(qk(x), ref, atol=1e-6)
