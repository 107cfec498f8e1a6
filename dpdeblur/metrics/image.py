"""PSNR, SSIM and MAE on float images in [0, 1], without re-quantisation.

Torch functions take :math:`(B, C, H, W)` (or :math:`(C, H, W)`) tensors on any device
and return one value per image, shape :math:`(B,)`. The ``*_np`` wrappers take
:math:`(H, W, C)` or :math:`(H, W)` numpy arrays and return a float.

SSIM windows (``SSIM_WINDOWS``):

- ``"wang"`` (default): Wang et al. 2004, 11x11 Gaussian, sigma 1.5, population
  covariances; equals ``skimage.metrics.structural_similarity(..., gaussian_weights=True,
  sigma=1.5, use_sample_covariance=False, data_range=1)``.
- ``"skimage-default"``: scikit-image's default, 7x7 uniform window with sample
  covariances (N/(N-1)); most published DPDD tables used it.

Both average the SSIM map over the valid region (the border of half a window is
left out, as scikit-image does) and over channels (``channel_axis``).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from dpdeblur.choices import SSIM_WINDOW_SIDE, SSIM_WINDOWS

__all__ = ["SSIM_WINDOWS", "psnr", "ssim", "mae", "compute_metrics", "compute_metrics_np", "psnr_np", "ssim_np", "mae_np",
           "ssim_window_size"]

K1, K2 = 0.01, 0.03


def _bchw(x: torch.Tensor) -> torch.Tensor:
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() != 4:
        raise ValueError(f"expected (B, C, H, W) or (C, H, W), got shape {tuple(x.shape)}")
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """:math:`10 \\log_{10}(R^2 / \\mathrm{MSE})` per image, :math:`(B,)`; ``inf`` when equal."""
    pred, target = _bchw(pred), _bchw(target)
    mse = (pred - target).square().flatten(1).mean(1)
    return 10.0 * torch.log10(data_range**2 / mse)


def mae(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error per image (over pixels and channels), :math:`(B,)`."""
    pred, target = _bchw(pred), _bchw(target)
    return (pred - target).abs().flatten(1).mean(1)


@functools.lru_cache(maxsize=8)
def _window_1d(kind: str) -> tuple[np.ndarray, bool]:
    """1-D separable window and whether covariances use the sample (N-1) normalisation."""
    if kind == "wang":
        r = 5  # int(truncate 3.5 * sigma 1.5 + 0.5), as scipy's gaussian_filter
        x = np.arange(-r, r + 1, dtype=np.float64)
        g = np.exp(-(x**2) / (2 * 1.5**2))
        return g / g.sum(), False
    if kind == "skimage-default":
        return np.full(7, 1 / 7.0), True
    raise ValueError(f"unknown SSIM window {kind!r}; choose one of {', '.join(SSIM_WINDOWS)}")


def ssim_window_size(window: str = "wang") -> int:
    """Side of the SSIM window: the least height and width :func:`ssim` takes (11 for ``wang``, 7 for
    ``skimage-default``), from :data:`dpdeblur.choices.SSIM_WINDOW_SIDE` (checks that need no torch read it)."""
    if window not in SSIM_WINDOW_SIDE:
        raise ValueError(f"unknown SSIM window {window!r}; choose one of {', '.join(SSIM_WINDOWS)}")
    return SSIM_WINDOW_SIDE[window]


def ssim(
    pred: torch.Tensor, target: torch.Tensor, window: str = "wang", data_range: float = 1.0
) -> torch.Tensor:
    """Mean SSIM per image, :math:`(B,)`, averaged over the valid region and channels."""
    pred, target = _bchw(pred), _bchw(target)
    w1, sample_cov = _window_1d(window)
    n = len(w1)
    b, c, h, w = pred.shape
    if h < n or w < n:
        raise ValueError(f"SSIM with window {window!r} needs images of at least {n}x{n}, got {h}x{w}")
    k = torch.as_tensor(w1, dtype=pred.dtype, device=pred.device)
    kh, kw = k.view(1, 1, n, 1).repeat(c, 1, 1, 1), k.view(1, 1, 1, n).repeat(c, 1, 1, 1)

    def filt(x: torch.Tensor) -> torch.Tensor:  # valid, depthwise, separable
        return F.conv2d(F.conv2d(x, kh, groups=c), kw, groups=c)

    mx, my = filt(pred), filt(target)
    vx, vy, cxy = filt(pred * pred) - mx * mx, filt(target * target) - my * my, filt(pred * target) - mx * my
    if sample_cov:
        f = (n * n) / (n * n - 1.0)
        vx, vy, cxy = vx * f, vy * f, cxy * f
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1)


def compute_metrics(
    pred: torch.Tensor, target: torch.Tensor, ssim_window: str = "wang"
) -> dict[str, torch.Tensor]:
    """``{"psnr", "ssim", "mae"}``, each :math:`(B,)`; ``pred`` is clamped to [0, 1] first."""
    pred = _bchw(pred).clamp(0, 1)
    target = _bchw(target)
    return {"psnr": psnr(pred, target), "ssim": ssim(pred, target, ssim_window), "mae": mae(pred, target)}


def _to_tensor(a: np.ndarray) -> torch.Tensor:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3:
        raise ValueError(f"expected (H, W, C) or (H, W), got shape {a.shape}")
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))


def compute_metrics_np(pred: np.ndarray, target: np.ndarray, ssim_window: str = "wang") -> dict[str, float]:
    """:func:`compute_metrics` of two :math:`(H, W, C)` or :math:`(H, W)` arrays, in float64."""
    return {k: float(v[0]) for k, v in compute_metrics(_to_tensor(pred)[None], _to_tensor(target)[None], ssim_window).items()}


def psnr_np(pred: np.ndarray, target: np.ndarray, data_range: float = 1.0) -> float:
    return float(psnr(_to_tensor(pred), _to_tensor(target), data_range)[0])


def ssim_np(pred: np.ndarray, target: np.ndarray, window: str = "wang", data_range: float = 1.0) -> float:
    return float(ssim(_to_tensor(pred), _to_tensor(target), window, data_range)[0])


def mae_np(pred: np.ndarray, target: np.ndarray) -> float:
    return float(mae(_to_tensor(pred), _to_tensor(target))[0])
