"""``split-dp`` library side: dual-pixel files -> left / right / combined 16-bit PNGs.

Layouts ``flat`` and ``dpdd`` (:mod:`dpdeblur.data.layouts`; ``<id>`` = raw file stem, or the
pair's stem without its view suffix): left, right and combined views, a JSON sidecar and an
optional mask per item.

The JSON sidecar holds :attr:`DualPixelViews.meta`; the mask is 8-bit (255 = A+B saturated).
"""

from __future__ import annotations

import json
from pathlib import Path

from dpdeblur.data.layouts import DPDD, LONG, get_layout, list_layouts, view_id
from dpdeblur.errors import InputError, UsageError, few
from dpdeblur.io.raw import PAIR_EXTS, RAW_EXTS, is_pair_file, read_dual_pixel
from dpdeblur.utils.batch import ItemResult, expand_inputs

__all__ = ["LAYOUTS", "SPLITS", "item_id", "output_paths", "dual_pixel_inputs", "split_dual_pixel"]

LAYOUTS = tuple(list_layouts("split-dp"))
SPLITS = DPDD.splits


def item_id(path: str | Path) -> str:
    p = Path(path)
    return view_id(p.stem, (LONG,)) if p.suffix.lower() in PAIR_EXTS else p.stem


def output_paths(path: str | Path, outdir: str | Path, layout: str = "flat", split: str = "test") -> dict[str, Path]:
    """Where one input's files go: keys ``left``, ``right``, ``combined``, ``meta``, ``mask``."""
    if layout not in LAYOUTS:
        raise UsageError(f"--layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if split not in SPLITS:
        raise UsageError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    i, o = item_id(path), Path(outdir)
    paths = DPDD.item_paths(o, split, i) if layout == DPDD.name else get_layout(layout).item_paths(o, i)
    return {k: paths[k] for k in ("left", "right", "combined", "meta", "mask")}


def dual_pixel_inputs(inputs, recursive: bool = False) -> list[Path]:
    """Files, folders, globs -> one path per dual-pixel item.

    Raw files are kept; a ``_left``/``_right`` pair counts once (its left file);
    other PNG/PGM files found in folders are ignored; files named explicitly are
    always kept, so that a wrong one is reported rather than dropped.
    """
    explicit = {Path(s).resolve() for s in map(str, inputs) if Path(s).is_file()}
    out, seen = [], set()
    for p in expand_inputs(inputs, RAW_EXTS + PAIR_EXTS, recursive):
        if is_pair_file(p):
            key = (p.parent.resolve(), item_id(p).lower())
            if key in seen:
                continue
            seen.add(key)
        elif p.suffix.lower() not in RAW_EXTS and p.resolve() not in explicit:
            continue
        out.append(p)
    if not out:
        raise InputError(f"{few(map(str, inputs))}: no dual-pixel raw files ({', '.join(RAW_EXTS)}) or "
                         f"<id>_left/_right pairs ({', '.join(PAIR_EXTS)}) found")
    return out


def check_split_options(layout: str = "flat", split: str = "test", stored_view: str = "right", scale: float = 1.0,
                        black_level: int | None = None, white_level: int | None = None) -> None:
    """Usage errors for ``split-dp``'s options, before any file is read (also contradicting levels)."""
    if stored_view not in ("left", "right"):
        raise UsageError(f"--stored-view must be left or right, got {stored_view!r}")
    if not 0.0 < scale <= 1.0:
        raise UsageError(f"--scale must be in (0, 1], got {scale}")
    for name, v in (("--black-level", black_level), ("--white-level", white_level)):
        if v is not None and not 0 <= v <= 65535:
            raise UsageError(f"{name} {v}: must be in 0..65535")
    if black_level is not None and white_level is not None and black_level >= white_level:
        raise UsageError(f"--black-level {black_level} must be below --white-level {white_level}")
    output_paths("x.dng", ".", layout, split)  # --layout / --split


def split_dual_pixel(
    path: str | Path,
    outdir: str | Path,
    layout: str = "flat",
    split: str = "test",
    overwrite: bool = False,
    mask: bool = False,
    **read_options,
) -> ItemResult:
    """Split one file and write its views, sidecar and optional mask (atomic writes).

    ``read_options`` go to :func:`~dpdeblur.io.raw.read_dual_pixel`. When every
    output exists and ``overwrite`` is False the item is ``skipped``.
    """
    from dpdeblur.io.images import write_image
    from dpdeblur.utils.atomic import atomic_write_text

    paths = output_paths(path, outdir, layout, split)
    wanted = ["left", "right", "combined", "meta"] + (["mask"] if mask else [])
    if not overwrite and all(paths[k].exists() for k in wanted):
        return ItemResult(str(path), status="skipped", outputs=[str(paths[k]) for k in wanted])
    v = read_dual_pixel(path, **read_options)
    for k in ("left", "right", "combined"):
        write_image(paths[k], getattr(v, k), bit_depth=16)
    if mask:
        write_image(paths["mask"], v.saturation_mask.astype("uint8") * 255, bit_depth=8)
    atomic_write_text(paths["meta"], json.dumps(v.meta, indent=2) + "\n")
    info = {k: v.meta.get(k) for k in ("camera", "saturation", "orientation", "stored_view", "shape")}
    return ItemResult(str(path), outputs=[str(paths[k]) for k in wanted], info=info)
