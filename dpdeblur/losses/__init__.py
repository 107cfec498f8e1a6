"""Training losses. Pixel losses here; family-specific losses in their own modules."""

from dpdeblur.losses.pixel import CharbonnierLoss, charbonnier, get_pixel_loss

__all__ = ["CharbonnierLoss", "charbonnier", "get_pixel_loss"]
