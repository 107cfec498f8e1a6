"""Data sets for training and evaluation: layouts, checks, patches, cache, sampler.

:mod:`.layouts` defines every layout (folders, splits, view names) and the data-set
registry (``get_layout``, ``list_layouts``); ``find_pairs(dataset, root, split)`` lists the pairs of a split, ``check_fit`` / ``check_readable`` fail before training with the
offending files listed, ``ImageSource`` + ``PatchDataset`` / ``FullImageDataset`` give
batches as dicts (``input``, ``blur``, ``sharp``), ``ResumableSampler`` orders them.
"""

from dpdeblur.data.layouts import DATASETS, get_layout, list_layouts  # torch-free, numpy-free

__all__ = [
    "DATASETS",
    "FullImageDataset",
    "ImageSet",
    "ImageSource",
    "PatchDataset",
    "ResumableSampler",
    "Sample",
    "check_fit",
    "check_readable",
    "find_pairs",
    "get_layout",
    "list_layouts",
]


def __getattr__(name: str):  # the parts that need numpy or torch load on first use
    if name in ("ImageSet", "Sample", "check_fit", "check_readable", "find_pairs"):
        from dpdeblur.data import sets

        return getattr(sets, name)
    if name in ("ImageSource", "PatchDataset", "FullImageDataset"):
        from dpdeblur.data import patches

        return getattr(patches, name)
    if name == "ResumableSampler":
        from dpdeblur.data.sampler import ResumableSampler

        return ResumableSampler
    raise AttributeError(f"module 'dpdeblur.data' has no attribute {name!r}")
