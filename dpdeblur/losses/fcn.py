"""FCN's multi-stage loss with trainable ratios ("A feature catcher with excellent deblurring
effects", ICBDT 2022, Eq. 1)::

    L = sum_s r_s * Charbonnier(P_s, G)

The paper only says the ratios are trainable and lie in [0, 1]. Trained freely,
every r_s goes to 0 (the loss is linear in r_s with a positive slope: the zero
ratio is a trivial minimum). Here the ratios are a softmax of trainable logits,
so they stay in [0, 1] and sum to 1: lowering one stage's ratio raises the
others'. A softmax alone would still drift towards a one-hot on the stage with
the smallest loss (the final one), leaving earlier stages unsupervised, so each
ratio keeps a floor::

    r = r_min + (1 - S * r_min) * softmax(logits)      (sum r = 1, r_s >= r_min)

``r_min = 0.05`` by default; ``r_min = 0`` is the plain softmax.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from dpdeblur.losses.pixel import charbonnier

__all__ = ["MultiStageRatioLoss"]


class MultiStageRatioLoss(nn.Module):
    """Criterion (see :mod:`dpdeblur.losses.criteria`): ``forward(output, batch, epoch) -> (loss, logs)``.

    Args:
        n_stages: number of stage images the model returns (FCN: 4).
        eps: Charbonnier epsilon.
        r_min: floor of every ratio (``0 <= r_min < 1 / n_stages``).

    ``output`` is the list of stage images :math:`(B, 3, H, W)` (a single tensor
    is treated as one stage with ratio 1); ``batch["sharp"]`` the ground truth.
    Logs ``r0..r{S-1}`` (the ratios), ``stage0..`` (per-stage Charbonnier) and ``pixel``.
    """

    def __init__(self, n_stages: int = 4, eps: float = 1e-3, r_min: float = 0.05) -> None:
        super().__init__()
        if not 0 <= r_min < 1 / n_stages:
            raise ValueError(f"r_min must be in [0, 1/{n_stages}), got {r_min}")
        self.n_stages, self.eps, self.r_min = n_stages, eps, r_min
        self.logits = nn.Parameter(torch.zeros(n_stages))

    def ratios(self) -> torch.Tensor:
        """The ratios r_s, shape :math:`(S,)`, in [r_min, 1], summing to 1."""
        return self.r_min + (1 - self.n_stages * self.r_min) * torch.softmax(self.logits, 0)

    def combine(self, terms: Sequence[torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Weigh per-stage scalar losses by the ratios (also used by JDRLLoss)."""
        if len(terms) != self.n_stages:
            raise ValueError(f"expected {self.n_stages} stage outputs, got {len(terms)}")
        r = self.ratios()
        loss = (r * torch.stack(list(terms))).sum()
        logs = {f"r{s}": float(v) for s, v in enumerate(r.detach())}
        logs.update({f"stage{s}": float(t.detach()) for s, t in enumerate(terms)})
        return loss, logs

    def forward(self, output, batch: dict, epoch: int = 0) -> tuple[torch.Tensor, dict[str, float]]:
        gt = batch["sharp"].float()  # float32 whatever the model ran in (bf16 autocast)
        if isinstance(output, torch.Tensor):
            loss = charbonnier(output.float(), gt, self.eps)
            return loss, {"pixel": float(loss.detach())}
        loss, logs = self.combine([charbonnier(p.float(), gt, self.eps) for p in output])
        logs["pixel"] = float(loss.detach())
        return loss, logs
