"""Inference: tiled, memory-bounded engine (model-agnostic) and the photo pipeline.

Importing this package does not import torch; the submodules do.
"""

__all__ = ["tiled_forward", "TileSettings", "deblur"]


def __getattr__(name: str):
    if name in ("tiled_forward", "TileSettings"):
        from dpdeblur.inference import tiling

        return getattr(tiling, name)
    if name == "deblur":
        from dpdeblur.inference.pipeline import deblur

        return deblur
    raise AttributeError(f"module 'dpdeblur.inference' has no attribute {name!r}")
