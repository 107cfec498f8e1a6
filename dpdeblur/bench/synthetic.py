"""Synthetic images and misalignments shared by tests and benchmark scripts."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["texture", "zoom_shift_flow", "disk_blur"]


def texture(h: int, w: int, seed: int = 0, batch: int = 1) -> torch.Tensor:
    """Multi-scale smooth noise in [0, 1], :math:`(B, 3, H, W)`: texture at every
    scale, so optical flow and deblurring both have something to work on."""
    g = torch.Generator().manual_seed(seed)
    img = torch.zeros(batch, 3, h, w)
    for s in (1, 2, 4, 8, 16):
        n = torch.rand(batch, 3, h // s + 1, w // s + 1, generator=g)
        img += F.interpolate(n, size=(h, w), mode="bicubic", align_corners=False)
    img = img - img.amin(dim=(1, 2, 3), keepdim=True)
    return img / img.amax(dim=(1, 2, 3), keepdim=True)


def zoom_shift_flow(h: int, w: int, zoom: float = 0.01, dx: float = 0.0, dy: float = 0.0, batch: int = 1) -> torch.Tensor:
    """Flow :math:`(B, 2, H, W)` of a zoom about the centre plus a shift (pixels)."""
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    f = torch.stack([zoom * (xs - (w - 1) / 2) + dx, zoom * (ys - (h - 1) / 2) + dy])
    return f[None].repeat(batch, 1, 1, 1)


def disk_blur(x: torch.Tensor, radius: float) -> torch.Tensor:
    """Defocus-like blur: convolution with a normalised disk (replicate borders)."""
    r = int(radius + 0.999)
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    k = ((t.view(-1, 1) ** 2 + t.view(1, -1) ** 2) <= radius**2).to(x.dtype)
    k = (k / k.sum()).expand(x.shape[1], 1, -1, -1)
    return F.conv2d(F.pad(x, (r, r, r, r), mode="replicate"), k, groups=x.shape[1])
