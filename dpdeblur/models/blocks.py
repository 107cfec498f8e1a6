"""Building blocks shared by the network families."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["pad_to_multiple", "LayerNorm2d", "PaddedModel", "cached_tensors"]


def cached_tensors(maxsize: int = 32):
    """``functools.lru_cache`` for functions returning constant tensors (index maps,
    filter banks). The tensors are built outside ``inference_mode`` even when first
    asked for inside it, so a later training step can still use them in autograd."""
    import functools

    def wrap(fn):
        @functools.lru_cache(maxsize=maxsize)
        @functools.wraps(fn)
        def cached(*args):
            with torch.inference_mode(False):
                return fn(*args)

        return cached

    return wrap


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad the two last axes at the bottom/right to a multiple of ``multiple``.

    Reflect padding where the image is large enough, replicate otherwise.

    Args:
        x: :math:`(B, C, H, W)`.
        multiple: granularity.

    Returns:
        padded :math:`(B, C, H', W')` and the original ``(H, W)``.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x, (h, w)
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel axis of a :math:`(B, C, H, W)` tensor."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class PaddedModel(nn.Module):
    """Mixin for networks that need input sizes divisible by ``multiple_of``.

    Subclasses implement ``forward_padded``; ``forward`` reflect-pads the input
    to ``self.multiple_of`` and crops every output back to the input size.
    """

    multiple_of: int = 1

    def forward_padded(self, x: torch.Tensor):  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor):
        xp, (h, w) = pad_to_multiple(x, self.multiple_of)
        out = self.forward_padded(xp)
        if isinstance(out, (list, tuple)):
            return type(out)(o[..., :h, :w] for o in out)
        return out[..., :h, :w]
