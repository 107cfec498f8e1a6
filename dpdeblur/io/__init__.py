"""Image and raw file input/output."""

from dpdeblur.io.images import IMAGE_EXTS, Image, read_image, write_image

__all__ = ["IMAGE_EXTS", "Image", "read_image", "write_image"]
