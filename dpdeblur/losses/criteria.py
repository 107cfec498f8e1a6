"""Training criteria (the ``Criterion`` interface every loss implements) and their factory.

A criterion is an ``nn.Module`` called as ``criterion(output, batch, epoch)`` and
returning ``(loss, logs)``: ``output`` is the model's output (a tensor, or a list of
stage images whose last element is the final image), ``batch`` the dict of tensors
(``input``, ``blur``, ``sharp``...), ``epoch`` the 0-based epoch. A criterion may own
parameters; the trainer optimises and checkpoints them with the model's.

Family criteria (FCN's multi-stage ratio loss, JDRL) live in their own modules and
are added with :func:`register_criterion`; ``jdrl=True`` wraps the chosen criterion in
``dpdeblur.losses.jdrl.JDRLLoss``.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from dpdeblur.choices import PIXEL_LOSSES
from dpdeblur.errors import UsageError
from dpdeblur.losses.pixel import get_pixel_loss

__all__ = ["PixelCriterion", "final_image", "build_criterion", "register_criterion", "list_criteria", "DEFAULT_CRITERION"]

#: Criterion used when none is named, per model family (anything else: charbonnier).
DEFAULT_CRITERION: dict[str, str] = {"dmtnet": "charbonnier", "unet": "charbonnier", "fcn": "fcn"}

_FACTORIES: dict[str, Callable[..., nn.Module]] = {}


def final_image(output: Any) -> torch.Tensor:
    """The final image of a model output: the tensor itself or the last of a list of stages."""
    return output[-1] if isinstance(output, (list, tuple)) else output


class PixelCriterion(nn.Module):
    """Charbonnier (eps 1e-3) / L1 / MSE between the final image and ``batch["sharp"]``,
    computed in float32 (safe under bf16 autocast). Logs nothing extra."""

    def __init__(self, name: str = "charbonnier", eps: float = 1e-3) -> None:
        super().__init__()
        self.name = name
        self.loss = get_pixel_loss(name, eps)

    def forward(self, output, batch: dict, epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
        return self.loss(final_image(output).float(), batch["sharp"].float()), {}


def register_criterion(name: str, factory: Callable[..., nn.Module]) -> None:
    """Add a criterion: ``factory(card, **kw) -> Criterion``."""
    _FACTORIES[name.lower()] = factory


def list_criteria() -> list[str]:
    """Registered criterion names (what ``--loss`` accepts)."""
    return list(_FACTORIES)


for _name in PIXEL_LOSSES:
    register_criterion(_name, lambda card, _n=_name, eps=1e-3, **kw: PixelCriterion(_n, eps))


def _fcn_ratio_loss(card, eps: float = 1e-3, **kw) -> nn.Module:
    from dpdeblur.losses.fcn import MultiStageRatioLoss

    return MultiStageRatioLoss(n_stages=int(card.config.get("stages", 4)), eps=eps)


register_criterion("fcn", _fcn_ratio_loss)


def build_criterion(
    name: str | None,
    card,
    *,
    jdrl: bool = False,
    jdrl_warmup: int = 15,
    jdrl_warmup_mode: str = "paper",
    jdrl_mask_norm: str = "all",
    **kw: Any,
) -> nn.Module:
    """Build the training criterion for a model.

    Args:
        name: a registered criterion (``charbonnier``, ``l1``, ``mse``...) or None for the
            family's default (:data:`DEFAULT_CRITERION`).
        card: the model's :class:`~dpdeblur.models.ModelCard`.
        jdrl: wrap the criterion in JDRL (misaligned-pair training): the criterion's
            pixel term becomes ``L_d + 0.5 L_r`` (bi-directional flow deformation plus
            the reblurring loss); FCN's ratios then weigh the per-stage JDRL terms.
        jdrl_warmup: epochs during which JDRL takes its flow between ground truth and
            the blurry input (``batch["flow_init"]`` from ``dpdeblur align`` when present).
        jdrl_warmup_mode: ``"paper"`` (the whole loss during warm-up) or ``"code"`` (the
            authors' script: unmasked Charbonnier against the flow-warped ground truth only).
        jdrl_mask_norm: masked Charbonnier averaged over ``"all"`` pixels (masked ones
            contribute eps; Eq. 5 and the authors' code) or over the ``"kept"`` ones.
        **kw: passed to the factory (e.g. ``eps``).
    """
    name = (name or DEFAULT_CRITERION.get(card.family, "charbonnier")).lower()
    if name not in _FACTORIES:
        raise UsageError(f"unknown loss {name!r}; choose one of {', '.join(_FACTORIES)}")
    crit = _FACTORIES[name](card, **kw)
    if jdrl:
        from dpdeblur.losses.jdrl import JDRLLoss

        crit = JDRLLoss(base=crit, warmup_epochs=jdrl_warmup, warmup_mode=jdrl_warmup_mode, mask_norm=jdrl_mask_norm)
    return crit
