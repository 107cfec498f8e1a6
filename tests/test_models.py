"""Registry and DMTNet fidelity: counts against Table 1, shapes, gradients, any size."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from dpdeblur.errors import UnknownModelError
from dpdeblur.models import create_model, get_card, list_models

DMTNETS = ["dmtnet-t", "dmtnet-s", "dmtnet-b", "dmtnet-l", "dmtnet-h"]

def count(name):
    card = get_card(name)
    model = create_model(name, device="meta")
    params = sum(p.numel() for p in model.parameters())
    x = torch.empty(1, card.in_channels, 1120, 1680, device="meta")
    with FlopCounterMode(display=False) as fc:
        model(x)
    return params, fc.get_total_flops() // 2


def test_registry_lists_dmtnet_family():
    names = list_models()
    for n in DMTNETS:
        assert n in names
    assert [get_card(n).config["n_dmssrm"] for n in DMTNETS] == [0, 1, 2, 3, 4]


# exact counts of the structure built here: (params, MACs at 1680x1120)
DMTNET_COUNTS = {
    "dmtnet-t": (1174494, 147080908800),
    "dmtnet-s": (12532353, 721495757088),
    "dmtnet-b": (24444132, 1324360397376),
    "dmtnet-l": (36355911, 1927225037664),
    "dmtnet-h": (48267690, 2530089677952),
}


@pytest.mark.parametrize("name", DMTNETS)
def test_counts_match_card_and_paper(name):
    card = get_card(name)
    params, macs = count(name)
    # the card states what this code builds, exactly, and the pins catch silent changes
    assert (params, macs) == (card.params, card.macs) == DMTNET_COUNTS[name]
    # and that is the paper's network: Table 1 within 2% (params) / 5% (MACs); T is the
    # documented exception (-4.5%: the bundled weights fix its structure)
    assert abs(params / card.paper_params - 1) < (0.05 if name == "dmtnet-t" else 0.02)
    assert abs(macs / card.paper_macs - 1) < 0.05


def test_dmssrm_increments_follow_table_1():
    """Table 1 adds 11.34M for the first DMSSRM and 11.89M for each later one: the first
    module is plain, the later ones end every RBM with a conv3x3 (RCAN's residual group)."""
    p = {n: DMTNET_COUNTS[n][0] for n in DMTNETS}
    first, later = p["dmtnet-s"] - p["dmtnet-t"], p["dmtnet-b"] - p["dmtnet-s"]
    assert (first, later) == (11357859, 11911779)
    assert p["dmtnet-l"] - p["dmtnet-b"] == p["dmtnet-h"] - p["dmtnet-l"] == later
    assert later - first == 3 * 5 * (64 * 64 * 9 + 64)  # one conv3x3 per RBM, 5 RBM x 3 scales
    assert abs(first / 11.34e6 - 1) < 0.005 and abs(later / 11.89e6 - 1) < 0.005


def test_plain_modules_option_and_state_dict_keys(tiny):
    b = create_model("dmtnet-b", **tiny.config("dmtnet"))
    rbms = [b.reconstruction[i].branches[0].rgm.body[0] for i in range(2)]
    assert rbms[0].tail is None and isinstance(rbms[1].tail, torch.nn.Conv2d)
    # every module plain = the structure of earlier releases: its keys are the default's minus the tails
    plain = create_model("dmtnet-b", plain_modules=2, **tiny.config("dmtnet")).state_dict()
    default = b.state_dict()
    assert set(plain) < set(default)
    assert all(".tail." in k and k.startswith("reconstruction.1.") for k in set(default) - set(plain))
    rcan = create_model("dmtnet-b", plain_modules=0, **tiny.config("dmtnet"))
    assert rcan.reconstruction[0].branches[2].rgm.body[0].tail is not None
    # T has no DMSSRM: its structure (and the bundled weights' keys) does not depend on the option
    assert create_model("dmtnet-t", plain_modules=0).state_dict().keys() == create_model("dmtnet-t").state_dict().keys()


def test_scale_branches_are_full_half_quarter():
    model = create_model("dmtnet-s")
    assert [b.down[0].downscale_factor for b in model.reconstruction[0].branches] == [1, 2, 4]
    assert [b.up[1].upscale_factor for b in model.reconstruction[0].branches] == [1, 2, 4]
    assert model.multiple_of == 16


def test_card_states_view_order_and_layout():
    card = get_card("dmtnet-b")
    assert card.layout == "dp" and card.views == ("right", "left") and card.in_channels == 6
    assert card.paper_metrics["dpdd_psnr"] == pytest.approx(26.63)


def test_unknown_model_is_a_usage_error():
    with pytest.raises(UnknownModelError, match="known models: dmtnet-t"):
        get_card("dmtnet-x")


@pytest.mark.parametrize("n_dmssrm", [0, 2])
@pytest.mark.parametrize("size", [(32, 48), (37, 53), (5, 7)])
def test_any_input_size_forward_backward(n_dmssrm, size, tiny):
    model = create_model("dmtnet-b", n_dmssrm=n_dmssrm, **tiny.config("dmtnet"))
    x = torch.rand(2, 6, *size, requires_grad=True)
    y = model(x)
    assert y.shape == (2, 3, *size)
    y.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"no gradient reaches {name}"


def test_padding_is_cropped_and_is_reflect(tiny):
    model = create_model("dmtnet-s", **tiny.config("dmtnet")).eval()
    x = torch.rand(1, 6, 33, 47)
    with torch.no_grad():
        y = model(x)
        # the padded forward on the same reflect-padded tensor gives the same crop
        from dpdeblur.models.blocks import pad_to_multiple

        xp, _ = pad_to_multiple(x, model.multiple_of)
        assert xp.shape[-2] % 16 == 0 and xp.shape[-1] % 16 == 0
        assert torch.equal(xp[..., 33, :47], x[..., 31, :])  # reflect, not zeros
        assert torch.allclose(model.forward_padded(xp)[..., :33, :47], y)


def test_scale_selection_is_a_softmax_per_image(tiny):
    model = create_model("dmtnet-s", **tiny.config("dmtnet"))
    sel = model.reconstruction[0].select
    f = torch.randn(3, 12, 8, 8)
    a = sel(f)
    assert a.shape == (3, 3, 1, 1)
    assert torch.allclose(a.sum(1), torch.ones(3, 1, 1))
    assert (a > 0).all()


def test_image_residual_identity_at_init_when_zeroed(tiny):
    model = create_model("dmtnet-t", **tiny.config("dmtnet"))
    torch.nn.init.zeros_(model.upsample.conv.weight)
    torch.nn.init.zeros_(model.upsample.conv.bias)
    x = torch.rand(1, 6, 16, 16)
    # output = mean of the two views when the learned part is zero
    assert torch.allclose(model(x), (x[:, :3] + x[:, 3:]) / 2)


def test_shifted_window_mask_separates_regions():
    from dpdeblur.models.dmtnet import _shift_mask

    m = _shift_mask(8, 8, 4, 2, "cpu")
    assert m.shape == (4, 16, 16)
    assert (m[0] == 0).all()  # the top-left window holds one region only
    assert (m[-1] != 0).any()  # the bottom-right window mixes wrapped regions


def test_untrained_dmtnet_starts_near_identity():
    """The up-sampling conv starts small, so an untrained model returns almost the mean view."""
    model = create_model("dmtnet-t").eval()
    x = torch.rand(1, 6, 32, 32)
    with torch.no_grad():
        err = (model(x) - (x[:, :3] + x[:, 3:]) / 2).abs().mean()
    assert err < 0.02


def test_training_after_inference_in_the_same_process(tiny):
    """Caches filled under inference_mode must not break a later backward pass."""
    from dpdeblur.models.dmtnet import _relative_index

    _relative_index.cache_clear()
    model = create_model("dmtnet-s", **tiny.config("dmtnet"))
    with torch.inference_mode():
        model(torch.rand(1, 6, 16, 16))
    model(torch.rand(1, 6, 16, 16)).mean().backward()
    assert model.feature_extraction.blocks[0].layers[0].attn.relative_position_bias_table.grad is not None
