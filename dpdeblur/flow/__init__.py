"""Optical flow: estimators (OpenCV DIS, learned), warping, calibration masks, alignment
(dense, and global affine by ECC)."""

from dpdeblur.flow.affine import AffineFit, align_affine, estimate_affine, warp_affine
from dpdeblur.flow.estimators import DISFlow, FlowEstimator, TorchFlowEstimator, gaussian_blur, get_estimator, register_estimator
from dpdeblur.flow.warp import calibration_mask, inside_mask, invert_flow, warp

__all__ = [
    "FlowEstimator", "DISFlow", "TorchFlowEstimator", "get_estimator", "register_estimator",
    "gaussian_blur", "warp", "calibration_mask", "inside_mask", "invert_flow",
    "AffineFit", "estimate_affine", "warp_affine", "align_affine",
]
