"""dpdeblur: dual-pixel defocus and motion deblurring (DMTNet, FCN, JDRL).

Library entry points are imported lazily so that ``import dpdeblur`` (and the
CLI's ``--help``) does not import torch.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "create_model", "list_models", "get_card", "deblur"]


def __getattr__(name: str):
    if name in ("create_model", "list_models", "get_card"):
        from dpdeblur import models

        return getattr(models, name)
    if name == "deblur":
        from dpdeblur.inference.pipeline import deblur

        return deblur
    raise AttributeError(f"module 'dpdeblur' has no attribute {name!r}")
