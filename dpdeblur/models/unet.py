"""U-Net: JDRL's baseline deblurring network (Li, Ren, Shu & Zuo, "Learning Single
Image Defocus Deblurring with Misaligned Training Pairs", arXiv:2211.14502,
supplement Table 6).

Encoder: 5 levels of two conv3x3+ReLU (64-128-256-512-1024 channels), 2x2
max-pool between levels, dropout 0.4 after the two deepest levels. Decoder:
upsample x2 + a convolution halving the width, concatenation with the skip,
two conv3x3+ReLU; a final conv3x3 to 3 channels and a sigmoid.

The up-sampling convolution (``up``):

- ``"table6"`` (default): nearest x2, conv3x3, ReLU. Table 6 gives the kernel
  size (3 for every convolution) and lists "Upsample, Conv" without an
  activation; the ReLU is ours (zero parameters). 34,515,011 parameters.
- ``"code"``: the authors' public code: nearest x2, then a 2x2 convolution with
  TensorFlow-style "same" padding (one zero row/column at the bottom/right), no
  ReLU. 31,033,411 parameters (4/9 of the up-convolutions' weights). Their
  checkpoints (``G_state_dict``, ``encoder.block1.0.weight``...) load directly:
  :meth:`UNet.adapt_state_dict` renames the keys (and reorders the decoder's
  concatenation, theirs is [up, skip]).

Other choices where the table is silent: no image residual (the sigmoid output
is the image, as in the paper). Any input size: padded (reflect) to a multiple
of 16.

``residual=True`` (the dual-pixel variant ``unet-dp``): the output is the mean of the
input's 3-channel images (the two views' average, i.e. the combined image) plus the
last convolution (zero-initialised, no sigmoid), so the untrained network is the
identity and training learns only the correction.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from dpdeblur.models.blocks import PaddedModel

__all__ = ["UNet", "unet", "UP_MODES"]

UP_MODES = ("table6", "code")


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(inplace=True),
    )


class UNet(PaddedModel):
    """Input :math:`(B, 3V, H, W)` (V images stacked on channels, ``in_channels = 3V``),
    output :math:`(B, 3, H, W)` (in [0, 1] unless ``residual``)."""

    def __init__(
        self, base: int = 64, depth: int = 5, dropout: float = 0.4, in_channels: int = 3, up: str = "table6",
        residual: bool = False,
    ) -> None:
        super().__init__()
        if up not in UP_MODES:
            raise ValueError(f"unet up must be one of {', '.join(UP_MODES)}, got {up!r}")
        self.up_mode = up
        widths = [base * 2**i for i in range(depth)]
        self.multiple_of = 2 ** (depth - 1)
        self.enc = nn.ModuleList(
            [_double_conv(in_channels if i == 0 else widths[i - 1], w) for i, w in enumerate(widths)]
        )
        self.drop = nn.Dropout(dropout)
        self.n_dropout = min(2, depth)
        k = 3 if up == "table6" else 2
        self.up = nn.ModuleList([nn.Conv2d(widths[i + 1], widths[i], k, padding=k // 2 if k == 3 else 0)
                                 for i in range(depth - 1)])
        self.dec = nn.ModuleList([_double_conv(2 * widths[i], widths[i]) for i in range(depth - 1)])
        self.out = nn.Conv2d(widths[0], 3, 3, padding=1)
        self.residual = bool(residual)
        if self.residual:
            if in_channels % 3:
                raise ValueError(f"unet residual needs 3-channel images stacked on channels, got in_channels={in_channels}")
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)

    def _up(self, i: int, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        if self.up_mode == "table6":
            return F.relu(self.up[i](x))
        return self.up[i](F.pad(x, (0, 1, 0, 1)))  # "same" padding of an even kernel, as the authors' code

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        base = x.unflatten(1, (-1, 3)).mean(dim=1) if self.residual else None
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
            x = self.dec[i](torch.cat([skips[i], self._up(i, x)], dim=1))
        if self.residual:
            return base + self.out(x)
        return torch.sigmoid(self.out(x))

    def adapt_state_dict(self, sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Rename a state dict of the authors' ``VGG_Deblur`` (``encoder.block<k>``,
        ``up<6..9>``, ``block<6..9>``, ``out``) to this module's keys; other dicts pass through.

        Their decoder concatenates [up-sampled, skip], this one [skip, up-sampled]: the
        first convolution of each decoder level gets its input channels swapped.
        """
        if not any(k.startswith("encoder.block1.") for k in sd):
            return sd
        depth = len(self.enc)
        out: dict[str, torch.Tensor] = {}
        for k, v in sd.items():
            if m := re.fullmatch(r"encoder\.block(\d+)\.(\d+)\.(weight|bias)", k):
                k = f"enc.{int(m[1]) - 1}.{m[2]}.{m[3]}"
            elif m := re.fullmatch(r"up(\d+)\.1\.(weight|bias)", k):
                k = f"up.{2 * depth - 1 - int(m[1])}.{m[2]}"
            elif m := re.fullmatch(r"block(\d+)\.(\d+)\.(weight|bias)", k):
                k = f"dec.{2 * depth - 1 - int(m[1])}.{m[2]}.{m[3]}"
                if m[2] == "0" and m[3] == "weight":
                    half = v.shape[1] // 2
                    v = torch.cat([v[:, half:], v[:, :half]], dim=1)
            elif m := re.fullmatch(r"out\.0\.(weight|bias)", k):
                k = f"out.{m[1]}"
            out[k] = v
        return out


def unet(**kwargs) -> UNet:
    """Builder used by the registry."""
    return UNet(**kwargs)
