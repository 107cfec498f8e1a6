"""Flow warping and JDRL's calibration mask (arXiv:2211.14502, Eq. 3-4).

Flow convention (everywhere in dpdeblur): a flow :math:`\\Phi` of shape
:math:`(B, 2, H, W)` (x then y displacement, pixels) lives on the grid of a
reference image ``ref`` and points into a moving image ``mov``:
``ref(p) ~ mov(p + Phi(p))``, so ``warp(mov, Phi)`` is ``mov`` deformed onto ``ref``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["warp", "calibration_mask", "inside_mask", "invert_flow"]


def _sample_coords(flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Absolute sampling positions in float32 (``arange(512)`` in bf16 has 385 distinct values)."""
    _, _, h, w = flow.shape
    flow = flow.to(torch.promote_types(flow.dtype, torch.float32))
    ys = torch.arange(h, device=flow.device, dtype=flow.dtype).view(1, h, 1)
    xs = torch.arange(w, device=flow.device, dtype=flow.dtype).view(1, 1, w)
    return xs + flow[:, 0], ys + flow[:, 1]


def warp(img: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward warp: ``out(p) = img(p + flow(p))``, bilinear, border padding.

    Args:
        img: :math:`(B, C, H, W)`.
        flow: :math:`(B, 2, H, W)` in pixels (x, y), on ``img``'s device, any float dtype.

    Returns:
        :math:`(B, C, H, W)` at least float32 (the grid and the sampling run in float32 whatever the
        inputs' dtype or an enclosing autocast); differentiable with respect to ``img`` (and ``flow``).
    """
    _, _, h, w = img.shape
    dt = torch.promote_types(torch.promote_types(img.dtype, flow.dtype), torch.float32)
    with torch.autocast(img.device.type, enabled=False):
        x, y = _sample_coords(flow.to(dt))
        grid = torch.stack([2 * x / max(w - 1, 1) - 1, 2 * y / max(h - 1, 1) - 1], dim=-1)
        return F.grid_sample(img.to(dt), grid, mode="bilinear", padding_mode="border", align_corners=True)


def inside_mask(flow: torch.Tensor) -> torch.Tensor:
    """:math:`(B, 1, H, W)` bool: ``p + flow(p)`` falls inside the image (half a pixel of slack)."""
    _, _, h, w = flow.shape
    x, y = _sample_coords(flow)
    return ((x >= -0.5) & (x <= w - 0.5) & (y >= -0.5) & (y <= h - 0.5)).unsqueeze(1)


def calibration_mask(flow: torch.Tensor, lam: float = 0.35, min_tol: float = 0.5) -> torch.Tensor:
    """JDRL's calibration mask (Eq. 4) on flow magnitudes, per image.

    Keeps pixels whose flow magnitude lies within ``(1 -+ lam)`` of the image's mean
    magnitude, i.e. ``| |Phi(p)| - mean |Phi| | < max(lam * mean |Phi|, min_tol)``,
    and whose target falls inside the image. ``min_tol`` (pixels, our addition) keeps
    nearly aligned pairs usable: with a mean flow near 0 the literal Eq. 4 keeps only
    a random subset of pixels.

    Returns:
        :math:`(B, 1, H, W)` float mask in {0, 1}.
    """
    mag = flow.norm(dim=1, keepdim=True)
    mean = mag.mean(dim=(2, 3), keepdim=True)
    tol = (lam * mean).clamp_min(min_tol)
    return (((mag - mean).abs() < tol) & inside_mask(flow)).to(flow.dtype)


def invert_flow(flow: torch.Tensor, iters: int = 3) -> torch.Tensor:
    """Approximate inverse of a smooth flow by fixed-point iteration:
    ``G(q) = -Phi(q + G(q))``. Used when only one direction is cached."""
    g = -flow
    for _ in range(iters):
        g = -warp(flow, g)
    return g
