"""Quality reports (``dpdeblur bench quality``): PSNR / SSIM / MAE (and LPIPS) of a model
on a test split, per image and aggregated, beside the blurry input itself ("identity").

Protocol (DPDD, arXiv:2005.00305; JDRL, arXiv:2211.14502 for SDD):

- images are read at the bit depth the data set stores (16-bit DPDD, 8-bit SDD...) as
  [0, 1] floats; the model output is scored as float (clamped to [0, 1], never
  re-quantised); PSNR from the MSE over pixels and channels, MAE likewise;
- SSIM with a named window (``wang``: 11x11 Gaussian, or ``skimage-default``: 7x7 uniform);
- dual-pixel sets: the "identity" row scores the combined image (or the mean of the views
  when the set has no combined image);
- DPDD: ``indoor`` / ``outdoor`` rows from scene labels (:func:`scene_labels`) beside
  ``combined`` (all images; every data set has that row);
- SDD (or ``deformed_gt=True``): JDRL's protocol, the ground truth warped onto the output
  by optical flow (:func:`dpdeblur.flow.align.deformed_gt`) before scoring, reported as
  ``psnr_deformed`` / ``ssim_deformed`` / ``mae_deformed`` beside the plain numbers.

A report is ``{"kind": "quality", "meta", "rows", "per_image"}``; rows are keyed by
``model`` / ``dataset`` / ``subset`` (:data:`dpdeblur.bench.report.KINDS`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from dpdeblur.errors import DataError, InputError, UsageError

__all__ = [
    "IDENTITY", "SUBSETS", "LPIPS_SKIPPED", "QualityConfig", "resolve_quality_model", "scene_labels", "score_image",
    "aggregate", "bench_quality", "check_quality_config", "check_quality_outputs", "per_image_csv", "quality_markdown",
    "save_crops", "best_worst",
]

IDENTITY = "identity"
SUBSETS = ("combined", "indoor", "outdoor")
METRICS = ("psnr", "ssim", "mae")
LPIPS_SKIPPED = "skipped: needs AlexNet/VGG weights, none downloaded (pass --lpips-weights FILE)"
#: least height and width LPIPS-alex takes (AlexNet's strided convolution and two 3x3 poolings)
LPIPS_MIN_SIZE = 31
_LPIPS_FILE = "a local LPIPS-alex .safetensors/.pth file holding AlexNet features.N.* and lin0..4.model.1.weight tensors"


@dataclass
class QualityConfig:
    """What to score. ``model``: a registry name, ``"identity"`` (the blurry input only),
    a built ``nn.Module``, or None (the model a self-describing ``weights`` file names); ``folders``: ``blur`` / ``sharp`` / ``left`` / ``right`` for
    ``dataset="folder"``; ``deformed_gt=None``: on for SDD only."""

    dataset: str
    data_root: str | Path | None = None
    split: str = "test"
    model: Any = IDENTITY
    weights: str | Path | None = None
    model_config: dict[str, Any] = field(default_factory=dict)
    folders: dict[str, str | Path | None] = field(default_factory=dict)
    tile: int = 512
    overlap: int = 64
    device: str = "auto"
    precision: str = "auto"
    ssim: str = "wang"
    deformed_gt: bool | None = None
    scene_list: str | Path | None = None
    lpips_weights: str | Path | None = None
    limit: int | None = None
    ids: list[str] | None = None  # score only these image (or scene) ids, in this order
    crops: int = 0  # keep side-by-side crops for best/worst selection (pixels per side; 0 = none)
    tta: bool = False  # self-ensemble over four flips (dpdeblur.inference.ensemble)


# ----------------------------------------------------------------------------- labels and scoring


def scene_labels(root: str | Path | None, scene_list: str | Path | None = None) -> dict[str, str]:
    """id -> ``indoor`` | ``outdoor``: from ``scene_list`` (lines ``<id> indoor|outdoor``) or
    ``<root>/indoor.txt`` + ``<root>/outdoor.txt`` (one id per line); ``{}`` when neither exists.
    Ids are file stems (extensions and folders are dropped)."""
    labels: dict[str, str] = {}
    if scene_list is not None:
        path = Path(scene_list)
        if not path.is_file():
            raise InputError(f"{path}: scene list not found; pass a file of '<id> indoor|outdoor' lines")
        for n, line in enumerate(path.read_text().splitlines(), 1):
            parts = line.split("#")[0].split()
            if not parts:
                continue
            if len(parts) != 2 or parts[1].lower() not in ("indoor", "outdoor"):
                raise InputError(f"{path}:{n}: expected '<id> indoor|outdoor', got {line.strip()!r}")
            labels[Path(parts[0]).stem] = parts[1].lower()
        return labels
    for kind in ("indoor", "outdoor"):
        f = Path(root) / f"{kind}.txt" if root is not None else None
        if f is not None and f.is_file():
            for line in f.read_text().splitlines():
                if line.split("#")[0].strip():
                    labels[Path(line.split("#")[0].strip()).stem] = kind
    return labels


def score_image(pred: np.ndarray, gt: np.ndarray, ssim_window: str = "wang", lpips=None) -> dict[str, float]:
    """PSNR / SSIM / MAE (and LPIPS when ``lpips`` is a callable) of ``pred`` against ``gt``,
    both :math:`(H, W, 3)` floats in [0, 1]; computed in float64, ``pred`` clamped to [0, 1]."""
    from dpdeblur.metrics import compute_metrics_np

    out = compute_metrics_np(pred, gt, ssim_window)
    if lpips is not None:
        from dpdeblur.metrics.image import _to_tensor

        p, g = _to_tensor(pred)[None].float(), _to_tensor(gt)[None].float()
        out["lpips"] = float(lpips(p.clamp(0, 1), g)[0])
    return out


def aggregate(per_image: list[dict[str, Any]], dataset: str, labelled: bool) -> list[dict[str, Any]]:
    """Mean of every metric per model and subset (``combined`` always; ``indoor`` /
    ``outdoor`` when ``labelled``); ``n`` counts the images of each row."""
    rows = []
    for model in dict.fromkeys(r["model"] for r in per_image):
        mine = [r for r in per_image if r["model"] == model]
        for subset in SUBSETS if labelled else SUBSETS[:1]:
            sel = mine if subset == "combined" else [r for r in mine if r.get("scene") == subset]
            if not sel:
                continue
            row: dict[str, Any] = {"model": model, "dataset": dataset, "subset": subset, "n": len(sel)}
            for k in sel[0]:
                if k not in ("model", "id", "scene", "bit_depth") and isinstance(sel[0][k], float):
                    row[k] = float(np.mean([r[k] for r in sel]))
            rows.append(row)
    return rows


# ----------------------------------------------------------------------------- crops


def _crop_box(blur: np.ndarray, gt: np.ndarray, size: int) -> tuple[int, int, int, int]:
    """(y, x, h, w) of the ``size`` window where the input differs most from the truth (most blur)."""
    h, w = gt.shape[:2]
    ch, cw = min(size, h), min(size, w)
    err = np.abs(blur - gt).mean(axis=2, dtype=np.float64)
    ii = np.pad(err.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    win = ii[ch:, cw:] - ii[:-ch, cw:] - ii[ch:, :-cw] + ii[:-ch, :-cw]
    y, x = np.unravel_index(int(np.argmax(win)), win.shape)
    return int(y), int(x), ch, cw


def _side_by_side(blur: np.ndarray, out: np.ndarray, gt: np.ndarray, size: int) -> np.ndarray:
    """:math:`(h, 3w + 8, 3)` uint8: input | output | ground truth crops, 4-px white gaps."""
    from dpdeblur.io.images import from_float

    y, x, ch, cw = _crop_box(blur, gt, size)
    gap = np.ones((ch, 4, 3), np.float32)
    parts = [np.clip(a[y : y + ch, x : x + cw], 0, 1).astype(np.float32) for a in (blur, out, gt)]
    return from_float(np.concatenate([parts[0], gap, parts[1], gap, parts[2]], axis=1), 8)


def best_worst(per_image: list[dict[str, Any]], model: str, k: int) -> tuple[list[dict], list[dict]]:
    """The ``k`` worst and ``k`` best images of ``model`` by PSNR (worst first / best first)."""
    mine = sorted((r for r in per_image if r["model"] == model), key=lambda r: r["psnr"])
    return mine[:k], mine[::-1][:k]


def save_crops(crops: dict[str, np.ndarray], per_image: list[dict[str, Any]], model: str, k: int, out_dir: str | Path) -> list[Path]:
    """Write ``worst-NN-<id>.png`` / ``best-NN-<id>.png`` (8-bit, input | output | truth)."""
    from dpdeblur.io.images import write_image

    worst, best = best_worst(per_image, model, k)
    written = []
    for tag, rows in (("worst", worst), ("best", best)):
        for n, r in enumerate(rows, 1):
            name = f"{tag}-{n:02d}-{r['id'].replace('/', '_')}.png"
            written.append(write_image(Path(out_dir) / name, crops[r["id"]], bit_depth=8))
    return written


# ----------------------------------------------------------------------------- the benchmark


def _check_lpips_file(path: Path) -> None:
    """The LPIPS weights file exists and is a weights file: one line naming ``lpips_weights``."""
    from dpdeblur.errors import WeightsError
    from dpdeblur.models.weights import check_weights_file

    if path.is_file():
        try:
            check_weights_file(path, "lpips_weights")
        except WeightsError:
            raise WeightsError(f"{path}: not a weights file (neither safetensors nor a PyTorch checkpoint); "
                               f"lpips_weights takes {_LPIPS_FILE}", settings=("lpips_weights",)) from None
    else:
        check_weights_file(path, "lpips_weights")  # a folder, or missing: the message names lpips_weights


def _lpips_fn(weights: str | Path | None):
    if weights is None:
        return None, LPIPS_SKIPPED
    from dpdeblur.metrics.lpips import LPIPS

    from dpdeblur.errors import WeightsError

    _check_lpips_file(Path(weights))
    try:
        net = LPIPS.from_file(weights)
    except WeightsError as e:
        fix = "" if "LPIPS" in str(e) else f"; lpips_weights takes {_LPIPS_FILE}"
        raise WeightsError(f"lpips_weights {e}{fix}", settings=("lpips_weights",)) from None
    return net, f"alexnet ({Path(weights).name})"


def _check_size(s, sharp: np.ndarray, ssim_window: str, lpips: bool) -> None:
    """A one-line :class:`DataError` naming the file when an image is too small to score."""
    from dpdeblur.metrics import ssim_window_size

    h, w = sharp.shape[:2]
    need = ssim_window_size(ssim_window)
    if min(h, w) < need:
        other = next((k for k in ("skimage-default", "wang") if k != ssim_window and ssim_window_size(k) <= min(h, w)), None)
        fix = f"pass ssim {other} ({ssim_window_size(other)}x{ssim_window_size(other)}) or remove it" if other else "remove it"
        raise DataError(f"{s.sharp}: {w}x{h} is smaller than {need}x{need}, the least SSIM window {ssim_window} "
                        f"takes; {fix}", settings=("ssim",))
    if lpips and min(h, w) < LPIPS_MIN_SIZE:
        raise DataError(f"{s.sharp}: {w}x{h} is smaller than {LPIPS_MIN_SIZE}x{LPIPS_MIN_SIZE}, the least LPIPS "
                        "takes; leave out lpips_weights or remove the image", settings=("lpips_weights",))


def _read_sample(sample, need_views: bool) -> tuple[dict[str, np.ndarray], int]:
    """Planes of a sample (``blur``, ``sharp``, views when ``need_views``) and the truth's bit depth."""
    from dpdeblur.io.images import read_image

    sharp = read_image(sample.sharp)
    planes = {"sharp": sharp.rgb}
    for name in ("left", "right", "blur"):
        p = getattr(sample, name)
        if p is not None and (name == "blur" or need_views or sample.blur is None):
            planes[name] = read_image(p).rgb
    if "blur" not in planes:
        planes["blur"] = (planes["left"] + planes["right"]) * 0.5
    for name, a in planes.items():
        if a.shape != sharp.rgb.shape:
            raise DataError(f"{getattr(sample, name) or sample.sharp}: {name} image {a.shape[1]}x{a.shape[0]} differs "
                            f"from the ground truth {sample.sharp} {sharp.rgb.shape[1]}x{sharp.rgb.shape[0]}")
    return planes, sharp.bit_depth


def resolve_quality_model(cfg: QualityConfig) -> QualityConfig:
    """``model=None``: the model (and builder config) a self-describing weights file names, as
    ``deblur`` does; the config is returned with them filled in."""
    if cfg.model is not None:
        return cfg
    if cfg.weights is None:
        raise UsageError("no model to score: pass a model name ('identity' for the blurry input), or weights "
                         "written by `dpdeblur train` (they name their model)", settings=("model", "weights"))
    import dataclasses

    from dpdeblur.models import resolve_model

    card, overrides = resolve_model(None, cfg.weights, cfg.model_config)
    return dataclasses.replace(cfg, model=card.name, model_config=overrides)


def check_quality_config(cfg: QualityConfig) -> None:
    """Usage errors before any image is read; the options ``deblur`` shares by its rules."""
    from dpdeblur.inference.pipeline import check_deblur_options
    from dpdeblur.metrics import SSIM_WINDOWS

    cfg = resolve_quality_model(cfg)

    if cfg.ssim not in SSIM_WINDOWS:
        raise UsageError(f"ssim {cfg.ssim!r}: choose one of {', '.join(SSIM_WINDOWS)}", settings=("ssim",))

    if cfg.limit is not None and cfg.limit < 1:
        raise UsageError(f"limit {cfg.limit}: must be at least 1", settings=("limit",))
    if cfg.ids is not None and not [i for i in cfg.ids if str(i).strip()]:
        raise UsageError("ids names no image; pass file stems separated by commas (e.g. ids 003,004), "
                         "or leave ids out to score every image", settings=("ids",))
    if cfg.crops < 0:
        raise UsageError(f"crops {cfg.crops}: the side of the crops must be at least 1 pixel (0: no crops)",
                         settings=("crops",))
    if isinstance(cfg.model, str) and cfg.model == IDENTITY:
        if cfg.weights is not None:
            raise UsageError(f"weights {cfg.weights}: model identity scores the blurry input and takes no weights; "
                             "leave out weights, or pass model NAME for the network they hold", settings=("weights", "model"))
        if cfg.model_config:
            raise UsageError("model_config is given, but model identity scores the blurry input and has no "
                             "config; pass model NAME, or leave out model_config", settings=("model_config", "model"))
        if cfg.tta:
            raise UsageError("tta is given, but model identity scores the blurry input and runs no network; "
                             "pass model NAME, or leave out tta", settings=("tta", "model"))
    if cfg.lpips_weights is not None:
        _check_lpips_file(Path(cfg.lpips_weights))
    check_deblur_options(tile=cfg.tile, overlap=cfg.overlap, device=cfg.device, precision=cfg.precision)
    if isinstance(cfg.model, str) and cfg.model != IDENTITY:
        from dpdeblur.models.registry import check_model_config, get_card

        check_model_config(get_card(cfg.model).name, cfg.model_config)


def _data_files(cfg: QualityConfig) -> tuple[list[Path], set[Path]]:
    """``(files, folders)`` this run reads: the files of the data set (every split it has, the
    scored one first; scene lists) and the folders that hold its images."""
    from dpdeblur.data import find_pairs
    from dpdeblur.data.layouts import FOLDER, PIXEL4, get_layout
    from dpdeblur.errors import DpdeblurError

    layout = get_layout(cfg.dataset, "bench quality")
    root = Path(cfg.data_root) if cfg.data_root is not None else None
    files: list[Path] = []
    folders: set[Path] = set()
    if root is not None and layout is not FOLDER:
        files += [root / "indoor.txt", root / "outdoor.txt"]
    if layout is PIXEL4:
        if root is not None:
            folders |= {root, root / PIXEL4.GT_DIR, root / PIXEL4.CALIB_DIR}
        return files, folders
    images = find_pairs(cfg.dataset, cfg.data_root, cfg.split, **cfg.folders)  # the scored split: errors count
    sets = [images]
    for other in layout.splits if layout is not FOLDER else ():
        if other != cfg.split:
            try:
                sets.append(find_pairs(cfg.dataset, cfg.data_root, other))
            except DpdeblurError:  # a split the set does not have
                pass
    for im in sets:
        for smp in im.samples:
            files += smp.files()
            folders |= {p.parent for p in smp.files()}
    if layout is FOLDER:
        folders |= {Path(p) for p in cfg.folders.values() if p is not None}
    return files, folders


def check_quality_outputs(cfg: QualityConfig, outputs: dict[str, str | Path | None],
                          images_dir: str | Path | None = None) -> None:
    """Usage errors before any image is scored, for outputs that cannot be written or would
    destroy an input: ``outputs`` (setting -> file, e.g. ``{"report": ..., "csv": ...}``) on a
    file of the data set, the weights, the LPIPS weights or the scene list, or in a folder of
    the data set; ``images_dir`` (the crops' folder, setting ``save_images``) inside the data
    root or a folder of the data set, or where no folder can be made."""
    from dpdeblur.bench.report import _within, check_output_files
    from dpdeblur.utils.atomic import check_output_folder

    files, folders = _data_files(cfg)
    inputs = {"weights": cfg.weights, "lpips_weights": cfg.lpips_weights, "scene_list": cfg.scene_list}
    check_output_files(outputs, inputs, files, folders, what=f"{cfg.dataset} data set")
    if images_dir is None:
        return
    d = Path(images_dir)
    check_output_folder(d, "save_images")
    roots = ([Path(cfg.data_root)] if cfg.data_root is not None else []) + sorted(folders)
    for f in roots:
        if _within(d, f):
            raise UsageError(f"save_images {d}: lies in {f}, which holds the {cfg.dataset} data set this run "
                             "reads; the crops would join the data set, write them elsewhere", settings=("save_images",))


def _scored_model(cfg: QualityConfig):
    """``(Deblurrer or None for identity, row name)`` of the (resolved) model ``cfg`` scores."""
    from dpdeblur.inference.pipeline import Deblurrer

    if isinstance(cfg.model, str) and cfg.model == IDENTITY:
        return None, IDENTITY
    d = Deblurrer(cfg.model, cfg.weights, cfg.model_config, tile=cfg.tile, overlap=cfg.overlap,
                  device=cfg.device, precision=cfg.precision, tta=cfg.tta)
    return d, cfg.model if isinstance(cfg.model, str) else (d.card.name if d.card else type(cfg.model).__name__)


def bench_quality(cfg: QualityConfig, on_image: Callable[[int, int, str], None] | None = None):
    """Score ``cfg.model`` (and the identity baseline) on a data set split.

    Returns ``(report, crops)``: the ``quality`` report dict and, when ``cfg.crops`` > 0,
    id -> side-by-side uint8 crop of the scored model (for :func:`save_crops`).
    ``on_image(done, total, id)`` reports progress.
    """
    from dpdeblur.data import check_fit, find_pairs
    from dpdeblur.data.layouts import PIXEL4, get_layout
    from dpdeblur.inference.pipeline import Loaded

    cfg = resolve_quality_model(cfg)  # once: the check below then finds the model named
    check_quality_config(cfg)
    layout = get_layout(cfg.dataset, "bench quality")
    if layout is PIXEL4:
        return _bench_pixel4(cfg, on_image)
    images = find_pairs(cfg.dataset, cfg.data_root, cfg.split, **cfg.folders)
    dataset = images.name
    samples = images.samples
    if cfg.ids:
        by_id = {smp.id: smp for smp in samples}
        missing = [i for i in cfg.ids if i not in by_id]
        if missing:
            raise DataError(f"{cfg.data_root}: no image {', '.join(missing[:5])} in {cfg.dataset} {cfg.split} "
                            f"(ids are file stems, e.g. {', '.join(list(by_id)[:3])})")
        samples = [by_id[i] for i in dict.fromkeys(cfg.ids)]
    samples = samples[: cfg.limit] if cfg.limit else samples
    deblurrer, name = _scored_model(cfg)
    if deblurrer is not None and deblurrer.card is not None:
        check_fit(images, deblurrer.card)
    deformed = cfg.deformed_gt if cfg.deformed_gt is not None else layout.deformed_gt
    labels = scene_labels(cfg.data_root, cfg.scene_list) if layout.scene_labels or cfg.scene_list else {}
    lpips, lpips_note = _lpips_fn(cfg.lpips_weights)
    estimator = None
    if deformed:
        from dpdeblur.flow import DISFlow

        estimator = DISFlow("medium")

    per_image: list[dict[str, Any]] = []
    crops: dict[str, np.ndarray] = {}
    depths: set[int] = set()
    for i, s in enumerate(samples):
        planes, depth = _read_sample(s, deblurrer is not None and deblurrer.dual_pixel)
        _check_size(s, planes["sharp"], cfg.ssim, lpips is not None)
        depths.add(depth)
        outputs = {IDENTITY: planes["blur"]}
        if deblurrer is not None:
            views = {v: planes[v] for v in ("left", "right")} if deblurrer.dual_pixel else None
            outputs[name] = deblurrer.run(Loaded(image=None if views else planes["blur"], views=views, bit_depth=depth))
        for model, out in outputs.items():
            row: dict[str, Any] = {"model": model, "id": s.id, "scene": labels.get(s.id), "bit_depth": depth}
            row.update(score_image(out, planes["sharp"], cfg.ssim, lpips))
            if deformed:
                from dpdeblur.flow.align import deformed_gt

                gt_d = np.clip(deformed_gt(np.clip(out, 0, 1), planes["sharp"], estimator), 0, 1)
                row.update({f"{k}_deformed": v for k, v in score_image(out, gt_d, cfg.ssim).items()})
            per_image.append(row)
        if cfg.crops:
            crops[s.id] = _side_by_side(planes["blur"], outputs[name], planes["sharp"], cfg.crops)
        if on_image:
            on_image(i + 1, len(samples), s.id)

    labelled = any(r["scene"] for r in per_image)
    meta = {
        "dataset": dataset, "split": images.split, "data_root": str(cfg.data_root) if cfg.data_root else None,
        "model": name, "weights": str(cfg.weights) if cfg.weights else None, "model_config": cfg.model_config,
        "n_images": len(samples), "bit_depth": sorted(depths), "ssim_window": cfg.ssim, "lpips": lpips_note,
        "deformed_gt": "DIS optical flow (medium), ground truth warped onto each output" if deformed else None,
        "scene_labels": (f"{sum(1 for s in samples if s.id in labels)} of {len(samples)} images labelled"
                         if labelled else None),
        "tile": cfg.tile, "overlap": cfg.overlap, "tta": cfg.tta,
        "device": str(deblurrer.device) if deblurrer else None, "precision": str(deblurrer.dtype).replace("torch.", "") if deblurrer else None,
    }
    report = {"kind": "quality", "meta": meta, "rows": aggregate(per_image, dataset, labelled), "per_image": per_image}
    return report, crops


def _bench_pixel4(cfg: QualityConfig, on_image: Callable[[int, int, str], None] | None = None):
    """Real Pixel 4 captures (:mod:`dpdeblur.data.pixel4`): the protocol's gain fit, one
    channel, plain and deformed-GT scores for the combined input and the model."""
    from dpdeblur.data import pixel4 as p4
    from dpdeblur.data.layouts import PIXEL4
    from dpdeblur.inference.pipeline import Loaded
    from dpdeblur.io.dualpixel import srgb_decode, srgb_encode

    if cfg.data_root is None:
        raise UsageError(f"dataset pixel4 needs data_root (a folder of {PIXEL4.summary})", settings=("dataset", "data_root"))
    ids = p4.select_scenes(cfg.data_root, cfg.ids)
    ids = ids[: cfg.limit] if cfg.limit else ids
    gain = p4.vignetting_gain(cfg.data_root)
    deblurrer, name = _scored_model(cfg)
    deformed = cfg.deformed_gt is not False
    per_image: list[dict[str, Any]] = []
    crops: dict[str, np.ndarray] = {}
    for i, sid in enumerate(ids):
        scene = p4.load_scene(cfg.data_root, sid, gain)
        # the reference aligned onto the input: the ceiling row, and the input's deformed-GT reference
        aligned = p4.aligned_reference(scene)[0]
        outputs = {IDENTITY: scene.combined}
        if deblurrer is not None:
            outputs[name] = p4.to_linear_gray(deblurrer.run(Loaded(views=p4.model_views(scene, deblurrer.views), bit_depth=16)))
        outputs[p4.CEILING] = srgb_decode(aligned)
        for model, out in outputs.items():
            row: dict[str, Any] = {"model": model, "id": sid, "scene": None, "bit_depth": 16}
            row.update(p4.score(out, scene.gt, cfg.ssim, deformed and model != p4.CEILING,
                                warped_reference=aligned if model == IDENTITY else None))
            per_image.append(row)
        if cfg.crops:
            rgb = {k: np.repeat(srgb_encode(outputs[k])[..., None], 3, axis=2) for k in (IDENTITY, name)}
            truth = np.repeat(srgb_encode(p4.gain_fit(scene.gt, outputs[name]))[..., None], 3, axis=2)
            crops[sid] = _side_by_side(rgb[IDENTITY], rgb[name], truth, cfg.crops)
        if on_image:
            on_image(i + 1, len(ids), sid)
    meta = {
        "dataset": PIXEL4.name, "split": "all", "data_root": str(cfg.data_root), "model": name,
        "weights": str(cfg.weights) if cfg.weights else None, "model_config": cfg.model_config,
        "n_images": len(ids), "bit_depth": [16], "ssim_window": cfg.ssim, "lpips": "not computed for pixel4",
        "protocol": p4.PROTOCOL,
        "deformed_gt": p4.DEFORM_NOTE if deformed else None, "ceiling": p4.CEILING_NOTE, "scene_labels": None,
        "tile": cfg.tile, "overlap": cfg.overlap, "tta": cfg.tta,
        "device": str(deblurrer.device) if deblurrer else None,
        "precision": str(deblurrer.dtype).replace("torch.", "") if deblurrer else None,
    }
    report = {"kind": "quality", "meta": meta, "rows": aggregate(per_image, PIXEL4.name, False), "per_image": per_image}
    return report, crops


# ----------------------------------------------------------------------------- outputs


def _columns(rows: list[dict[str, Any]], first: tuple[str, ...]) -> list[str]:
    order = ["psnr", "ssim", "mae", "lpips", "psnr_deformed", "ssim_deformed", "mae_deformed"]
    return [*first, *(c for c in order if any(c in r for r in rows))]


def table_columns(report: dict[str, Any]) -> list[str]:
    """Columns of the aggregate table (those some row has)."""
    return _columns(report["rows"], ("model", "dataset", "subset", "n"))


def per_image_csv(report: dict[str, Any]) -> str:
    """CSV text, one line per (model, image)."""
    import csv
    import io

    cols = _columns(report["per_image"], ("model", "id", "scene", "bit_depth"))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in report["per_image"]:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in cols})
    return buf.getvalue()


def quality_markdown(report: dict[str, Any]) -> str:
    """The aggregate table as Markdown with a caption naming the protocol."""
    from dpdeblur.bench.report import markdown_table

    m = report["meta"]
    notes = [f"SSIM window: {m['ssim_window']}", f"LPIPS: {m['lpips']}", f"bit depth: {'/'.join(map(str, m['bit_depth']))}"]
    if m.get("protocol"):
        notes.append(m["protocol"])
    if m.get("deformed_gt"):
        notes.append(f"*_deformed: {m['deformed_gt']}")
    return markdown_table(report["rows"], table_columns(report)) + "\n" + "; ".join(notes) + ".\n"
