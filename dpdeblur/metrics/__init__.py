"""Image quality metrics: PSNR, SSIM, MAE on [0, 1] images (torch, any device; numpy wrappers)."""

from dpdeblur.metrics.image import (
    SSIM_WINDOWS,
    compute_metrics,
    compute_metrics_np,
    mae,
    mae_np,
    psnr,
    psnr_np,
    ssim,
    ssim_np,
    ssim_window_size,
)

__all__ = ["SSIM_WINDOWS", "compute_metrics", "compute_metrics_np", "mae", "mae_np", "psnr", "psnr_np", "ssim", "ssim_np", "ssim_window_size"]
