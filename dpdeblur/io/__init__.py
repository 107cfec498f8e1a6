"""Image and raw file input/output.

Raw dual-pixel reading (``read_dual_pixel``) imports rawpy lazily.
"""

from dpdeblur.io.images import IMAGE_EXTS, Image, read_image, write_image

__all__ = ["IMAGE_EXTS", "Image", "read_image", "write_image", "read_dual_pixel", "DualPixelViews", "RAW_EXTS"]


def __getattr__(name: str):
    if name in ("read_dual_pixel", "DualPixelViews", "RAW_EXTS"):
        from dpdeblur.io import raw

        return getattr(raw, name)
    raise AttributeError(f"module 'dpdeblur.io' has no attribute {name!r}")
