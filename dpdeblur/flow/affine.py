"""Global (affine) alignment of a reference onto an image: ECC on smoothed images.

A dense optical flow between a sharp reference and a blurry or deblurred image is free
to "explain" blur and texture differences with spurious vectors; on the Pixel 4
captures, DIS flow between an output and its focus-stacked reference reached 50-100 px
at the 99th percentile although the true misalignment is a 1-3 px shift plus a
~0.5% scale difference. An affine transform has six parameters: it can undo such a
misalignment and cannot sharpen or blur anything. It is estimated by the enhanced
correlation coefficient (Evangelidis & Psarakis, "Parametric Image Alignment Using
Enhanced Correlation Coefficient Maximization", IEEE TPAMI 2008), which is invariant
to gain and offset, as implemented by OpenCV.
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["AffineFit", "estimate_affine", "warp_affine", "align_affine"]


class AffineFit:
    """An estimated transform: ``matrix`` (2, 3) maps coordinates of the fixed image to
    the moving one (``x_moving = A @ [x, y, 1]``); ``cc`` the correlation reached;
    ``converged`` False when ECC failed and the identity is returned."""

    def __init__(self, matrix: np.ndarray, cc: float, converged: bool) -> None:
        self.matrix, self.cc, self.converged = matrix, cc, converged

    def displacement(self, x: float, y: float) -> tuple[float, float]:
        """(dx, dy) in pixels of the point (x, y) of the fixed image."""
        u, v = self.matrix @ np.array([x, y, 1.0])
        return float(u - x), float(v - y)

    def __repr__(self) -> str:
        return f"AffineFit(matrix={np.round(self.matrix, 4).tolist()}, cc={self.cc:.4f}, converged={self.converged})"


def _smooth(a: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    a = np.ascontiguousarray(a, np.float32)
    return cv2.GaussianBlur(a, (0, 0), sigma, borderType=cv2.BORDER_REFLECT) if sigma > 0 else a


def estimate_affine(fixed: np.ndarray, moving: np.ndarray, sigma: float = 2.0, iterations: int = 200,
                    eps: float = 1e-6) -> AffineFit:
    """Affine transform taking ``fixed``'s grid into ``moving`` (both :math:`(H, W)`, any scale).

    Both images are Gaussian-smoothed (``sigma`` px) first so that sharpness differences do
    not steer the fit. Falls back to a translation, then to the identity (``converged``
    False, with a warning) when ECC does not converge.
    """
    import cv2

    if fixed.shape != moving.shape or fixed.ndim != 2:
        raise ValueError(f"estimate_affine needs two (H, W) images of one size, got {fixed.shape} and {moving.shape}")
    a, b = _smooth(fixed, sigma), _smooth(moving, sigma)
    crit = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, iterations, eps)
    for mode in (cv2.MOTION_AFFINE, cv2.MOTION_TRANSLATION):
        try:
            cc, m = cv2.findTransformECC(a, b, np.eye(2, 3, dtype=np.float32), mode, crit, None, 1)
        except cv2.error:
            continue
        if np.all(np.isfinite(m)):
            return AffineFit(m.astype(np.float64), float(cc), True)
    warnings.warn("affine alignment did not converge; the reference is left unaligned", RuntimeWarning, stacklevel=2)
    return AffineFit(np.eye(2, 3), float("nan"), False)


def warp_affine(moving: np.ndarray, fit: AffineFit | np.ndarray) -> np.ndarray:
    """``moving`` (:math:`(H, W)` or :math:`(H, W, C)`) resampled on the fixed grid
    (bicubic, reflected borders)."""
    import cv2

    m = fit.matrix if isinstance(fit, AffineFit) else np.asarray(fit)
    h, w = moving.shape[:2]
    flags = cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP  # bilinear would low-pass the sharp reference
    return cv2.warpAffine(np.ascontiguousarray(moving), m.astype(np.float64), (w, h), flags=flags,
                          borderMode=cv2.BORDER_REFLECT)


def align_affine(fixed: np.ndarray, moving: np.ndarray, sigma: float = 2.0) -> tuple[np.ndarray, AffineFit]:
    """``moving`` warped onto ``fixed`` by :func:`estimate_affine`; returns (warped, fit)."""
    fit = estimate_affine(fixed, moving, sigma)
    return warp_affine(moving, fit), fit
