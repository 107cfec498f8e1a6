"""Training losses. Pixel losses and the criterion factory here; family-specific losses in their own modules."""

from dpdeblur.losses.criteria import PixelCriterion, build_criterion, final_image, register_criterion
from dpdeblur.losses.pixel import CharbonnierLoss, charbonnier, get_pixel_loss

__all__ = [
    "CharbonnierLoss",
    "PixelCriterion",
    "build_criterion",
    "charbonnier",
    "final_image",
    "get_pixel_loss",
    "register_criterion",
]
