"""Tiled, memory-bounded inference for any image-to-image network.

The image is reflect-padded to the model's ``multiple_of``, cut into tiles of
one shape (the last start is clamped to the border), the tiles go through the
model ``tile_batch`` at a time, and each output tile is added, times a blending
window, into float32 canvases on the CPU::

    out = sum_k w_k * model(tile_k) / sum_k w_k

Blending windows (per axis, per pair of neighbouring tiles with overlap ``ov``):
the outer quarter of the overlap gets weight 0 (those pixels saw the tile
border), the central half a ramp (``hann``: raised cosine, ``linear``) or a
step (``crop``), so weights of neighbours sum to one and a network whose
receptive-field radius is at most ``ov / 4`` gives exactly the whole-image
result. Image borders are never faded.

Global statistics: modules exposing ``pooled_override`` (DMSSRM's adaptive
scale selection) pool their input globally, so a tile would see tile, not
image, statistics. With ``global_stats`` on, a first pass accumulates each such
module's input mean over the image (tile features weighted by the same blending
windows, so every pixel counts once), then the second pass runs with
``pooled_override`` set to those image-level means.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from dpdeblur.choices import BLENDS

__all__ = [
    "BLENDS",
    "TileSettings",
    "check_tiling",
    "tile_starts",
    "blend_profile",
    "pooled_modules",
    "plan_tiles",
    "tiled_forward",
]

#: ``torch.OutOfMemoryError`` appeared in torch 2.5; ``torch.cuda.OutOfMemoryError`` (its alias) earlier.
_OOM = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError


@dataclass
class TileSettings:
    """How to cut the image. ``tile=0`` runs the whole image at once."""

    tile: int = 512
    overlap: int = 64
    blend: str = "hann"
    tile_batch: int = 1
    global_stats: bool = True
    min_tile: int = 128


#: Smallest tile side accepted (0 = whole image): smaller tiles are all border and very slow.
MIN_TILE = 32


def check_tiling(tile: int | None, overlap: int, blend: str = "hann", tile_batch: int = 1) -> None:
    """The one rule set for ``--tile --overlap --blend --tile-batch`` (deblur, bench speed and
    quality, the Python API): a :class:`~dpdeblur.errors.UsageError` naming the option.
    ``tile=None`` (the model card's default, not known yet) checks the other options."""
    from dpdeblur.errors import UsageError

    if blend not in BLENDS:
        raise UsageError(f"blend {blend!r}: choose one of {', '.join(BLENDS)}", settings=("blend",))
    if tile is not None and tile < 0:
        raise UsageError(f"tile {tile}: must be >= 0 (0 = whole image)", settings=("tile",))
    if tile and tile < MIN_TILE:
        raise UsageError(f"tile {tile}: too small (each tile costs a full pass with its borders); use 0 for the "
                         f"whole image or at least {MIN_TILE}", settings=("tile",))
    if overlap < 0:
        raise UsageError(f"overlap {overlap}: must be >= 0", settings=("overlap",))
    if tile_batch < 1:
        raise UsageError(f"tile_batch {tile_batch}: must be >= 1", settings=("tile_batch",))
    if tile and overlap >= tile:
        raise UsageError(f"overlap {overlap} must be smaller than tile {tile}", settings=("overlap", "tile"))


def _round_up(x: int, m: int) -> int:
    return -(-x // m) * m


def tile_starts(size: int, tile: int, overlap: int, align: int = 1) -> list[int]:
    """Starts of equal tiles covering ``[0, size)``, multiples of ``align`` except the last,
    which is clamped to ``size - tile``."""
    if tile >= size:
        return [0]
    stride = max(align, (tile - overlap) // align * align)
    starts = list(range(0, size - tile, stride))
    starts.append(size - tile)
    return starts


def _ramp(n: int, blend: str) -> torch.Tensor:
    """Rising weights over an overlap of ``n`` pixels: 0 on the outer quarter, ramp or step in the middle."""
    margin = n // 4
    inner = n - 2 * margin
    t = (torch.arange(inner, dtype=torch.float64) + 0.5) / max(inner, 1)
    if blend == "hann":
        mid = torch.sin(t * math.pi / 2) ** 2
    elif blend == "linear":
        mid = t
    elif blend == "crop":
        mid = (t >= 0.5).double()
    else:
        raise ValueError(f"unknown blend {blend!r}; choose one of {', '.join(BLENDS)}")
    return torch.cat([torch.zeros(margin, dtype=torch.float64), mid, torch.ones(margin, dtype=torch.float64)])


def blend_profile(starts: list[int], k: int, tile: int, blend: str) -> torch.Tensor:
    """1-D weights (tile,) of tile ``k``: ramps towards its neighbours, flat at the image border.

    Rising and falling ramps of two neighbours cover the same pixels and sum to one.
    """
    w = torch.ones(tile, dtype=torch.float64)
    if k > 0:
        ov = starts[k - 1] + tile - starts[k]
        w[:ov] *= _ramp(ov, blend)
    if k + 1 < len(starts):
        ov = starts[k] + tile - starts[k + 1]
        w[tile - ov :] *= 1 - _ramp(ov, blend)
    return w.float()


def pooled_modules(model: nn.Module) -> list[nn.Module]:
    """Sub-modules that pool their input globally and accept ``pooled_override``."""
    return [m for m in model.modules() if hasattr(m, "pooled_override")]


def _last(out):
    return out[-1] if isinstance(out, (list, tuple)) else out


def _tile_grid(h: int, w: int, tile: int, overlap: int, mult: int, align: int):
    """Tile shape, starts and the padded size they cover.

    The image is (virtually) padded to a multiple of ``mult``. Starts are multiples
    of ``align`` (the model's ``tile_align``: e.g. DMTNet's attention-window grid),
    and so is the clamped last start: the tile shrinks (by less than ``align``) to
    fit, or, if that would more than halve it, the image is padded further.
    """
    grid = []
    ov = _round_up(overlap, mult)
    for n in (h, w):
        npad = _round_up(n, mult)
        t = min(tile, npad) if tile > 0 else npad
        t = max(mult, t - t % mult)
        a = align if t - ov >= align else mult  # tiles too small for the grid: no alignment
        if t < npad:
            fit = npad - _round_up(npad - t, a)
            if fit >= max(t // 2, ov + a, mult):
                t = fit
            else:
                npad += (-(npad - t)) % a
        grid.append((npad, t, tile_starts(npad, t, ov, a)))
    (hp, th, ys), (wp, tw, xs) = grid
    return th, tw, [(i, j) for i in range(len(ys)) for j in range(len(xs))], ys, xs


def plan_tiles(model: nn.Module, h: int, w: int, tile: int, overlap: int):
    """The tile grid :func:`tiled_forward` uses for ``model`` on an ``h`` x ``w`` image:
    ``(tile_h, tile_w, [(row, col), ...], row_starts, col_starts)``."""
    mult = int(getattr(model, "multiple_of", 1) or 1)
    align = math.lcm(mult, int(getattr(model, "tile_align", 1) or 1))
    return _tile_grid(h, w, tile, overlap, mult, align)


def _crop(x: torch.Tensor, y0: int, x0: int, th: int, tw: int) -> torch.Tensor:
    """``x[..., y0:y0+th, x0:x0+tw]``, reflect-padded where it passes the image border (no full-image copy)."""
    h, w = x.shape[-2:]
    c = x[..., y0 : min(y0 + th, h), x0 : min(x0 + tw, w)]
    ph, pw = th - c.shape[-2], tw - c.shape[-1]
    if ph or pw:
        mode = "reflect" if ph < c.shape[-2] and pw < c.shape[-1] else "replicate"
        c = F.pad(c, (0, pw, 0, ph), mode=mode)
    return c


class _Runner:
    """Moves tiles to the device, runs the model under autocast, returns float32 CPU tiles."""

    def __init__(self, model, device, dtype, channels_last):
        self.model, self.device, self.dtype, self.cl = model, torch.device(device), dtype, channels_last

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        if self.cl:
            x = x.contiguous(memory_format=torch.channels_last)
        auto = self.dtype not in (None, torch.float32)
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=auto):
            y = _last(self.model(x))
        return y.float().cpu()


def _pass(run, xp, th, tw, tiles, ys, xs, blend, batch, on_tile, before=None, tick=None):
    """One sweep over all tiles: ``before(weights)``, run, then ``on_tile(outputs, idx, weights)``
    and ``tick(number of tiles done)``."""
    for b0 in range(0, len(tiles), batch):
        idx = tiles[b0 : b0 + batch]
        crops = torch.cat([_crop(xp, ys[i], xs[j], th, tw) for i, j in idx])
        w = [blend_profile(ys, i, th, blend)[:, None] * blend_profile(xs, j, tw, blend)[None, :] for i, j in idx]
        if before is not None:
            before(w)
        y = run(crops)
        if on_tile is not None:
            on_tile(y, idx, w)
        if tick is not None:
            tick(len(idx))


def _global_stats(model, run, xp, grid, s: TileSettings, tick=None) -> None:
    """Set ``pooled_override`` of every pooling module to the image-level mean of its input.

    Each tile's input to the module is averaged with the tile's blending window
    (resized to the feature resolution), so every image pixel counts once. With
    several pooling modules in a chain, the statistics of a module downstream of
    another are those of the tiles' features (which saw tile statistics upstream);
    one pass is already close (see the README).
    """
    mods = pooled_modules(model)
    for m in mods:
        m.pooled_override = None
    num: dict[int, torch.Tensor] = {}
    den: dict[int, float] = {}
    wmaps: list[torch.Tensor] = []

    def hook(mod, args):
        x = args[0]  # (B, C, h, w)
        wm = F.interpolate(wmaps[0].to(x.device), size=x.shape[-2:], mode="area")  # (B, 1, h, w)
        num[id(mod)] = num.get(id(mod), 0) + (x.float() * wm).sum(dim=(0, 2, 3)).double().cpu()
        den[id(mod)] = den.get(id(mod), 0.0) + float(wm.sum())

    def before(w):
        wmaps[:] = [torch.stack(w)[:, None]]

    handles = [m.register_forward_pre_hook(hook) for m in mods]
    try:
        _pass(run, xp, *grid, s.blend, max(1, s.tile_batch), None, before, tick)
    finally:
        for h in handles:
            h.remove()
    for m in mods:
        m.pooled_override = (num[id(m)] / den[id(m)]).float().view(1, -1, 1, 1)


def tiled_forward(
    model: nn.Module,
    x: torch.Tensor,
    settings: TileSettings | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    channels_last: bool = False,
    warn: Callable[[str], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Run ``model`` over ``x`` tile by tile.

    Args:
        model: maps :math:`(B, C_{in}, h, w) \\to (B, C_{out}, h, w)` (or a list whose last
            item is that); ``model.multiple_of`` (default 1) sets the tile granularity.
        x: :math:`(1, C_{in}, H, W)` float32 on the CPU.
        settings: tile size, overlap, blend, tile batch, global statistics.
        device: where the model runs; canvases stay on the CPU.
        dtype: autocast dtype (None / float32 = full precision).
        warn: called once with a message when CUDA runs out of memory and the tile is halved.
        progress: called as ``progress(done, total)`` after every forward pass (tiles of
            both passes when global statistics run; starts again if the tile is halved).

    Returns:
        :math:`(1, C_{out}, H, W)` float32 on the CPU.
    """
    s = settings or TileSettings()
    if s.blend not in BLENDS:
        raise ValueError(f"unknown blend {s.blend!r}; choose one of {', '.join(BLENDS)}")
    h, w = x.shape[-2:]
    run = _Runner(model, device, dtype, channels_last)
    tile, warned = s.tile, False
    mods = pooled_modules(model)
    while True:
        grid = plan_tiles(model, h, w, tile, s.overlap)
        th, tw, tiles, ys, xs = grid
        stats = bool(mods and s.global_stats and len(tiles) > 1)
        total, done = len(tiles) * (2 if stats else 1), [0]

        def tick(n: int) -> None:
            done[0] += n
            if progress is not None:
                progress(done[0], total)

        try:
            with torch.inference_mode():
                if stats:
                    _global_stats(model, run, x, grid, s, tick)
                out = weight = None

                def on_tile(y, idx, wts):
                    nonlocal out, weight
                    if out is None:  # normal (not inference) tensors: callers may edit the result
                        with torch.inference_mode(False):
                            out = torch.zeros(1, y.shape[1], h, w)
                            weight = torch.zeros(1, 1, h, w)
                    for (i, j), yk, wk in zip(idx, y, wts):
                        y0, x0 = ys[i], xs[j]
                        ch, cw = min(th, h - y0), min(tw, w - x0)
                        out[0, :, y0 : y0 + ch, x0 : x0 + cw].add_(yk[:, :ch, :cw] * wk[:ch, :cw])
                        weight[0, 0, y0 : y0 + ch, x0 : x0 + cw].add_(wk[:ch, :cw])

                _pass(run, x, *grid, s.blend, max(1, s.tile_batch), on_tile, tick=tick)
            break
        except _OOM:
            if torch.device(device).type == "cuda":
                torch.cuda.empty_cache()
            cur = max(th, tw)
            if cur // 2 < s.min_tile:
                raise
            tile = cur // 2
            if not warned:
                msg = f"out of GPU memory; tile reduced to {tile} (pass a smaller --tile or --tile-batch)"
                (warn or (lambda m: warnings.warn(m, RuntimeWarning, stacklevel=2)))(msg)
                warned = True
        finally:
            for m in mods:
                m.pooled_override = None
    return out.div_(weight.clamp_min_(1e-12))
