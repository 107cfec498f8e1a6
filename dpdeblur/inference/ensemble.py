"""Self-ensemble (test-time augmentation): the model run on flipped copies of its input,
the outputs flipped back and averaged (as in EDSR, arXiv:1707.02921, and the restoration
models after it). Four variants: as is, upside down, mirrored, both.

Mirroring a dual-pixel photo mirrors the aperture too: the left half-aperture's view of the
mirrored scene is the mirrored *right* view. So a horizontal flip also swaps the views, as
the training augmentation does (:mod:`dpdeblur.data.patches`), and every variant is a
physically valid dual-pixel input. No transposes: they would turn the views' horizontal
disparity vertical, which no dual-pixel sensor produces.

The flips act on the whole image (each variant is tiled on its own), so models with image-level
statistics (DMSSRM's scale selection) see each variant's own statistics.
"""

from __future__ import annotations

from typing import Callable

import torch

__all__ = ["FLIPS", "flip_input", "flip_output", "self_ensemble"]

#: ``(mirror, upside_down)`` of each variant; the first is the input as is.
FLIPS: tuple[tuple[bool, bool], ...] = ((False, False), (False, True), (True, False), (True, True))


def flip_input(x: torch.Tensor, mirror: bool, upside_down: bool, views: int = 1) -> torch.Tensor:
    """Flip a model input :math:`(B, 3V, H, W)`; ``mirror`` also reverses the order of the
    ``views`` stacked views (for two views: swaps left and right)."""
    if mirror:
        if views > 1:
            x = x.unflatten(1, (views, -1)).flip(1).flatten(1, 2)
        x = x.flip(-1)
    if upside_down:
        x = x.flip(-2)
    return x


def flip_output(y: torch.Tensor, mirror: bool, upside_down: bool) -> torch.Tensor:
    """Undo :func:`flip_input` on an output :math:`(B, C, H, W)` (one image: no views to swap)."""
    dims = [d for d, on in ((-1, mirror), (-2, upside_down)) if on]
    return y.flip(dims) if dims else y


def self_ensemble(forward: Callable[[torch.Tensor, int], torch.Tensor], x: torch.Tensor, views: int = 1) -> torch.Tensor:
    """Mean of ``flip_output(forward(flip_input(x)))`` over :data:`FLIPS`.

    Args:
        forward: ``forward(x_k, k)`` runs the model on variant ``k`` (``k`` lets callers
            report progress), :math:`(B, 3V, H, W) \\to (B, C, H, W)`.
        x: :math:`(B, 3V, H, W)`.
        views: number of stacked views (2 for dual-pixel models, 1 for single-image ones).

    Returns:
        :math:`(B, C, H, W)`, the average of the four variants.
    """
    out = None
    for k, (mirror, upside_down) in enumerate(FLIPS):
        y = flip_output(forward(flip_input(x, mirror, upside_down, views), k), mirror, upside_down)
        out = y.clone() if out is None else out.add_(y)
    return out.div_(len(FLIPS))
