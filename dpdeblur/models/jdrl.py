"""JDRL's spatially invariant reblurring network R(O, B) ("Learning Single Image Defocus
Deblurring with Misaligned Training Pairs", arXiv:2211.14502, Eq. 6-9, Table 7).

::

    S = R_kpn(cat(O, B))          (B, 35, H, W)  kernel seeds s_i of lengths i = 2..8
    k_i = Eq7(s_i) / sum          (2i-1)x(2i-1) isotropic kernels, one per pixel, shared by R, G, B
    O_1 = O,  O_i = k_i (*) O     per-pixel convolution, i = 2..8
    W = softmax(R_wpn(cat(O, B))) (B, 8, H, W)
    R(O, B) = sum_i W_i * O_i     (Eq. 9)

Eq. 7 gives the kernel value at distance rho from the centre as the linear
interpolation of the seed at floor(rho) and ceil(rho), zero beyond rho = i - 1.
Being linear in the seed, every kernel is a seed-weighted sum of fixed "ring"
filters (hat functions of rho around each integer radius; the outermost ring is
cut at i - 1). The per-pixel convolution is therefore computed exactly as one
fixed depthwise conv (14 ring filters of 15x15, replicate borders) followed by a
per-pixel contraction with the seeds: no unfold of 225 neighbours, no loop over
pixels, any device. :func:`isotropic_kernels` builds the explicit kernels (tests,
visualisation).

Choices where the paper is silent: seeds are made positive by a softmax over each
seed's entries, then each kernel is divided by its sum (the paper's "normalised by
a Softmax" cannot keep the zeros beyond the last radius); borders are replicated
(a constant image stays constant); residual blocks are conv-ReLU-conv + skip.
"""

from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import nn

from dpdeblur.models.blocks import cached_tensors

__all__ = ["ReblurNet", "isotropic_kernels", "seed_slices"]


def seed_slices(m: int = 8) -> list[slice]:
    """Channel slices of the seeds s_2..s_m in the kpn output (lengths 2..m, 35 for m=8)."""
    out, start = [], 0
    for i in range(2, m + 1):
        out.append(slice(start, start + i))
        start += i
    return out


@cached_tensors(maxsize=8)
def _bank(m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Ring filters (R, K, K) with K = 2m - 1: full hats at radii 0..m-2, then
    inner half hats at radii 1..m-1; and the seed->ring map P (35, m-1, R)."""
    r = m - 1
    t = torch.arange(-r, r + 1, dtype=torch.float64)
    rho = torch.sqrt(t.view(-1, 1) ** 2 + t.view(1, -1) ** 2)
    full = [torch.clamp(1 - (rho - j).abs(), min=0) for j in range(m - 1)]
    half = [torch.clamp(1 - (rho - j).abs(), min=0) * (rho <= j) for j in range(1, m)]
    bank = torch.stack(full + half).float()
    n_seeds = sum(range(2, m + 1))
    p = torch.zeros(n_seeds, m - 1, len(full) + len(half))
    for k, (i, sl) in enumerate(zip(range(2, m + 1), seed_slices(m))):
        for j in range(i - 1):  # a_0 .. a_{i-2}: full hats
            p[sl.start + j, k, j] = 1
        p[sl.start + i - 1, k, len(full) + i - 2] = 1  # a_{i-1}: cut at radius i - 1
    return bank, p


def _ring_coefficients(seeds: torch.Tensor, m: int) -> torch.Tensor:
    """Seeds :math:`(B, 35, H, W)` -> positive ring coefficients :math:`(B, m-1, 2m-2, H, W)`."""
    a = torch.cat([torch.softmax(seeds[:, sl], dim=1) for sl in seed_slices(m)], dim=1)
    p = _bank(m)[1].to(seeds)
    return torch.einsum("bshw,skr->bkrhw", a, p)


def isotropic_kernels(seeds: torch.Tensor, m: int = 8) -> list[torch.Tensor]:
    """Explicit per-pixel kernels (Eq. 7, normalised to sum 1).

    Args:
        seeds: :math:`(B, 35, H, W)` raw kpn output.

    Returns:
        ``m - 1`` tensors; the i-th (i = 2..m) is :math:`(B, H, W, 2i-1, 2i-1)`.
    """
    bank = _bank(m)[0].to(seeds)
    coef = _ring_coefficients(seeds, m)
    k = torch.einsum("bkrhw,ruv->bkhwuv", coef, bank)
    k = k / k.sum(dim=(-1, -2), keepdim=True)
    c = m - 1
    return [k[:, i - 2, :, :, c - i + 1 : c + i, c - i + 1 : c + i] for i in range(2, m + 1)]


class _ResBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(ch, ch, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(ch, ch, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _trunk(cin: int, ch: int, cout: int, n_res: int = 3) -> nn.Sequential:
    """Table 7: conv cin->ch, n x (resblock, conv), conv ch->cout."""
    layers: list[nn.Module] = [nn.Conv2d(cin, ch, 3, padding=1)]
    for _ in range(n_res):
        layers += [_ResBlock(ch), nn.Conv2d(ch, ch, 3, padding=1)]
    layers.append(nn.Conv2d(ch, cout, 3, padding=1))
    return nn.Sequential(*layers)


class ReblurNet(nn.Module):
    """R(O, B): inputs deblurred :math:`(B, 3, H, W)` and blurry :math:`(B, 3, H, W)`,
    output the reblurred deblurred image :math:`(B, 3, H, W)`.

    Args:
        m: largest kernel radius + 1 (8: kernels 3x3..15x15, 35 seed channels).
        channels: trunk width (64 in Table 7).
    """

    def __init__(self, m: int = 8, channels: int = 64) -> None:
        super().__init__()
        self.m = m
        self.kpn = _trunk(6, channels, sum(range(2, m + 1)))
        self.wpn = _trunk(6, channels, m)

    def blur_stack(self, img: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
        """The m - 1 blurred images :math:`(B, m-1, 3, H, W)` of ``img`` under the
        per-pixel kernels given by ``seeds`` :math:`(B, 35, H, W)`."""
        dt = torch.promote_types(img.dtype, torch.float32)  # at least float32 (bf16 AMP operands)
        with torch.autocast(img.device.type, enabled=False):
            img, seeds = img.to(dt), seeds.to(dt)
            bank = _bank(self.m)[0].to(img)
            n_r, ks = bank.shape[0], bank.shape[-1]
            b, c, h, w = img.shape
            pad = ks // 2
            x = F.pad(img, (pad, pad, pad, pad), mode="replicate")
            rings = F.conv2d(x, bank.unsqueeze(1).repeat(c, 1, 1, 1), groups=c).view(b, c, n_r, h, w)
            coef = _ring_coefficients(seeds, self.m)  # (B, m-1, R, H, W)
            num = torch.einsum("bkrhw,bcrhw->bkchw", coef, rings)
            den = torch.einsum("bkrhw,r->bkhw", coef, bank.sum(dim=(1, 2)))
            return num / den.unsqueeze(2)

    def forward(self, deblurred: torch.Tensor, blurry: torch.Tensor) -> torch.Tensor:
        dt = torch.promote_types(deblurred.dtype, torch.float32)  # at least float32 (bf16 AMP outputs)
        deblurred, blurry = deblurred.to(dt), blurry.to(dt)
        x = torch.cat([deblurred, blurry], dim=1)
        blurred = self.blur_stack(deblurred, self.kpn(x))
        wts = torch.softmax(self.wpn(x).to(dt), dim=1)  # (B, m, H, W)
        return wts[:, :1] * deblurred + (wts[:, 1:].unsqueeze(2) * blurred).sum(dim=1)
