"""``split-dp`` library side: dual-pixel files -> left / right / combined 16-bit PNGs.

Layouts ``flat`` and ``dpdd`` (:mod:`dpdeblur.data.layouts`; ``<id>`` = raw file stem, or the
pair's stem without its view suffix): left, right and combined views, a JSON sidecar, an
optional mask and an optional wiggle animation per item.

The JSON sidecar holds :attr:`DualPixelViews.meta`; the mask is 8-bit (255 = A+B saturated).
The wiggle is the usual way to show dual-pixel disparity: an endlessly looping animation that
alternates the left and right views (8-bit sRGB), written with imageio.
"""

from __future__ import annotations

import json
from pathlib import Path

from dpdeblur.choices import WIGGLE_FORMATS
from dpdeblur.data.layouts import DPDD, LONG, get_layout, list_layouts, view_id
from dpdeblur.errors import InputError, UsageError, few
from dpdeblur.io.raw import PAIR_EXTS, RAW_EXTS, check_raw_options, is_pair_file, read_dual_pixel
from dpdeblur.utils.batch import ItemResult, expand_inputs

__all__ = ["LAYOUTS", "SPLITS", "WIGGLE_FORMATS", "item_id", "output_paths", "dual_pixel_inputs", "split_dual_pixel",
           "check_pair_levels",
           "write_wiggle"]

LAYOUTS = tuple(list_layouts("split-dp"))
SPLITS = DPDD.splits


def item_id(path: str | Path) -> str:
    p = Path(path)
    return view_id(p.stem, (LONG,)) if p.suffix.lower() in PAIR_EXTS else p.stem


def output_paths(path: str | Path, outdir: str | Path, layout: str = "flat", split: str = "test",
                 wiggle: str | None = None) -> dict[str, Path]:
    """Where one input's files go: keys ``left``, ``right``, ``combined``, ``meta``, ``mask``
    (+ ``wiggle`` when a wiggle format is given)."""
    if layout not in LAYOUTS:
        raise UsageError(f"layout {layout!r}: choose one of {', '.join(LAYOUTS)}", settings=("layout",))
    if split not in SPLITS:
        raise UsageError(f"split {split!r}: choose one of {', '.join(SPLITS)}", settings=("split",))
    if wiggle is not None and wiggle not in WIGGLE_FORMATS:
        raise UsageError(f"wiggle {wiggle!r}: choose one of {', '.join(WIGGLE_FORMATS)}", settings=("wiggle",))
    i, o = item_id(path), Path(outdir)
    paths = (DPDD.item_paths(o, split, i, wiggle) if layout == DPDD.name
             else get_layout(layout).item_paths(o, i, wiggle))
    return {k: paths[k] for k in ("left", "right", "combined", "meta", "mask", "wiggle") if k in paths}


def write_wiggle(path: str | Path, left, right, frame_ms: int = 200) -> None:
    """Atomically write a looping left/right animation (GIF or WebP, by ``path``'s suffix).

    ``left``/``right``: :math:`(H, W, 3)` sRGB views (float in [0, 1] or integer images).
    """
    import imageio.v3 as iio
    import numpy as np

    from dpdeblur.io.images import from_float, to_float
    from dpdeblur.utils.atomic import atomic_path

    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in WIGGLE_FORMATS:
        raise UsageError(f"{path}: a wiggle is written as {' or '.join(WIGGLE_FORMATS)}")
    frames = np.stack([from_float(to_float(v), 8) for v in (left, right)])
    extra = {"lossless": False, "quality": 90} if fmt == "webp" else {}
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, frames, extension=f".{fmt}", duration=frame_ms, loop=0, **extra)


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
                        black_level: int | None = None, white_level: int | None = None, wiggle: str | None = None) -> None:
    """Usage errors for ``split-dp``'s options, before any file is read (also contradicting levels)."""
    check_raw_options(stored_view, scale, black_level, white_level)
    output_paths("x.dng", ".", layout, split, wiggle)  # layout / split / wiggle


def check_pair_levels(items, black_level: int | None = None, white_level: int | None = None) -> None:
    """Usage error, before any work, when view pairs are among ``items`` and the levels they would be
    read with (a level given alone completes with the pair default, 1024 / 16383) contradict."""
    from dpdeblur.io.raw import PIXEL_BLACK, PIXEL_WHITE

    black = PIXEL_BLACK if black_level is None else black_level
    white = PIXEL_WHITE if white_level is None else white_level
    if white <= black and any(is_pair_file(p) for p in items):
        given = "black_level" if white_level is None else "white_level"
        raise UsageError(f"{given} {black_level if white_level is None else white_level}: view pairs would be read "
                         f"with black level {black} and white level {white}; give black_level and white_level "
                         "together, black below white", settings=("black_level", "white_level"))


def split_dual_pixel(
    path: str | Path,
    outdir: str | Path,
    layout: str = "flat",
    split: str = "test",
    overwrite: bool = False,
    mask: bool = False,
    wiggle: str | None = None,
    **read_options,
) -> ItemResult:
    """Split one file and write its views, sidecar, optional mask and optional
    ``wiggle`` animation (``"gif"`` or ``"webp"``; atomic writes).

    ``read_options`` go to :func:`~dpdeblur.io.raw.read_dual_pixel`. When every
    output exists and ``overwrite`` is False the item is ``skipped``.
    """
    from dpdeblur.io.images import write_image
    from dpdeblur.utils.atomic import atomic_group, atomic_write_text

    paths = output_paths(path, outdir, layout, split, wiggle)
    wanted = ["left", "right", "combined", "meta"] + (["mask"] if mask else []) + (["wiggle"] if wiggle else [])
    if not overwrite and all(paths[k].exists() for k in wanted):
        return ItemResult(str(path), status="skipped", outputs=[str(paths[k]) for k in wanted])
    v = read_dual_pixel(path, **read_options)
    with atomic_group({k: paths[k] for k in wanted}) as tmp:  # all of the item's files, or none
        for k in ("left", "right", "combined"):
            write_image(tmp[k], getattr(v, k), bit_depth=16)
        if mask:
            write_image(tmp["mask"], v.saturation_mask.astype("uint8") * 255, bit_depth=8)
        if wiggle:
            write_wiggle(tmp["wiggle"], v.left, v.right)
        atomic_write_text(tmp["meta"], json.dumps(v.meta, indent=2) + "\n")
    info = {k: v.meta.get(k) for k in ("camera", "saturation", "orientation", "stored_view", "shape")}
    return ItemResult(str(path), outputs=[str(paths[k]) for k in wanted], info=info)
