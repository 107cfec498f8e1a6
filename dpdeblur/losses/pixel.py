"""Pixel losses: Charbonnier (eps 1e-3, as in all three papers), L1, MSE."""

from __future__ import annotations

import torch
from torch import nn

from dpdeblur.choices import MASK_NORMS

__all__ = ["charbonnier", "CharbonnierLoss", "get_pixel_loss", "MASK_NORMS"]


def charbonnier(
    pred: torch.Tensor,
    target: torch.Tensor,
    eps: float = 1e-3,
    mask: torch.Tensor | None = None,
    norm: str = "kept",
) -> torch.Tensor:
    """Mean of ``sqrt((pred - target)^2 + eps^2)``.

    Args:
        pred, target: :math:`(B, C, H, W)`.
        eps: Charbonnier epsilon.
        mask: optional weights broadcastable to ``pred`` (e.g. :math:`(B, 1, H, W)`).
        norm: with a mask, ``"kept"`` averages over the kept (weighted) elements only;
            ``"all"`` is the Charbonnier of the masked difference, ``sqrt((m (pred - target))^2
            + eps^2)`` averaged over every element, so a masked-out element contributes eps
            (JDRL's Eq. 5 read literally, and its authors' code).
    """
    if mask is None:
        return torch.sqrt((pred - target).square() + eps * eps).mean()
    m = mask.expand_as(pred).to(pred.dtype)
    if norm == "all":
        return torch.sqrt((m * (pred - target)).square() + eps * eps).mean()
    if norm != "kept":
        raise ValueError(f"mask norm must be one of {MASK_NORMS}, got {norm!r}")
    d = torch.sqrt((pred - target).square() + eps * eps)
    return (d * m).sum() / m.sum().clamp_min(1.0)


class CharbonnierLoss(nn.Module):
    def __init__(self, eps: float = 1e-3) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return charbonnier(pred, target, self.eps, mask)


def get_pixel_loss(name: str, eps: float = 1e-3):
    """``"charbonnier" | "l1" | "mse"`` -> ``fn(pred, target)``."""
    name = name.lower()
    if name == "charbonnier":
        return CharbonnierLoss(eps)
    if name == "l1":
        return nn.L1Loss()
    if name == "mse":
        return nn.MSELoss()
    from dpdeblur.errors import UsageError

    raise UsageError(f"unknown loss {name!r}; choose charbonnier, l1 or mse")
