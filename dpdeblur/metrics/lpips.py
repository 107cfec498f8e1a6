"""LPIPS (Zhang et al. 2018, "alex" variant, v0.1) from local weights only, without torchvision.

Distance between images :math:`x, y` in [0, 1]::

    d(x, y) = sum_l mean_hw( w_l . (f_l(x) / |f_l(x)| - f_l(y) / |f_l(y)|)^2 )

with :math:`f_l` the AlexNet ReLU outputs 1..5 (features 1, 4, 7, 9, 11 of torchvision's
``alexnet().features``) of the input mapped to [-1, 1] and scaled by LPIPS' fixed shift /
scale, the norm over channels, and :math:`w_l` the learned 1x1 "lin" weights.

The weights file (``.safetensors`` / ``.pth``) holds both parts; nothing is downloaded:

- backbone: torchvision keys ``features.{0,3,6,8,10}.{weight,bias}`` or the ``lpips``
  package's ``net.slice{1..5}.{0,3,6,8,10}.{weight,bias}``;
- linear layers: ``lin{0..4}.model.1.weight`` (the ``lpips`` package's ``alex.pth``).

E.g. merge ``torchvision``'s AlexNet state dict and ``lpips/weights/v0.1/alex.pth`` into one file.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from dpdeblur.errors import WeightsError

__all__ = ["LPIPS"]

_CONVS = {0: (3, 64, 11, 4, 2), 3: (64, 192, 5, 1, 2), 6: (192, 384, 3, 1, 1), 8: (384, 256, 3, 1, 1), 10: (256, 256, 3, 1, 1)}
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


class LPIPS(nn.Module):
    """LPIPS-alex. ``forward(x, y)``: :math:`(B, 3, H, W)` x 2 in [0, 1] -> :math:`(B,)`."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.ModuleDict({str(i): nn.Conv2d(ci, co, k, s, p) for i, (ci, co, k, s, p) in _CONVS.items()})
        self.lins = nn.ModuleList(nn.Conv2d(co, 1, 1, bias=False) for (_, co, *_) in _CONVS.values())
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))

    def taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The five unit-normalised ReLU feature maps of ``x`` (in [0, 1])."""
        h = ((x * 2 - 1) - self.shift) / self.scale
        out = []
        for i in _CONVS:
            if i in (3, 6):
                h = F.max_pool2d(h, 3, 2)
            h = F.relu(self.features[str(i)](h))
            out.append(h / (h.square().sum(1, keepdim=True).sqrt() + 1e-10))
        return out

    @torch.no_grad()
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        d = 0.0
        for lin, fx, fy in zip(self.lins, self.taps(x), self.taps(y)):
            d = d + lin((fx - fy).square()).mean((1, 2, 3))
        return d

    @classmethod
    def from_file(cls, path: str | Path) -> "LPIPS":
        """Load both parts from one local file (see the module docstring); a missing key fails naming it."""
        from dpdeblur.models.weights import read_state_dict

        sd = read_state_dict(path)
        own: dict[str, torch.Tensor] = {}
        for k, v in sd.items():
            m = re.search(r"(?:^|\.)(?:features|slice\d)\.(\d+)\.(weight|bias)$", k)
            if m and int(m[1]) in _CONVS:
                own[f"features.{m[1]}.{m[2]}"] = v
            m = re.search(r"lins?\.?(\d)\.model\.1\.weight$", k)
            if m:
                own[f"lins.{m[1]}.weight"] = v
        net = cls()
        want = [k for k in net.state_dict() if k not in ("shift", "scale")]
        missing = [k for k in want if k not in own]
        if missing:
            raise WeightsError(
                f"{path}: not LPIPS-alex weights (missing {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}); "
                "the file needs AlexNet features.N.* and lin0..4.model.1.weight tensors")
        try:
            net.load_state_dict({**own, "shift": net.shift, "scale": net.scale})
        except RuntimeError as e:
            raise WeightsError(f"{path}: LPIPS weights of the wrong shape ({str(e).splitlines()[-1].strip()})") from None
        return net.eval()
