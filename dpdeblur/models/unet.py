"""U-Net: JDRL's baseline deblurring network (JDRL, arXiv:2211.14502, supplement Table 6).

Encoder: 5 levels of two conv3x3+ReLU (64-128-256-512-1024 channels), 2x2
max-pool between levels, dropout 0.4 after the two deepest levels. Decoder:
upsample x2 + conv3x3 (+ReLU) halving the width, concatenation with the skip,
two conv3x3+ReLU; a final conv3x3 to 3 channels and a sigmoid.

Choices where the table is silent: nearest-neighbour upsampling, a ReLU after
the up-convolution (Table 6 lists "Upsample, Conv" without activation; both
variants have the same parameters), no image residual (the sigmoid output is the
image, as in the paper). Any input size: padded (reflect) to a multiple of 16.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dpdeblur.models.blocks import PaddedModel

__all__ = ["UNet", "unet"]


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(inplace=True),
    )


class UNet(PaddedModel):
    """Input :math:`(B, 3, H, W)`, output :math:`(B, 3, H, W)` in [0, 1]."""

    def __init__(self, base: int = 64, depth: int = 5, dropout: float = 0.4, in_channels: int = 3) -> None:
        super().__init__()
        widths = [base * 2**i for i in range(depth)]
        self.multiple_of = 2 ** (depth - 1)
        self.enc = nn.ModuleList(
            [_double_conv(in_channels if i == 0 else widths[i - 1], w) for i, w in enumerate(widths)]
        )
        self.drop = nn.Dropout(dropout)
        self.n_dropout = min(2, depth)
        self.up = nn.ModuleList([nn.Conv2d(widths[i + 1], widths[i], 3, padding=1) for i in range(depth - 1)])
        self.dec = nn.ModuleList([_double_conv(2 * widths[i], widths[i]) for i in range(depth - 1)])
        self.out = nn.Conv2d(widths[0], 3, 3, padding=1)

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        depth = len(self.enc)
        for i, enc in enumerate(self.enc):
            if i:
                x = F.max_pool2d(x, 2)
            x = enc(x)
            if i >= depth - self.n_dropout:
                x = self.drop(x)
            skips.append(x)
        for i in reversed(range(depth - 1)):
            x = F.relu(self.up[i](F.interpolate(x, scale_factor=2.0, mode="nearest")))
            x = self.dec[i](torch.cat([skips[i], x], dim=1))
        return torch.sigmoid(self.out(x))


def unet(**kwargs) -> UNet:
    """Builder used by the registry."""
    return UNet(**kwargs)
