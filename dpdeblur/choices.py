"""The names of the library's finite choices, in one torch-free, numpy-free module.

Each library module that checks one of these imports its tuple from here (so there is one
definition), and the CLI builds ``--help`` and shell completion from it without importing
torch. Choices that belong to a registry (models, data-set layouts, criteria) stay with their
registry.
"""

from __future__ import annotations

__all__ = [
    "BLENDS", "PRECISIONS", "DEVICES", "SSIM_WINDOWS", "WARMUP_MODES", "MASK_NORMS", "SCHEDULES",
    "PIXEL_LOSSES", "DIS_PRESETS", "VIEWS", "TONES", "PSF_KINDS", "DEPTH_KINDS", "OUTPUT_EXTS", "EXT_ALIASES",
    "BIT_DEPTHS", "WIGGLE_FORMATS",
]

#: Tile blending windows (:mod:`dpdeblur.inference.tiling`).
BLENDS = ("hann", "linear", "crop")
#: Inference / benchmark precisions (:mod:`dpdeblur.inference.device`).
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: Device kinds; ``cuda:N`` picks one GPU (:func:`dpdeblur.inference.device.resolve_device`).
DEVICES = ("auto", "cpu", "cuda", "mps")
#: SSIM windows (:mod:`dpdeblur.metrics.image`): Wang et al. 11x11 Gaussian, scikit-image's 7x7 uniform.
SSIM_WINDOWS = ("wang", "skimage-default")
#: The side of each SSIM window: the least height and width SSIM measures.
SSIM_WINDOW_SIDE = {"wang": 11, "skimage-default": 7}
#: JDRL warm-up: the paper's whole loss, or the authors' script (:mod:`dpdeblur.losses.jdrl`).
WARMUP_MODES = ("paper", "code")
#: What a masked Charbonnier mean divides by (:mod:`dpdeblur.losses.pixel`).
MASK_NORMS = ("all", "kept")
#: Learning-rate schedules (:mod:`dpdeblur.train.config`).
SCHEDULES = ("cosine", "step", "constant")
#: Pixel criteria every family accepts (:mod:`dpdeblur.losses.criteria` registers them).
PIXEL_LOSSES = ("charbonnier", "l1", "mse")
#: OpenCV DIS optical-flow presets (:class:`dpdeblur.flow.estimators.DISFlow`).
DIS_PRESETS = ("ultrafast", "fast", "medium")
#: The two dual-pixel views (also which one a raw file's second frame holds, ``stored_view``).
VIEWS = ("left", "right")
#: ``synth``: the tone curve of the written images, the PSF model without a bank, what depth maps hold.
TONES = ("mixed", "srgb", "gamma", "none")
PSF_KINDS = ("parametric", "disc")
DEPTH_KINDS = ("depth", "disparity")
#: ``deblur``: output formats (``auto``: as the input; raw files -> 16-bit TIFF), their other spellings,
#: output bit depths (``auto``: as the input; JPEG is always 8).
OUTPUT_EXTS = ("auto", "png", "tif", "jpg")
EXT_ALIASES = {"jpeg": "jpg", "tiff": "tif"}
BIT_DEPTHS = ("auto", "8", "16")
#: ``split-dp --wiggle``: animation formats of the left/right wiggle (:mod:`dpdeblur.io.dpsplit`).
WIGGLE_FORMATS = ("gif", "webp")
