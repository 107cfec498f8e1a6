"""Tiled vs whole-image output for every registered model on a natural 768x512 image.

    python -m dpdeblur.bench.tiling [--models dmtnet-t,dmtnet-s] [--tile 256] [--overlap 64]

Models run at their real configuration with their bundled weights when present,
random (seeded) weights otherwise. Dual-pixel views are made from the image by a
+-2 px horizontal shift. PSNR (dB, peak 1) of the tiled output against the
whole-image output, with the global-statistics remedy off and on.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def natural_image(h: int = 512, w: int = 768) -> np.ndarray:
    """skimage's astronaut/coffee resized to (h, w, 3) float32; a procedural texture without skimage."""
    try:
        import cv2
        from skimage import data

        a = np.concatenate([data.astronaut(), data.coffee()[:512, :256]], axis=1)
        return cv2.resize(a, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    except Exception:  # noqa: BLE001 - fall back to a texture
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        r = np.random.default_rng(0)
        img = sum(np.sin(x * r.uniform(0.01, 0.2) + y * r.uniform(0.01, 0.2) + r.uniform(0, 6)) for _ in range(12))
        img = (img - img.min()) / (img.max() - img.min())
        return np.stack([img, img**1.5, np.sqrt(img)], -1).astype(np.float32)


def model_input(card, img: np.ndarray) -> torch.Tensor:
    """(1, 3V, H, W): views in the card's order (right = shifted left by 2 px), or the image."""
    t = torch.from_numpy(img).permute(2, 0, 1)[None]
    if card.layout != "dp":
        return t
    views = {"left": torch.roll(t, 2, dims=-1), "right": torch.roll(t, -2, dims=-1)}
    return torch.cat([views[v] for v in card.views], dim=1)


def damp_residuals(model, factor: float) -> None:
    """Multiply the last conv of every residual ``body`` (``x + body(x)``) by ``factor``."""
    from torch import nn

    with torch.no_grad():
        for m in model.modules():
            body = getattr(m, "body", None)
            if isinstance(body, nn.Sequential) and isinstance(body[-1], nn.Conv2d):
                body[-1].weight.mul_(factor)
                body[-1].bias.mul_(factor)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.clamp(0, 1) - b.clamp(0, 1)) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def _selection_outputs(model):
    """Forward hooks collecting, per pooling module, its outputs (DMSSRM: the scale weights alpha)."""
    from dpdeblur.inference.tiling import pooled_modules

    seen: dict[int, list[torch.Tensor]] = {}

    def hook(mod, args, out):
        seen.setdefault(id(mod), []).extend(out.detach().flatten(1).float())

    return seen, [m.register_forward_hook(hook) for m in pooled_modules(model)]


def _alpha_dev(seen, ref, n_tiles) -> float:
    """Max |alpha_tile - alpha_image| over the last ``n_tiles`` outputs (the final pass) of every module."""
    devs = [float((a - ref[k][0]).abs().max()) for k in ref for a in seen.get(k, [])[-n_tiles:]]
    return max(devs) if devs else float("nan")


def main(argv=None) -> None:
    from dpdeblur.inference.tiling import TileSettings, pooled_modules, tile_starts, tiled_forward
    from dpdeblur.models import create_model, get_card, list_models, resolve_weights

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(list_models()))
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--overlap", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--damp", type=float, default=1.0,
                    help="scale the last conv of every residual branch (random weights only): a proxy for "
                         "trained restoration nets, whose residual branches are small")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    img = natural_image()
    head = ("model", "weights", "whole s", "tiled s", "PSNR off", "PSNR on", "alpha off", "alpha on")
    print("{:10s} {:8s} {:>8s} {:>8s} {:>9s} {:>8s} {:>9s} {:>8s}".format(*head), flush=True)
    print("(PSNR of tiled vs whole-image output, dB; alpha = max |tile - image| of the pooled selection weights;"
          " off/on = global statistics remedy)", flush=True)
    for name in args.models.split(","):
        card = get_card(name)
        torch.manual_seed(0)
        w = resolve_weights(card)
        model = create_model(name, weights=w).eval()
        if args.damp != 1.0 and w is None:
            damp_residuals(model, args.damp)
        x = model_input(card, img)
        seen, hooks = _selection_outputs(model)
        t0 = time.perf_counter()
        whole = tiled_forward(model, x, TileSettings(tile=0))
        t_whole = time.perf_counter() - t0
        ref = {k: list(v) for k, v in seen.items()}
        th = min(args.tile, x.shape[-2]); tw = min(args.tile, x.shape[-1])
        n_tiles = len(tile_starts(x.shape[-2], th, args.overlap)) * len(tile_starts(x.shape[-1], tw, args.overlap))
        res = {}
        for key, kw in [("off", dict(global_stats=False)), ("on", {})]:
            if key != "off" and not pooled_modules(model):
                res[key] = res["off"]
                continue
            seen.clear()
            t0 = time.perf_counter()
            out = tiled_forward(model, x, TileSettings(tile=args.tile, overlap=args.overlap, **kw))
            dt = time.perf_counter() - t0
            res[key] = (out, dt, _alpha_dev(seen, ref, n_tiles))
        for h in hooks:
            h.remove()
        print("{:10s} {:8s} {:8.1f} {:8.1f} {:9.2f} {:8.2f} {:9.4f} {:8.4f}".format(
            name, "bundled" if w else ("random" if args.damp == 1 else f"rand*{args.damp:g}"), t_whole, res["off"][1], psnr(res["off"][0], whole),
            psnr(res["on"][0], whole), res["off"][2], res["on"][2]), flush=True)


if __name__ == "__main__":
    main()
