"""JDRL: U-Net card, reblurring network properties, JDRLLoss behaviour."""

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from dpdeblur.flow.estimators import FlowEstimator
from dpdeblur.flow.warp import warp
from dpdeblur.losses.fcn import MultiStageRatioLoss
from dpdeblur.losses.jdrl import JDRLLoss
from dpdeblur.losses.pixel import charbonnier
from dpdeblur.models import create_model, get_card
from dpdeblur.models.jdrl import ReblurNet, isotropic_kernels


def test_unet_card_and_counts():
    card = get_card("unet")
    assert card.layout == "rgb" and card.in_channels == 3
    assert card.paper_metrics["sdd_psnr"] == pytest.approx(24.62)
    assert card.paper_metrics["sdd_psnr_jdrl"] == pytest.approx(25.82)
    model = create_model("unet", device="meta")
    assert sum(p.numel() for p in model.parameters()) == card.params
    widths = [m[0].out_channels for m in model.enc]
    assert widths == [64, 128, 256, 512, 1024]
    with FlopCounterMode(display=False) as fc:
        model(torch.empty(1, 3, 1120, 1680, device="meta"))
    assert fc.get_total_flops() // 2 == card.macs


@pytest.mark.parametrize("size", [(16, 16), (21, 35)])
def test_unet_any_size_sigmoid_and_dropout(size, tiny):
    model = tiny.model("unet", train=True)
    x = torch.rand(2, 3, *size)
    y = model(x)
    assert y.shape == (2, 3, *size) and y.min() >= 0 and y.max() <= 1
    model.eval()
    assert torch.equal(model(x), model(x))  # dropout off in eval


def test_unet_dp_card_counts_and_identity_start(tiny):
    card = get_card("unet-dp")
    assert card.layout == "dp" and card.views == ("left", "right") and card.in_channels == 6
    model = create_model("unet-dp", device="meta")
    assert sum(p.numel() for p in model.parameters()) == card.params
    with FlopCounterMode(display=False) as fc:
        model(torch.empty(1, 6, 1120, 1680, device="meta"))
    assert fc.get_total_flops() // 2 == card.macs
    m = tiny.model("unet-dp", train=True)
    x = torch.rand(2, 6, 21, 35)
    y = m(x)
    torch.testing.assert_close(y, (x[:, :3] + x[:, 3:]) / 2)  # zero-initialised residual: the combined image
    y.square().mean().backward()
    assert m.out.weight.grad.abs().sum() > 0  # and it learns a correction
    with pytest.raises(ValueError, match="residual"):
        create_model("unet", in_channels=4, residual=True, device="meta")


def test_kernels_isotropic_normalised_and_bounded():
    seeds = torch.randn(2, 35, 3, 4)
    ks = isotropic_kernels(seeds)
    assert [k.shape[-1] for k in ks] == [3, 5, 7, 9, 11, 13, 15]
    for k in ks:
        assert torch.allclose(k.sum(dim=(-1, -2)), torch.ones(2, 3, 4), atol=1e-5)
        assert (k >= 0).all()
        for t in (torch.rot90(k, 1, (-2, -1)), torch.rot90(k, 2, (-2, -1)), k.flip(-1), k.flip(-2), k.transpose(-1, -2)):
            assert torch.allclose(t, k, atol=1e-7)
    k15 = ks[-1]
    assert (k15[..., 0, 0] == 0).all()  # corner beyond radius 7
    assert (k15[..., 0, 7] > 0).all()  # edge midpoint at radius 7
    assert (ks[0][..., 0, 0] == 0).all()  # 3x3: corners at sqrt(2) > 1


def test_blur_stack_equals_explicit_per_pixel_convolution():
    net = ReblurNet(channels=4)
    img, seeds = torch.rand(1, 3, 9, 11), torch.randn(1, 35, 9, 11)
    stack = net.blur_stack(img, seeds)
    for i, k in zip(range(2, 9), isotropic_kernels(seeds)):
        ks, p = 2 * i - 1, i - 1
        u = F.unfold(F.pad(img, (p, p, p, p), mode="replicate"), ks).view(1, 3, ks * ks, 9, 11)
        ref = torch.einsum("bcnhw,bhwn->bchw", u, k.reshape(1, 9, 11, ks * ks))
        assert torch.allclose(stack[:, i - 2], ref, atol=1e-5)


def test_reblur_keeps_constant_image_and_trains():
    net = ReblurNet(channels=8)
    const = torch.full((2, 3, 12, 14), 0.3)
    const[1] = 0.7
    out = net(const, torch.rand(2, 3, 12, 14))
    assert torch.allclose(out, const, atol=1e-6)
    x = torch.rand(1, 3, 12, 14, requires_grad=True)
    net(x, torch.rand(1, 3, 12, 14)).mean().backward()
    assert x.grad is not None and all(p.grad is not None for p in net.parameters())
    # dtype/device follow the input (no CPU-pinned buffers)
    assert net.double()(x.double(), x.double()).dtype == torch.float64


class ConstantFlow(FlowEstimator):
    """Exact flows for a known integer shift: ref(p) = mov(p + d)."""

    def __init__(self, d):
        self.d, self.calls = d, []

    def estimate(self, ref, mov):
        self.calls.append((ref, mov))
        f = torch.zeros(ref.shape[0], 2, *ref.shape[-2:])
        sign = 1 if len(self.calls) % 2 == 1 else -1  # (out, sharp) then (sharp, out)
        f[:, 0] = sign * self.d
        return f


def _pair(shift=2):
    blur = torch.rand(2, 3, 24, 24)
    sharp = torch.roll(blur, shifts=shift, dims=-1)  # blur(p) = sharp(p + shift)
    return blur, sharp


def test_deblur_loss_tolerates_misalignment():
    blur, sharp = _pair(2)
    crit = JDRLLoss(estimator=ConstantFlow(2.0), warmup_epochs=0, reblur=ReblurNet(channels=4))
    out = blur.clone().requires_grad_(True)  # an output aligned with its input
    f, g = crit.flows(out.detach(), {"sharp": sharp, "blur": blur}, epoch=5)
    assert torch.allclose(f[:, 0], torch.full_like(f[:, 0], 2.0)) and torch.allclose(g[:, 0], torch.full_like(g[:, 0], -2.0))
    loss, logs = crit(out, {"sharp": sharp, "blur": blur, "input": blur}, epoch=5)
    # the deformed GT matches the aligned output: L_d is at Charbonnier's floor (2 * eps) inside the mask
    assert logs["L_d"] < 2e-3 + 1e-4
    assert charbonnier(out, sharp).item() > 0.1
    assert 0.85 < logs["mask"] <= 1 and logs["flow"] == pytest.approx(2.0) and logs["warmup"] == 0.0
    loss.backward()
    assert out.grad is not None and out.grad.abs().sum() > 0
    assert all(p.grad is not None for p in crit.reblur.parameters())


def test_warmup_uses_blurry_input_then_output():
    blur, sharp = _pair(2)
    est = ConstantFlow(2.0)
    crit = JDRLLoss(estimator=est, warmup_epochs=15, reblur=ReblurNet(channels=4))
    out = torch.rand_like(blur)
    crit(out, {"sharp": sharp, "blur": blur}, epoch=0)
    assert est.calls[0][0] is not out and torch.equal(est.calls[0][0], blur)  # warm-up: GT <-> blurry input
    est.calls.clear()
    crit(out, {"sharp": sharp, "blur": blur}, epoch=15)
    assert torch.equal(est.calls[0][0], out)  # afterwards: GT <-> output
    # a cached flow skips the estimator during warm-up; its inverse is used the other way
    est.calls.clear()
    init = torch.zeros(2, 2, 24, 24)
    init[:, 0] = 2.0
    _, logs = crit(out, {"sharp": sharp, "blur": blur, "flow_init": init}, epoch=3)
    assert est.calls == [] and logs["flow"] == pytest.approx(2.0) and logs["warmup"] == 1.0
    with pytest.raises(ValueError, match="flow_init"):
        crit(out, {"sharp": sharp, "blur": blur, "flow_init": init[:, :, :10]}, epoch=3)


def test_multi_stage_output_with_ratio_base_and_dual_pixel_batch():
    blur, sharp = _pair(1)
    base = MultiStageRatioLoss(4)
    crit = JDRLLoss(base=base, estimator=ConstantFlow(1.0), warmup_epochs=15, reblur=ReblurNet(channels=4))
    outs = [torch.rand_like(blur, requires_grad=True) for _ in range(4)]
    batch = {"input": torch.cat([blur, blur], 1), "blur": blur, "sharp": sharp}  # dp: 6-channel input
    loss, logs = crit(outs, batch, epoch=0)
    assert {"r0", "r3", "L_d", "L_r", "mask"} <= set(logs)
    loss.backward()
    assert base.logits.grad is not None and all(o.grad is not None for o in outs)
    keys = crit.state_dict().keys()
    assert "base.logits" in keys and any(k.startswith("reblur.kpn") for k in keys)


def test_masked_charbonnier_normalisation_all_vs_kept():
    pred, target = torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.5)
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :1, :] = 1  # a quarter of the pixels kept
    eps = 1e-3
    d = (0.25 + eps**2) ** 0.5
    # reference (Eq. 5, authors' code): mean over all pixels, masked ones contribute eps
    assert charbonnier(pred, target, eps, mask, "all").item() == pytest.approx(0.25 * d + 0.75 * eps, rel=1e-6)
    # option: mean over the kept pixels only (independent of the kept fraction)
    assert charbonnier(pred, target, eps, mask, "kept").item() == pytest.approx(d, rel=1e-6)
    assert charbonnier(pred, target, eps, torch.ones(1, 1, 4, 4), "all").item() == pytest.approx(d, rel=1e-6)
    with pytest.raises(ValueError, match="mask norm"):
        charbonnier(pred, target, eps, mask, "sum")


def test_jdrl_mask_norm_changes_the_balance_of_l_d():
    """With a small mask, the reference normalisation shrinks L_d (and its gradient) by the kept fraction."""
    blur, sharp = _pair(2)
    out = torch.rand_like(blur)
    batch = {"sharp": sharp, "blur": blur}

    class HalfMasked(JDRLLoss):
        def deblur_loss(self, out, sharp, f, g, masks):
            m = torch.zeros_like(masks[0])
            m[..., :6, :] = 1  # keep 1/4 of the rows
            return super().deblur_loss(out, sharp, f, g, (m, m))

    ref = HalfMasked(estimator=ConstantFlow(2.0), warmup_epochs=0, reblur=ReblurNet(channels=4))
    kept = HalfMasked(estimator=ConstantFlow(2.0), warmup_epochs=0, reblur=ReblurNet(channels=4), mask_norm="kept")
    assert JDRLLoss(estimator=ConstantFlow(2.0)).mask_norm == "all"  # the reference is the default
    _, a = ref(out, batch, epoch=1)
    _, k = kept(out, batch, epoch=1)
    eps = 1e-3
    assert a["L_d"] == pytest.approx(0.25 * k["L_d"] + 0.75 * 2 * eps, rel=1e-4)
    with pytest.raises(ValueError, match="mask norm"):
        JDRLLoss(estimator=ConstantFlow(2.0), mask_norm="mean")


def test_warmup_modes_paper_and_code():
    blur, sharp = _pair(2)
    batch = {"sharp": sharp, "blur": blur}
    out = torch.rand_like(blur, requires_grad=True)
    paper = JDRLLoss(estimator=ConstantFlow(2.0), warmup_epochs=15, reblur=ReblurNet(channels=4))
    code = JDRLLoss(estimator=ConstantFlow(2.0), warmup_epochs=15, reblur=ReblurNet(channels=4), warmup_mode="code")
    assert paper.warmup_mode == "paper"  # the paper's text is the default
    # paper: the whole loss during warm-up (both directions, masks, L_r)
    loss_p, logs_p = paper(out, batch, epoch=0)
    assert logs_p["L_r"] > 0 and logs_p["warmup"] == 1.0
    # code: unmasked Charbonnier between the output and the flow-warped GT, nothing else
    est = ConstantFlow(2.0)
    f = est(blur, sharp)
    loss_c, logs_c = code(out, batch, epoch=0)
    assert loss_c.item() == pytest.approx(charbonnier(out, warp(sharp, f)).item(), rel=1e-6)
    assert logs_c["L_r"] == 0.0 and logs_c["warmup"] == 1.0
    loss_c.backward()
    assert all(p.grad is None for p in code.reblur.parameters())  # the reblurring net rests in warm-up
    # after the warm-up both modes compute the same loss
    out2 = torch.rand_like(blur)
    code.estimator, paper.estimator = ConstantFlow(2.0), ConstantFlow(2.0)
    code.reblur.load_state_dict(paper.reblur.state_dict())
    assert code(out2, batch, epoch=15)[0].item() == pytest.approx(paper(out2, batch, epoch=15)[0].item())
    with pytest.raises(ValueError, match="warm-up mode"):
        JDRLLoss(estimator=ConstantFlow(2.0), warmup_mode="authors")


def test_jdrl_options_reach_the_criterion_from_the_config():
    from dpdeblur.errors import UsageError
    from dpdeblur.losses import build_criterion
    from dpdeblur.train.config import resolve_config

    c = resolve_config({"model": "unet", "jdrl": True})
    assert (c.jdrl_warmup_mode, c.jdrl_mask_norm) == ("paper", "all")
    c = resolve_config({"model": "unet", "jdrl": True, "jdrl_warmup_mode": "code", "jdrl_mask_norm": "kept"})
    crit = build_criterion(None, get_card("unet"), jdrl=True, jdrl_warmup_mode=c.jdrl_warmup_mode,
                           jdrl_mask_norm=c.jdrl_mask_norm)
    assert (crit.warmup_mode, crit.mask_norm) == ("code", "kept")
    with pytest.raises(UsageError, match="jdrl_warmup_mode"):
        resolve_config({"model": "unet", "jdrl": True, "jdrl_warmup_mode": "text"})
    with pytest.raises(UsageError, match="jdrl_mask_norm"):
        resolve_config({"model": "unet", "jdrl": True, "jdrl_mask_norm": "sum"})


def _authors_unet_state(base=4, seed=0):
    """A state dict laid out as the JDRL authors' ``VGG_Deblur`` (5 levels), random values."""
    g = torch.Generator().manual_seed(seed)
    w = [base * 2**i for i in range(5)]
    sd = {}

    def conv(name, cin, cout, k):
        sd[f"{name}.weight"] = torch.randn(cout, cin, k, k, generator=g) * (2 / (cin * k * k)) ** 0.5
        sd[f"{name}.bias"] = torch.randn(cout, generator=g) * 0.01

    for lvl in range(5):
        conv(f"encoder.block{lvl + 1}.0", 3 if lvl == 0 else w[lvl - 1], w[lvl], 3)
        conv(f"encoder.block{lvl + 1}.2", w[lvl], w[lvl], 3)
    for n, lvl in zip(range(6, 10), range(3, -1, -1)):
        conv(f"up{n}.1", w[lvl + 1], w[lvl], 2)
        conv(f"block{n}.0", 2 * w[lvl], w[lvl], 3)
        conv(f"block{n}.2", w[lvl], w[lvl], 3)
    conv("out.0", w[0], 3, 3)
    return sd


def _authors_unet_forward(sd, x):
    """The authors' forward, written out: nearest x2 + 2x2 conv with bottom/right zero
    padding, no ReLU after it, concatenation [up, skip], sigmoid output."""
    def c3(name, t):
        return F.conv2d(t, sd[f"{name}.weight"], sd[f"{name}.bias"], padding=1)

    skips = []
    for lvl in range(5):
        if lvl:
            x = F.max_pool2d(x, 2)
        x = F.relu(c3(f"encoder.block{lvl + 1}.2", F.relu(c3(f"encoder.block{lvl + 1}.0", x))))
        skips.append(x)
    for n, lvl in zip(range(6, 10), range(3, -1, -1)):
        up = F.conv2d(F.pad(F.interpolate(x, scale_factor=2), (0, 1, 0, 1)), sd[f"up{n}.1.weight"], sd[f"up{n}.1.bias"])
        x = torch.cat([up, skips[lvl]], 1)
        x = F.relu(c3(f"block{n}.2", F.relu(c3(f"block{n}.0", x))))
    return torch.sigmoid(c3("out.0", x))


def test_unet_code_variant_counts_and_loads_the_authors_checkpoint(tmp_path):
    # Table 6 (default) and the authors' code: 2x2 up-convolutions, 4/9 of the 3x3 ones' weights
    for up, params in (("table6", 34515011), ("code", 31033411)):
        m = create_model("unet", device="meta", up=up)
        assert sum(p.numel() for p in m.parameters()) == params
    assert get_card("unet").params == 34515011 and "up" not in get_card("unet").config
    # a checkpoint as their training script writes it: G_state_dict of a DataParallel model
    sd = _authors_unet_state()
    path = tmp_path / "epoch_099.pth"
    torch.save({"epoch": 100, "G_state_dict": {f"module.{k}": v for k, v in sd.items()},
                "Reblur_state_dict": {"module.x": torch.zeros(1)}}, path)
    model = create_model("unet", weights=path, base=4, up="code").eval()
    x = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        assert torch.allclose(model(x), _authors_unet_forward(sd, x), atol=1e-5)
    # the Table 6 variant refuses those weights with a clear message
    from dpdeblur.errors import WeightsError

    with pytest.raises(WeightsError, match="shape mismatch: up"):
        create_model("unet", weights=path, base=4)
    with pytest.raises(ValueError, match="unet up"):
        create_model("unet", up="transposed")
