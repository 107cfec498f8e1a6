"""Optical flow estimators behind one interface.

``FlowEstimator.__call__(ref, mov)`` returns the flow on ``ref``'s grid pointing
into ``mov`` (see :mod:`dpdeblur.flow.warp` for the convention), without gradients,
on the device of ``ref``. The OpenCV DIS estimator ("Fast Optical Flow using Dense
Inverse Search", Kroeger et al., arXiv:1603.03590) runs on the CPU (measured here:
~15 ms at 512x512, end-point error ~0.1 px on small zooms and shifts).
Learned estimators plug in with :class:`TorchFlowEstimator` (any module mapping
``(ref, mov) -> flow`` in this convention, e.g. a PWC-Net/RAFT wrapper with the
user's weights) and :func:`register_estimator`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from dpdeblur.choices import DIS_PRESETS

__all__ = ["FlowEstimator", "DISFlow", "TorchFlowEstimator", "gaussian_blur", "register_estimator", "get_estimator", "ESTIMATORS"]


class FlowEstimator:
    """Base class. Subclasses implement :meth:`estimate` (batched tensors) or
    :meth:`estimate_np` (one pair of float32 (H, W, 3) arrays in [0, 1]).

    ``smooth_ref`` / ``smooth_mov``: Gaussian sigma (pixels) applied to that image
    before matching; blur the sharp image when matching it to a blurry one.
    """

    name = "base"

    def estimate_np(self, ref: np.ndarray, mov: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def estimate(self, ref: torch.Tensor, mov: torch.Tensor) -> torch.Tensor:
        """:math:`(B, 3, H, W)` x 2 -> :math:`(B, 2, H, W)`; default: per image via numpy."""
        r = ref.detach().float().permute(0, 2, 3, 1).cpu().numpy()
        m = mov.detach().float().permute(0, 2, 3, 1).cpu().numpy()
        flows = [self.estimate_np(a, b) for a, b in zip(r, m)]
        return torch.from_numpy(np.stack(flows)).permute(0, 3, 1, 2).to(ref.device)

    @torch.no_grad()
    def __call__(self, ref: torch.Tensor, mov: torch.Tensor, smooth_ref: float = 0.0, smooth_mov: float = 0.0) -> torch.Tensor:
        if ref.shape != mov.shape or ref.dim() != 4:
            raise ValueError(f"flow needs two (B, C, H, W) tensors of one shape, got {tuple(ref.shape)} and {tuple(mov.shape)}")
        ref, mov = gaussian_blur(ref.detach(), smooth_ref), gaussian_blur(mov.detach(), smooth_mov)
        return self.estimate(ref, mov).to(ref.dtype)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of :math:`(B, C, H, W)` (replicate borders); sigma 0 = identity."""
    if sigma <= 0:
        return x
    r = max(1, int(3 * sigma + 0.5))
    t = torch.arange(-r, r + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    x = torch.nn.functional.pad(x, (r, r, r, r), mode="replicate")
    x = torch.nn.functional.conv2d(x, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return torch.nn.functional.conv2d(x, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


class DISFlow(FlowEstimator):
    """OpenCV Dense Inverse Search on the luma (8-bit), CPU.

    Args:
        preset: ``"ultrafast" | "fast" | "medium"`` (OpenCV presets).
    """

    name = "dis"
    PRESETS = DIS_PRESETS

    def __init__(self, preset: str = "medium") -> None:
        import cv2

        preset = preset.lower()
        if preset not in self.PRESETS:
            from dpdeblur.errors import UsageError

            raise UsageError(f"preset {preset!r}: unknown DIS preset; choose {', '.join(self.PRESETS)}", settings=("preset",))
        self.preset = preset
        code = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}[preset]
        self._dis = cv2.DISOpticalFlow_create(code)

    @staticmethod
    def _gray8(img: np.ndarray) -> np.ndarray:
        img = np.asarray(img, dtype=np.float32)
        if img.ndim == 3:
            img = img[..., 0] * 0.299 + img[..., 1] * 0.587 + img[..., 2] * 0.114
        return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)

    def estimate_np(self, ref: np.ndarray, mov: np.ndarray) -> np.ndarray:
        """Two (H, W, 3) or (H, W) float arrays in [0, 1] -> (H, W, 2) float32 flow."""
        return self._dis.calc(self._gray8(ref), self._gray8(mov), None).astype(np.float32)


class TorchFlowEstimator(FlowEstimator):
    """Wraps a learned flow network ``module(ref, mov) -> (B, 2, H, W)`` (same
    convention), run on the inputs' device in eval mode without gradients."""

    name = "torch"

    def __init__(self, module: nn.Module) -> None:
        self.module = module.eval()

    def estimate(self, ref: torch.Tensor, mov: torch.Tensor) -> torch.Tensor:
        return self.module.to(ref.device)(ref, mov)


ESTIMATORS: dict[str, Callable[..., FlowEstimator]] = {"dis": DISFlow}


def register_estimator(name: str, factory: Callable[..., FlowEstimator]) -> None:
    """Make ``get_estimator(name, **kw)`` build ``factory(**kw)`` (e.g. a learned
    estimator that loads user weights)."""
    ESTIMATORS[name.lower()] = factory


def get_estimator(name: str = "dis", **kwargs) -> FlowEstimator:
    """``get_estimator("dis", preset="medium")``; names: :data:`ESTIMATORS`."""
    try:
        factory = ESTIMATORS[name.lower()]
    except KeyError:
        from dpdeblur.errors import UsageError

        raise UsageError(f"unknown flow estimator {name!r}; known: {', '.join(ESTIMATORS)}") from None
    return factory(**kwargs)
