"""JDRL: joint deblurring and reblurring learning with misaligned pairs (Li, Ren,
Shu & Zuo, "Learning Single Image Defocus Deblurring with Misaligned Training
Pairs", arXiv:2211.14502, Eq. 1-10)::

    L   = L_d + alpha * L_r,  alpha = 0.5
    L_d = Charb(M_f * (warp(S, f) - O)) + Charb(M_g * (warp(O, g) - S))    (Eq. 5)
          f: flow on O's grid into S, g: flow on S's grid into O, M: calibration masks (Eq. 4)
    L_r = Charb(R(O, B) - B)                                               (Eq. 10)

Flows carry no gradient. Masked Charbonnier (``mask_norm``): ``"all"`` (default) is
Eq. 5 as written and as the authors' code computes it, the Charbonnier of the
masked difference averaged over every pixel, a masked-out pixel contributing eps;
``"kept"`` averages over the kept pixels only, which keeps L_d's scale when the
mask is small (with ``"all"``, L_d shrinks with the kept fraction against L_r).

Warm-up: for ``epoch < warmup_epochs`` (default 15) the flows are taken between S
and the blurry input B (``batch["flow_init"]`` from ``dpdeblur align`` when
present, its inverse by fixed-point iteration; else computed, with S
Gaussian-blurred before matching it to B); afterwards between S and O.
``warmup_mode``: ``"paper"`` (default, the paper's text) keeps the whole loss
(both masked directions and L_r) during warm-up; ``"code"`` follows the authors'
training script, an unmasked Charbonnier between O and the flow-warped S only
(no reverse term, no mask, no L_r).

For models returning several stage images (FCN) the flows are computed once on
the final image and reused for every stage (they all aim at the same geometry);
the per-stage terms are weighed by the base criterion's ``combine`` when it has
one (FCN's trainable ratios), else only the final image is used.
"""

from __future__ import annotations

import torch
from torch import nn

from dpdeblur.choices import WARMUP_MODES
from dpdeblur.flow.estimators import DISFlow, FlowEstimator
from dpdeblur.flow.warp import calibration_mask, invert_flow, warp
from dpdeblur.losses.pixel import MASK_NORMS, charbonnier
from dpdeblur.models.jdrl import ReblurNet

__all__ = ["JDRLLoss", "WARMUP_MODES"]


class JDRLLoss(nn.Module):
    """Criterion (see :mod:`dpdeblur.losses.criteria`): ``forward(output, batch, epoch) -> (loss, logs)``.

    Args:
        base: the model's default criterion; its pixel term is replaced. Kept as a
            submodule (its parameters, e.g. FCN's ratios, keep training) and used
            for its ``combine(terms)`` on multi-stage outputs.
        estimator: flow estimator (default OpenCV DIS, preset ``medium``).
        warmup_epochs: N, epochs with flows between ground truth and blurry input.
        lam: calibration mask lambda. alpha: weight of L_r. eps: Charbonnier eps.
        sharp_sigma: Gaussian sigma applied to the sharp image when it is matched
            to the blurry one (warm-up). min_tol: calibration tolerance floor (px).
        reblur: the reblurring network (default :class:`ReblurNet` ()).
        mask_norm: ``"all"`` (reference) or ``"kept"``, see the module docstring.
        warmup_mode: ``"paper"`` or ``"code"``, see the module docstring.

    Logs ``L_d``, ``L_r``, ``mask`` (kept fraction), ``flow`` (mean |f| in px),
    ``warmup`` (1/0), plus the base's logs (e.g. ratios).
    """

    def __init__(
        self,
        base: nn.Module | None = None,
        estimator: FlowEstimator | None = None,
        warmup_epochs: int = 15,
        lam: float = 0.35,
        alpha: float = 0.5,
        eps: float = 1e-3,
        sharp_sigma: float = 2.0,
        min_tol: float = 0.5,
        reblur: nn.Module | None = None,
        mask_norm: str = "all",
        warmup_mode: str = "paper",
    ) -> None:
        super().__init__()
        if mask_norm not in MASK_NORMS:
            raise ValueError(f"JDRL mask norm must be one of {', '.join(MASK_NORMS)}, got {mask_norm!r}")
        if warmup_mode not in WARMUP_MODES:
            raise ValueError(f"JDRL warm-up mode must be one of {', '.join(WARMUP_MODES)}, got {warmup_mode!r}")
        self.mask_norm, self.warmup_mode = mask_norm, warmup_mode
        self.base = base
        self.reblur = reblur if reblur is not None else ReblurNet()
        self.estimator = estimator if estimator is not None else DISFlow("medium")
        self.warmup_epochs, self.lam, self.alpha = warmup_epochs, lam, alpha
        self.eps, self.sharp_sigma, self.min_tol = eps, sharp_sigma, min_tol

    @torch.no_grad()
    def flows(self, out: torch.Tensor, batch: dict, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(f, g): f on the output's grid pointing into the sharp image, g the reverse."""
        sharp = batch["sharp"]
        if epoch >= self.warmup_epochs:
            return self.estimator(out, sharp), self.estimator(sharp, out)
        blur = batch["blur"]
        init = batch.get("flow_init")
        if init is not None:
            if init.shape[0] != sharp.shape[0] or init.shape[1:] != (2, *sharp.shape[-2:]):
                raise ValueError(f"flow_init must be (B, 2, H, W) = {(sharp.shape[0], 2, *sharp.shape[-2:])}, got {tuple(init.shape)}")
            f = init.to(sharp)
            return f, invert_flow(f)
        s = self.sharp_sigma
        return self.estimator(blur, sharp, smooth_mov=s), self.estimator(sharp, blur, smooth_ref=s)

    def deblur_loss(self, out: torch.Tensor, sharp: torch.Tensor, f: torch.Tensor, g: torch.Tensor,
                    masks: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """L_d (Eq. 5): masked Charbonnier both ways."""
        n = self.mask_norm
        return (charbonnier(out, warp(sharp, f), self.eps, masks[0], n)
                + charbonnier(warp(out, g), sharp, self.eps, masks[1], n))

    def reblur_loss(self, out: torch.Tensor, blur: torch.Tensor) -> torch.Tensor:
        """L_r (Eq. 10)."""
        return charbonnier(self.reblur(out, blur), blur, self.eps)

    def forward(self, output, batch: dict, epoch: int = 0) -> tuple[torch.Tensor, dict[str, float]]:
        # float32 whatever the model ran in (bf16 autocast): flows, warps and the reblurring net
        outs = [o.float() for o in (output if isinstance(output, (list, tuple)) else [output])]
        sharp, blur = batch["sharp"].float(), batch["blur"].float()
        f, g = self.flows(outs[-1].detach(), batch, epoch)
        masks = (calibration_mask(f, self.lam, self.min_tol), calibration_mask(g, self.lam, self.min_tol))
        combine = getattr(self.base, "combine", None)
        if len(outs) == 1 or combine is None:
            outs = outs[-1:]
        warmup = epoch < self.warmup_epochs
        if warmup and self.warmup_mode == "code":  # the authors' script: O against the warped S only
            target = warp(sharp, f)
            l_d = [charbonnier(o, target, self.eps) for o in outs]
            l_r = [torch.zeros((), device=o.device) for o in outs]
        else:
            l_d = [self.deblur_loss(o, sharp, f, g, masks) for o in outs]
            l_r = [self.reblur_loss(o, blur) for o in outs]
        terms = [d + self.alpha * r for d, r in zip(l_d, l_r)]
        if len(terms) > 1:
            loss, logs = combine(terms)
        else:
            loss, logs = terms[0], {}
        logs.update(
            L_d=float(l_d[-1].detach()), L_r=float(l_r[-1].detach()),
            mask=float(masks[0].mean()), flow=float(f.norm(dim=1).mean()),
            warmup=float(warmup),
        )
        return loss, logs
