"""Photo deblurring pipeline: inputs -> model -> files (what ``dpdeblur deblur`` runs).

Three steps, each one place in this module:

1. :func:`collect_items` turns command-line inputs (files, folders, globs,
   ``--left/--right``, DPDD-layout folders) into :class:`InputItem` s: one
   image, one view pair, or one raw dual-pixel file each;
2. :func:`load_item` turns an item into a :class:`Loaded` (views or image, bit
   depth, alpha, EXIF, ICC, metadata); a new input kind is a branch here;
3. :class:`Deblurrer` runs the model tile by tile on the CPU/GPU and
   :func:`deblur_files` writes ``{stem}{suffix}.{ext}`` atomically, batch-style.
"""

from __future__ import annotations

import dataclasses
import glob
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from dpdeblur.choices import BIT_DEPTHS, EXT_ALIASES, OUTPUT_EXTS
from dpdeblur.data.layouts import DPDD, SHORT, match_view, view_id, view_stem
from dpdeblur.errors import InputError, UsageError, WeightsError
from dpdeblur.io.images import IMAGE_EXTS, format_of, read_image, to_float, write_image

__all__ = [
    "RAW_EXTS",
    "InputItem",
    "Loaded",
    "collect_items",
    "load_item",
    "output_pixels",
    "require_weights",
    "load_model",
    "Deblurrer",
    "output_path",
    "check_output_options",
    "check_deblur_options",
    "plan_outputs",
    "deblur_files",
    "deblur",
]

from dpdeblur.io.raw import RAW_EXTS, STORED_VIEW, is_sensor_pair


#: The folder of a data-set root that holds results written without an output folder.
DATASET_RESULTS = "deblurred"


@dataclass
class InputItem:
    """One unit of work. ``kind``: ``image`` (one file), ``pair`` (left, right), ``raw`` (one raw file).

    ``error`` marks an input known to be bad before reading (unpaired view...):
    it is reported as failed and the batch goes on.
    """

    name: str
    stem: str
    kind: str
    paths: tuple[Path, ...]
    error: str | None = None
    #: items of a data-set root (DPDD layout): its folder for results without an output folder
    #: (``<root>/deblurred``) and the split's subfolder (also under an output folder), so results
    #: never land among the data set's images and equal ids of two splits do not collide
    out_base: Path | None = None
    out_sub: str = ""


@dataclass
class Loaded:
    """Decoded item: ``views`` (name -> (H, W, 3) float32) for dual-pixel models, else ``image``."""

    image: np.ndarray | None = None
    views: dict[str, np.ndarray] | None = None
    bit_depth: int = 8
    alpha: np.ndarray | None = None
    exif: bytes | None = None
    icc: bytes | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    #: the input held one colour channel (gray files, monochrome raw view pairs): the
    #: result is written as one channel too (see :func:`output_pixels`)
    gray: bool = False
    #: EXIF orientation still to apply to the result: raw views stay in sensor orientation
    #: (disparity horizontal) through the network and are turned upright afterwards.
    pending_orientation: int = 1


# ----------------------------------------------------------------------------- inputs


def _view_id(stem: str) -> str:
    """``IMG_1_L`` / ``IMG_1_left`` -> ``IMG_1`` (a view's id); other stems unchanged."""
    return view_id(stem)


def _pair_files(files: Sequence[Path], dual_pixel: bool) -> list[InputItem]:
    """Files -> items. View files pair by id in one folder (for dual-pixel models), named as
    :func:`dpdeblur.data.layouts.match_view` reads them, like ``train``: ``<id>_L`` + ``<id>_R``
    or ``<id>_left`` + ``<id>_right``. Raw files, and raw sensor pairs (one-channel 16-bit
    ``<id>_left/_right``, :func:`dpdeblur.io.raw.is_sensor_pair`), are one raw item each."""
    items: list[InputItem] = []
    views: dict[tuple[Path, str], dict[str, Path]] = {}
    styles: dict[tuple[Path, str], tuple[str, str]] = {}  # how the first view of an id was named
    sensor: set[tuple[Path, str]] = set()
    for f in files:
        m = match_view(f.stem)
        if f.suffix.lower() in RAW_EXTS or is_sensor_pair(f):
            if m is not None:  # either file of a sensor pair stands for the pair
                if (f.parent, m.id.lower()) in sensor:
                    continue
                sensor.add((f.parent, m.id.lower()))
            items.append(InputItem(str(f), m.id if m else f.stem, "raw", (f,)))
        elif dual_pixel and m:
            views.setdefault((f.parent, m.id), {})[m.side] = f
            styles.setdefault((f.parent, m.id), (m.style, m.suffix))
        elif dual_pixel:
            items.append(InputItem(str(f), f.stem, "image", (f,), error=(
                f"{f}: a dual-pixel model needs two views: name them <id>_L/<id>_R or <id>_left/<id>_right, "
                "give the left and right views as a pair, or give a raw dual-pixel file")))
        else:
            items.append(InputItem(str(f), f.stem, "image", (f,)))
    for (parent, id_), v in views.items():
        style, like = styles[(parent, id_)]
        name = str(parent / f"{id_}_{'[LR]' if style == SHORT else '[left|right]'}")
        for miss in {"left", "right"} - set(v):  # a view given alone: its twin beside it on disk
            twin = [t for t in sorted(parent.glob(f"{glob.escape(id_)}_*")) if t.suffix.lower() in IMAGE_EXTS
                    and (m := match_view(t.stem)) and m.id == id_ and m.side == miss]
            if twin:
                v[miss] = twin[0]
        if "left" in v and "right" in v:
            items.append(InputItem(name, id_, "pair", (v["left"], v["right"])))
        else:
            have, miss = ("left", "right") if "left" in v else ("right", "left")
            items.append(InputItem(str(v[have]), id_, "pair", (v[have],), error=(
                f"{v[have]}: no matching {view_stem(id_, miss, style, like=like)}.* beside it; add the other view "
                "or give the left and right views as a pair")))
    return items


def collect_items(
    inputs: Sequence[str | Path],
    dual_pixel: bool,
    left: str | Path | None = None,
    right: str | Path | None = None,
    recursive: bool = False,
    warn: Callable[[str], None] | None = None,
    suffix: str | None = None,
) -> list[InputItem]:
    """Command-line inputs -> items (see the module docstring). Missing paths raise :class:`InputError`.

    ``--left/--right`` take two files (one pair) or two folders (views paired by id, ``<id>_L`` with
    ``<id>_R`` or equal names); an id with one view only, like an incomplete DPDD root, becomes a
    failed item, so every input is either processed or listed. ``warn`` is told about suspicious
    inputs (the same file as both views). With ``suffix`` (the outputs' ``{stem}{suffix}.{ext}``),
    folders and globs leave out files named like outputs, so a re-run over a folder skips what
    the last run wrote there instead of taking it for input; a file named explicitly is kept.
    """
    from dpdeblur.utils.batch import expand_inputs

    own = (lambda f: f.stem.endswith(suffix)) if suffix else None  # noqa: E731 - outputs of an earlier run

    items: list[InputItem] = []
    exts = IMAGE_EXTS + RAW_EXTS
    if left or right:
        if not (left and right):
            raise UsageError("left and right go together; pass both views", settings=("left", "right"))
        if not dual_pixel:
            raise UsageError("left and right views are for dual-pixel models; this model takes one image per input",
                             settings=("left", "right"))
        lp, rp = Path(left), Path(right)
        for p, side in ((lp, "left"), (rp, "right")):
            if not p.exists():
                raise InputError(f"{p}: no such file or folder (given as {side} view)", settings=(side,))
        if lp.is_dir() != rp.is_dir():
            raise UsageError(f"left {lp} and right {rp}: pass two files (one pair) or two folders of views",
                             settings=("left", "right"))
        if lp.resolve() == rp.resolve():
            (warn or _warn)(f"the left and right views are the same {'folder' if lp.is_dir() else 'file'} {lp}: "
                            "both views are identical, so the model sees no dual-pixel disparity")
        if lp.is_dir():
            items += _match_views(expand_inputs([lp], exts=IMAGE_EXTS, recursive=recursive, exclude=own),
                                  expand_inputs([rp], exts=IMAGE_EXTS, recursive=recursive, exclude=own), lp, rp)
            if not items:
                raise InputError(f"{lp} and {rp}: no images in the view folders; supported: {', '.join(IMAGE_EXTS)}")
        else:
            items.append(InputItem(f"{lp.name}+{rp.name}", _view_id(lp.stem), "pair", (lp, rp)))
    files: list[Path] = []
    for inp in inputs:
        p = Path(inp)
        splits = DPDD.splits_in(p) if p.is_dir() else []
        if not splits:
            files += expand_inputs([inp], exts=exts, recursive=recursive, exclude=own)
        for split in splits:  # DPDD root: views from <split>_l/_r, or combined images from <split>_c
            folder = {v: DPDD.source(p, split, v) for v in ("left", "right", "combined")}
            listed = {v: expand_inputs([d], exts=exts, exclude=own) if d.is_dir() else [] for v, d in folder.items()}
            if dual_pixel:
                found = _match_views(listed["left"], listed["right"], folder["left"], folder["right"], name=f"{split}/{{}}")
            elif folder["combined"].is_dir():
                found = [InputItem(f"{split}/{f.stem}", f.stem, "image", (f,)) for f in listed["combined"]]
            else:
                first = {_view_id(f.stem): f for f in reversed(listed["left"] + listed["right"])}
                found = [InputItem(f"{split}/{i}", i, "image", (f,), error=(
                    f"{p}: no {folder['combined'].relative_to(p)} folder with the combined image {i}.*; a single-image model "
                    "needs the combined images (or give a dual-pixel model the views)")) for i, f in sorted(first.items())]
            items += [dataclasses.replace(it, out_base=p / DATASET_RESULTS, out_sub=split) for it in found]
    return items + _pair_files(files, dual_pixel)


def _warn(msg: str) -> None:
    import warnings

    warnings.warn(msg, stacklevel=3)


def _match_views(lefts: Sequence[Path], rights: Sequence[Path], left_dir: Path, right_dir: Path,
                 name: str = "{}") -> list[InputItem]:
    """Pair views of two folders by id (``<id>_L`` with ``<id>_R``, or equal stems); an id
    with one view only is a failed item naming the folder that lacks its twin."""
    by_id: dict[str, dict[str, Path]] = {}
    for side, files in (("left", lefts), ("right", rights)):
        for f in files:
            by_id.setdefault(_view_id(f.stem), {}).setdefault(side, f)
    items = []
    for id_, v in sorted(by_id.items()):
        if "left" in v and "right" in v:
            items.append(InputItem(name.format(id_), id_, "pair", (v["left"], v["right"])))
        else:
            have, miss, where = ("left", "right", right_dir) if "left" in v else ("right", "left", left_dir)
            items.append(InputItem(str(v[have]), id_, "pair", (v[have],), error=(
                f"{v[have]}: no {view_stem(id_, miss)}.* view in {where}; the view folders do not match")))
    return items


def load_item(item: InputItem, dual_pixel: bool, raw_options: dict | None = None, scale: float = 1.0) -> Loaded:
    """The single place that decodes an input: pairs and images via :func:`read_image`,
    raw files via :func:`dpdeblur.io.raw.read_dual_pixel` (split in memory, no temporary
    files; ``raw_options`` such as ``stored_view`` and ``flat_field`` are passed to it).
    ``scale`` < 1 area-averages every input down in linear light (raw files before they are
    encoded, images after decoding their sRGB)."""
    if item.error:
        raise InputError(item.error)
    if item.kind == "raw":
        from dpdeblur.io.raw import read_dual_pixel

        dp = read_dual_pixel(item.paths[0], **{**(raw_options or {}), **({"scale": scale} if scale != 1.0 else {})})
        views = {"left": dp.left, "right": dp.right}
        return Loaded(
            image=None if dual_pixel else dp.combined, views=views if dual_pixel else None,
            bit_depth=16, exif=dp.exif, meta=dict(dp.meta), gray=bool(dp.meta.get("monochrome")),
            pending_orientation=int(dp.meta.get("orientation", 1) or 1),
        )
    if item.kind == "pair":
        left, right = (_scaled(read_image(p), scale) for p in item.paths)
        if left.rgb.shape != right.rgb.shape:
            raise InputError(
                f"{item.paths[0]} and {item.paths[1]}: views differ in size "
                f"({left.rgb.shape[1]}x{left.rgb.shape[0]} vs {right.rgb.shape[1]}x{right.rgb.shape[0]}); "
                "they are not two views of one photo")
        alpha = left.alpha if left.alpha is not None else right.alpha  # re-attached to the result
        return Loaded(views={"left": left.rgb, "right": right.rgb}, bit_depth=max(left.bit_depth, right.bit_depth),
                      alpha=alpha, exif=left.meta.get("exif"), icc=left.meta.get("icc"), meta={"orientation": left.meta.get("orientation", 1)},
                      gray=left.gray and right.gray)
    if dual_pixel:
        raise InputError(f"{item.paths[0]}: a dual-pixel model needs two views (a left and right pair, or <id>_L/<id>_R files)")
    im = _scaled(read_image(item.paths[0]), scale)
    return Loaded(image=im.rgb, bit_depth=im.bit_depth, alpha=im.alpha, exif=im.meta.get("exif"),
                  icc=im.meta.get("icc"), meta={"orientation": im.meta.get("orientation", 1)}, gray=im.gray)


def _scaled(im, scale: float):
    """``im`` (an :class:`~dpdeblur.io.images.Image`) area-averaged by ``scale`` in linear light."""
    if scale == 1.0:
        return im
    from dpdeblur.io.dualpixel import area_scale, srgb_decode, srgb_encode

    rgb = srgb_encode(area_scale(srgb_decode(im.rgb), scale))
    alpha = None if im.alpha is None else area_scale(im.alpha, scale)
    return dataclasses.replace(im, rgb=np.clip(rgb, 0, 1).astype(np.float32), alpha=alpha)


def output_pixels(y: np.ndarray, loaded: Loaded) -> np.ndarray:
    """The result in the input's channel layout: :math:`(H, W)` (the mean of the model's
    three channels, which see the same gray input) when the input held one channel and no
    alpha, else ``y`` :math:`(H, W, 3)` unchanged (gray + alpha is written as RGBA: PNG
    and TIFF writers here take one, three or four channels)."""
    if loaded.gray and loaded.alpha is None:
        return y.mean(axis=2, dtype=np.float32)
    return y


# ----------------------------------------------------------------------------- model


def default_model_name(name: str | None, weights: str | Path | None) -> str | None:
    """``name``, or the bundled default dual-pixel model when neither a name nor weights are given."""
    if name is None and weights is None:
        from dpdeblur.models.cards import DEFAULT_MODEL

        return DEFAULT_MODEL
    return name


def require_weights(name: str | None, weights: str | Path | None = None) -> None:
    """Raise :class:`WeightsError` naming the model and how to get weights when it has none (cheap: builds nothing)."""
    from dpdeblur.models import resolve_model, resolve_weights

    if weights is not None:
        from dpdeblur.models.weights import check_weights_file

        check_weights_file(weights)
        return
    card, _ = resolve_model(name)
    if resolve_weights(card) is None:
        where = f" (looked for {card.weights} in $DPDEBLUR_WEIGHTS_DIR, ~/.cache/dpdeblur/weights, assets/weights)" if card.weights else ""
        raise WeightsError(
            f"model {card.name} has no weight file{where}; pass weights FILE, "
            f"or train them with `dpdeblur train --model {card.name}`", settings=("weights",))


def load_model(name: str | None = None, weights: str | Path | None = None, model_config: dict[str, Any] | None = None):
    """Build ``name`` with ``weights`` (or its default weights); fail fast, naming the model, when it has none.

    ``name`` and ``model_config`` default to what a self-describing weights file says
    (see :func:`dpdeblur.models.resolve_model`); with neither a name nor weights, the
    bundled default dual-pixel model (:data:`dpdeblur.models.cards.DEFAULT_MODEL`)."""
    from dpdeblur.models import create_model

    name = default_model_name(name, weights)
    require_weights(name, weights)
    return create_model(name, weights=weights, pretrained=weights is None, **(model_config or {}))


class Deblurrer:
    """A model ready for photos: device, precision and tiling settings.

    Args:
        model: registry name, None (the model a self-describing ``weights`` file names; without
            weights, the bundled default dual-pixel model) or a built ``nn.Module`` (with ``card``
            for dual-pixel models).
        weights, model_config: for a name (see :func:`load_model`).
        tile: tile size; None = the model card's recommendation (0, whole image, for
            models that do not tile exactly such as FCN; 512 without a card).
        overlap, blend, tile_batch, global_stats: see :class:`~dpdeblur.inference.tiling.TileSettings`.
        device: ``auto|cpu|cuda|cuda:N|mps``; precision: ``auto|fp32|bf16|fp16``.
        tta: self-ensemble: average the model over four flips of the input (4x the time; see
            :mod:`dpdeblur.inference.ensemble`).
        warn: callback for one-off warnings (GPU out of memory, tiling a model that does not tile).
    """

    def __init__(self, model=None, weights=None, model_config=None, *, tile: int | None = None, overlap: int = 64,
                 blend: str = "hann", tile_batch: int = 1, global_stats: bool = True, device: str = "auto",
                 precision: str = "auto", compile: bool = False, channels_last: bool = False,
                 tta: bool = False, warn: Callable[[str], None] | None = None) -> None:
        from dpdeblur.inference.device import prepare_model, resolve_device, resolve_precision
        from dpdeblur.inference.tiling import check_tiling

        check_tiling(tile, overlap, blend, tile_batch)  # before any work
        self.device = resolve_device(device)
        self.dtype = resolve_precision(precision, self.device)
        if model is None or isinstance(model, str):
            model = load_model(model, weights, model_config)
        self.card = getattr(model, "card", None)
        self.warn = warn
        self.settings = self.tile_settings(tile, overlap, blend=blend, tile_batch=tile_batch, global_stats=global_stats)
        self.dual_pixel = bool(self.card and self.card.layout == "dp")
        self.views = tuple(self.card.views) if self.dual_pixel else ()
        self.channels_last = channels_last
        self.tta = bool(tta)
        self.model = prepare_model(model, self.device, compile=compile, channels_last=channels_last)

    def tile_settings(self, tile: int | None = None, overlap: int = 64, **options):
        """Checked :class:`~dpdeblur.inference.tiling.TileSettings`; ``tile=None`` takes the card's
        recommendation, and tiling a model whose card says it does not tile warns once."""
        from dpdeblur.inference.tiling import TileSettings, check_tiling

        if tile is None:
            tile = self.card.tile if self.card is not None else TileSettings.tile
        elif tile and self.card is not None and not self.card.tileable:
            msg = (f"{self.card.name} does not tile exactly (each stage splits and pools its whole input), "
                   f"so tile {tile} changes its result; tile 0 (its default) runs the whole image")
            (self.warn or (lambda m: warnings.warn(m, RuntimeWarning, stacklevel=3)))(msg)
        check_tiling(tile, overlap, options.get("blend", "hann"), options.get("tile_batch", 1))
        return TileSettings(tile=tile, overlap=overlap, **options)

    def model_input(self, loaded: Loaded):
        """:math:`(1, 3V, H, W)` float32 CPU tensor: views stacked in the card's order, or the image."""
        import torch

        if self.dual_pixel:
            if loaded.views is None:
                raise InputError("a dual-pixel model needs two views")
            arrays = [loaded.views[v] for v in self.views]
        else:
            if loaded.image is None:
                raise InputError("this model takes one image")
            arrays = [loaded.image]
        h, w = arrays[0].shape[:2]
        x = torch.empty(1, 3 * len(arrays), h, w)
        for k, a in enumerate(arrays):
            x[0, 3 * k : 3 * k + 3] = torch.from_numpy(to_float(a)).permute(2, 0, 1)
        return x

    def run(self, loaded: Loaded, progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Deblur a decoded item; returns :math:`(H, W, 3)` float32 in [0, 1].
        ``progress(done, total)`` is called as tiles finish."""
        from dpdeblur.inference.tiling import tiled_forward

        x = self.model_input(loaded)
        if self.tta:
            from dpdeblur.inference.ensemble import FLIPS, self_ensemble

            def forward(xk, k):  # progress counts the tiles of all four variants
                tick = None if progress is None else (lambda done, total: progress(k * total + done, len(FLIPS) * total))
                return tiled_forward(self.model, xk, self.settings, self.device, self.dtype, self.channels_last, self.warn, tick)

            y = self_ensemble(forward, x, len(self.views) if self.dual_pixel else 1)
        else:
            y = tiled_forward(self.model, x, self.settings, self.device, self.dtype, self.channels_last, self.warn, progress)
        del x
        out = y[0].clamp_(0, 1).permute(1, 2, 0).numpy()
        if loaded.pending_orientation != 1:
            from dpdeblur.io.metadata import apply_orientation

            out = apply_orientation(out, loaded.pending_orientation)
        return np.ascontiguousarray(out)


# ----------------------------------------------------------------------------- outputs and batches


def output_path(item: InputItem, out_dir: str | Path | None, suffix: str = "_deblurred", ext: str = "auto") -> Path:
    """``{out_dir}/{stem}{suffix}.{ext}``; ``out_dir`` defaults to the input's folder (for a data-set
    root's items ``<root>/deblurred``, and both get the split's subfolder: ``.../<split>/...``),
    ``ext=auto`` keeps PNG/TIFF/JPEG (other images -> PNG, raw -> 16-bit TIFF)."""
    src = item.paths[0]
    if ext == "auto":
        try:
            ext = format_of(src) if src.suffix.lower() not in RAW_EXTS else "tif"
        except UsageError:
            ext = "png"
    ext = EXT_ALIASES.get(ext.lower().lstrip("."), ext.lower().lstrip("."))
    if ext not in OUTPUT_EXTS[1:]:
        raise UsageError(f"ext {ext!r}: choose one of {', '.join(OUTPUT_EXTS)}", settings=("ext",))
    return Path(out_dir or item.out_base or src.parent) / item.out_sub / f"{item.stem}{suffix}.{ext}"


def results_where(items: Sequence[InputItem], out_dir: str | Path | None) -> str:
    """Where :func:`deblur_files` puts the results of ``items``, in words: the output folder,
    or "beside the inputs" and each data-set root's ``deblurred/<split>`` folders."""
    if out_dir:
        return str(Path(out_dir).resolve()) + ("/<split>" if any(it.out_sub for it in items) else "")
    roots = sorted({str(it.out_base.resolve()) for it in items if it.out_base is not None})
    return "; ".join((["beside the inputs"] if any(it.out_base is None for it in items) else [])
                     + [f"{r}/<split>" for r in roots])


def check_output_options(ext: str = "auto", bit_depth: str | int = "auto", quality: int = 95,
                         suffix: str = "_deblurred") -> None:
    """Usage errors for ``ext``, ``bit_depth``, ``quality`` and ``suffix`` (checked before any work)."""
    import os

    seps = {"/", "\\", os.sep} | ({os.altsep} if os.altsep else set())
    if any(c in suffix for c in seps) or "\0" in suffix:
        raise UsageError(f"suffix {suffix!r}: no path separators; choose another folder with out_dir DIR",
                         settings=("suffix", "out_dir"))
    if ext.lower().lstrip(".") not in (*OUTPUT_EXTS, *EXT_ALIASES):
        raise UsageError(f"ext {ext!r}: choose one of {', '.join(OUTPUT_EXTS)}", settings=("ext",))
    if str(bit_depth) not in BIT_DEPTHS:
        raise UsageError(f"bit_depth {bit_depth!r}: choose one of {', '.join(BIT_DEPTHS)}", settings=("bit_depth",))
    if not 1 <= int(quality) <= 100:
        raise UsageError(f"quality {quality}: choose 1..100", settings=("quality",))


def check_deblur_options(*, ext: str = "auto", bit_depth: str | int = "auto", quality: int = 95,
                         suffix: str = "_deblurred", tile: int | None = None, overlap: int = 64, blend: str = "hann",
                         tile_batch: int = 1, device: str = "auto", precision: str = "auto",
                         stored_view: str = STORED_VIEW, scale: float = 1.0) -> None:
    """Every option of ``dpdeblur deblur`` checked before any work (usage errors naming the setting)."""
    from dpdeblur.io.raw import check_raw_options
    from dpdeblur.inference.device import resolve_device, resolve_precision
    from dpdeblur.inference.tiling import check_tiling

    check_output_options(ext, bit_depth, quality, suffix)
    check_raw_options(stored_view, scale)
    check_tiling(tile, overlap, blend, tile_batch)
    resolve_precision(precision, resolve_device(device))


def plan_outputs(items: Sequence[InputItem], out_dir: str | Path | None = None, *, suffix: str = "_deblurred",
                 ext: str = "auto") -> list[tuple[InputItem, Path]]:
    """``(item, output path)`` for each item, checked before any work: an output that is one of
    the inputs is a usage error (nothing is written); two items writing one file: the second fails."""
    check_output_options(ext, suffix=suffix)
    targets: dict[Path, str] = {}
    inputs = {p.resolve(): it.name for it in items for p in it.paths}
    plan = []
    for it in items:
        out = output_path(it, out_dir, suffix, ext)
        key = out.resolve()
        if key in inputs:
            raise UsageError(
                f"output {out} is the input {inputs[key]}; it would be overwritten: "
                "set suffix (non-empty), ext (another format) or out_dir (another folder)",
                settings=("suffix", "ext", "out_dir"))
        if out.is_dir() and not it.error:
            it = dataclasses.replace(it, error=(
                f"{it.name}: its output {out} is a folder; remove or rename that folder, or choose another output folder"))
        if key in targets and not it.error:
            it = dataclasses.replace(it, error=(
                f"{it.name}: output {out} would also be written by {targets[key]}; rename one or write them to separate folders"))
        targets.setdefault(key, it.name)
        plan.append((it, out))
    return plan


def deblur_files(
    items: Sequence[InputItem],
    deblurrer: Deblurrer,
    out_dir: str | Path | None = None,
    *,
    suffix: str = "_deblurred",
    ext: str = "auto",
    bit_depth: str | int = "auto",
    quality: int = 95,
    overwrite: bool = False,
    raw_options: dict | None = None,
    scale: float = 1.0,
    console=None,
    progress: bool = True,
):
    """Deblur every item into a file; returns a :class:`~dpdeblur.utils.batch.BatchReport`.

    Existing outputs are skipped unless ``overwrite``; a bad item is reported and the rest go on.
    ``scale`` < 1 deblurs (and writes) every input area-averaged down by it (:func:`load_item`).
    """
    from dpdeblur.io.raw import check_raw_options
    from dpdeblur.utils.batch import ItemResult, run_batch

    check_output_options(ext, bit_depth, quality, suffix)
    check_raw_options(scale=scale)
    plan = plan_outputs(items, out_dir, suffix=suffix, ext=ext)

    def one(job) -> ItemResult:
        it, out = job
        if it.error:
            raise InputError(it.error)
        if out.exists() and not overwrite:
            return ItemResult(it.name, status="skipped", outputs=[str(out)])
        loaded = load_item(it, deblurrer.dual_pixel, raw_options, scale)
        y = output_pixels(deblurrer.run(loaded), loaded)
        depth = loaded.bit_depth if str(bit_depth) == "auto" else int(bit_depth)
        write_image(out, y, depth, alpha=loaded.alpha, quality=quality, exif=loaded.exif, icc=loaded.icc)
        h, w = y.shape[:2]
        jpg = out.suffix == ".jpg"  # 8-bit, no alpha
        channels = (1 if y.ndim == 2 else 3) + (loaded.alpha is not None and not jpg)
        return ItemResult(it.name, outputs=[str(out)], info={"size": [w, h], "bit_depth": 8 if jpg else depth,
                                                             "channels": channels,
                                                             "orientation": loaded.meta.get("orientation", 1)})

    return run_batch(plan, one, label="deblur", name=lambda j: j[0].name, console=console, progress=progress)


# ----------------------------------------------------------------------------- Python API

_CACHE: dict[tuple, Deblurrer] = {}


def deblur(image_or_views, model=None, weights=None, tile: int | None = None, overlap: int = 64, *,
           model_config: dict[str, Any] | None = None, progress: bool = False, **options) -> np.ndarray:
    """Deblur one photo in a notebook.

    Args:
        image_or_views: :math:`(H, W, 3)` array (uint8, uint16 or float in [0, 1]) for
            single-image models; a ``(left, right)`` tuple of arrays or paths for
            dual-pixel models; or a path (an image, an ``<id>_L``/``<id>_R`` view
            whose twin is beside it, or a raw dual-pixel file).
        model: registry name (``"dmtnet-s"``) or a built model; None: the model a
            ``.safetensors`` from ``dpdeblur train`` names (with its builder config), or
            without weights the bundled default dual-pixel model (``dpdeblur models``).
        weights: weights file; default: the model's bundled weights.
        tile, overlap: tiling (``tile=0``: whole image; None: the model card's default).
        model_config: builder overrides (tiny test configs); default: the weights file's.
        progress: show a ``tqdm.auto`` progress bar over the tiles (a widget in Jupyter).
        **options: ``blend``, ``tile_batch``, ``device``, ``precision``, ``global_stats``, ``compile``,
            ``channels_last``, ``tta`` (average over four flips of the input, 4x the time).

    Returns:
        :math:`(H, W, 3)` float32 RGB in [0, 1] (upright: EXIF orientation applied).
    """
    from dpdeblur.inference.tiling import check_tiling

    tiling = {k: options.pop(k) for k in ("blend", "tile_batch", "global_stats") if k in options}
    check_tiling(tile, overlap, tiling.get("blend", "hann"), tiling.get("tile_batch", 1))
    if model is None or isinstance(model, str):  # keep the last model built from a name: notebook loops do not rebuild it
        key = (model, str(weights), repr(sorted((model_config or {}).items())), repr(sorted(options.items())))
        if key not in _CACHE:
            _CACHE.clear()
            _CACHE[key] = Deblurrer(model, weights, model_config, **options)
        d = _CACHE[key]
    else:
        d = Deblurrer(model, **options)
    d.settings = d.tile_settings(tile, overlap, **tiling)
    bar = _TileBar() if progress else None
    try:
        return _deblur_one(d, image_or_views, bar)
    finally:
        if bar is not None:
            bar.close()


class _TileBar:
    """``tqdm.auto`` bar fed by :func:`~dpdeblur.inference.tiling.tiled_forward`'s ``progress(done, total)``."""

    def __init__(self) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=0, unit="tile", desc="deblur")

    def __call__(self, done: int, total: int) -> None:
        if self.bar.total != total or done < self.bar.n:  # first call, or a retry with smaller tiles
            self.bar.reset(total=total)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def _deblur_one(d: Deblurrer, image_or_views, progress=None) -> np.ndarray:
    x = image_or_views
    if isinstance(x, (str, Path)):
        items = collect_items([x], d.dual_pixel)
        return d.run(load_item(items[0], d.dual_pixel), progress)
    if isinstance(x, (tuple, list)) and len(x) == 2:
        if not d.dual_pixel:
            raise UsageError("a (left, right) pair is for dual-pixel models; pass one image")
        lv, rv = (read_image(v).rgb if isinstance(v, (str, Path)) else to_float(np.asarray(v)) for v in x)
        if lv.shape != rv.shape or lv.ndim != 3 or lv.shape[2] != 3:
            raise UsageError(f"views must be two (H, W, 3) arrays of one size, got {lv.shape} and {rv.shape}")
        return d.run(Loaded(views={"left": lv, "right": rv}), progress)
    a = np.asarray(x)
    if d.dual_pixel:
        raise UsageError("a dual-pixel model needs (left, right) views or a path")
    if a.ndim != 3 or a.shape[2] != 3:
        raise UsageError(f"expected an (H, W, 3) image, got shape {a.shape}")
    return d.run(Loaded(image=to_float(a)), progress)
