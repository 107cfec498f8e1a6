"""Align ground truth to blurry inputs (``dpdeblur align``) and JDRL's deformed-GT protocol.

For each pair (id, blurry, sharp): flow on the blurry image's grid into the sharp
one (the sharp image Gaussian-blurred before matching), then write::

    <out>/gt/<id>.png      sharp image deformed onto the blurry one (source bit depth)
    <out>/mask/<id>.png    calibration mask (Eq. 4), 255 = kept
    <out>/flow/<id>.npy    flow (2, H, W) float16, pixels (x, y): JDRL warm-up's flow_init
    <out>/summary.json     batch report; per pair: mean flow, mean dx/dy, fraction masked

Any source of pairs works: :func:`paired_folders` for two folders matched by file
stem, or a data set object yielding ``(id, blur_path, sharp_path)``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from dpdeblur.data.layouts import ALIGNED
from dpdeblur.errors import DataError
from dpdeblur.flow.estimators import DISFlow, FlowEstimator
from dpdeblur.flow.warp import calibration_mask, warp

__all__ = [
    "Pair", "AlignResult", "paired_folders", "align_pair", "deformed_gt",
    "save_flow", "load_flow", "align_pairs",
]


@dataclass(frozen=True)
class Pair:
    id: str
    blur: Path
    sharp: Path


@dataclass
class AlignResult:
    deformed: np.ndarray  # (H, W, 3) float32, sharp deformed onto blurry
    mask: np.ndarray  # (H, W) bool, calibration mask
    flow: np.ndarray  # (2, H, W) float32, on the blurry grid into the sharp image
    stats: dict[str, float]


def paired_folders(blur_dir: str | Path, sharp_dir: str | Path) -> list[Pair]:
    """Pairs of images with the same stem in two folders (sorted by id).

    Raises :class:`DataError` when a folder is missing, empty or has unpaired images.
    """
    from dpdeblur.io.images import IMAGE_EXTS

    def stems(d: Path) -> dict[str, Path]:
        if not d.is_dir():
            raise DataError(f"{d}: {'is a file, not a folder' if d.exists() else 'no such folder'}; give the folder of images")
        out: dict[str, Path] = {}
        for f in sorted(d.iterdir()):
            if f.suffix.lower() in IMAGE_EXTS and not f.name.startswith("."):
                if f.stem in out:
                    raise DataError(f"{out[f.stem]} and {f.name}: two images of one name in {d}; keep one (pairs match by name)")
                out[f.stem] = f
        return out

    b, s = stems(Path(blur_dir)), stems(Path(sharp_dir))
    if not b:
        raise DataError(f"{blur_dir}: no images; pass the folder of blurry images as blur", settings=("blur",))
    missing = sorted(set(b) ^ set(s))
    if missing:
        raise DataError(
            f"{len(missing)} unpaired image(s), e.g. {missing[0]!r}: blur and sharp must hold files with the same names",
            settings=("blur", "sharp"))
    return [Pair(k, b[k], s[k]) for k in sorted(b)]


def _tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32)).permute(2, 0, 1)[None]


def align_pair(
    blur: np.ndarray,
    sharp: np.ndarray,
    estimator: FlowEstimator | None = None,
    sharp_sigma: float = 2.0,
    lam: float = 0.35,
    min_tol: float = 0.5,
) -> AlignResult:
    """Deform ``sharp`` (H, W, 3 float [0, 1]) onto ``blur`` and measure the misalignment."""
    if blur.shape != sharp.shape:
        raise DataError(f"blurry {blur.shape[:2]} and sharp {sharp.shape[:2]} images differ in size")
    est = estimator or DISFlow("medium")
    tb, ts = _tensor(blur), _tensor(sharp)
    f = est(tb, ts, smooth_mov=sharp_sigma)
    mask = calibration_mask(f, lam, min_tol)
    deformed = warp(ts, f)[0].permute(1, 2, 0).clamp(0, 1).numpy()
    mag = f.norm(dim=1)
    stats = {
        "mean_flow": float(mag.mean()),
        "max_flow": float(mag.max()),
        "mean_dx": float(f[:, 0].mean()),
        "mean_dy": float(f[:, 1].mean()),
        "masked_fraction": float(1 - mask.mean()),
    }
    return AlignResult(deformed, mask[0, 0].bool().numpy(), f[0].numpy(), stats)


def deformed_gt(output, gt, estimator: FlowEstimator | None = None):
    """JDRL's evaluation protocol: ``gt`` warped onto ``output`` by the flow between them.

    Accepts tensors :math:`(B, 3, H, W)` (returns a tensor on their device) or
    arrays (H, W, 3) float (returns an array).
    """
    est = estimator or DISFlow("medium")
    if isinstance(output, np.ndarray):
        o, g = _tensor(output), _tensor(gt)
        return warp(g, est(o, g))[0].permute(1, 2, 0).numpy()
    with torch.no_grad():
        return warp(gt, est(output, gt))


def save_flow(path: str | Path, flow: np.ndarray) -> None:
    """Atomically write a (2, H, W) flow as float16 ``.npy``."""
    from dpdeblur.utils.atomic import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, np.asarray(flow, dtype=np.float16))


def load_flow(path: str | Path, mmap: bool = False) -> np.ndarray:
    """Read a flow cache written by :func:`save_flow` -> (2, H, W) float32
    (``mmap=True``: a read-only memory map in the stored dtype, for cropping)."""
    from dpdeblur.errors import InputError

    try:
        flow = np.load(path, mmap_mode="r") if mmap else np.load(path).astype(np.float32)
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: unreadable flow cache ({e}); re-run `dpdeblur align --overwrite`") from None
    if flow.ndim != 3 or flow.shape[0] != 2:
        raise InputError(f"{path}: flow cache of shape {flow.shape}, expected (2, H, W); re-run `dpdeblur align --overwrite`")
    return flow


#: Smallest image side the optical flow (OpenCV DIS) takes.
MIN_SIDE = 16


def _check_outputs_apart(items: list[Pair], out: Path) -> None:
    """Usage error, before any work, when the outputs would land among the inputs: ``out``'s
    ``gt/``, ``mask/`` or ``flow/`` folder is a folder of blurry or sharp images (the aligned
    ground truth would replace the sharp originals)."""
    from dpdeblur.errors import UsageError

    if not items:
        return
    sources = {p.blur.parent.resolve() for p in items} | {p.sharp.parent.resolve() for p in items}
    for q in ALIGNED.item_paths(out, items[0].id).values():
        if q.parent.resolve() in sources:
            raise UsageError(f"out {out}: its {q.parent.name}/ folder {q.parent} holds input images, which the "
                             "outputs would replace; choose another output folder", settings=("out",))


def align_pairs(
    pairs: Iterable[Pair | tuple[str, Any, Any]],
    out_dir: str | Path,
    estimator: FlowEstimator | None = None,
    sharp_sigma: float = 2.0,
    lam: float = 0.35,
    overwrite: bool = False,
    progress: bool = True,
):
    """Align every pair and write the files above. Returns a
    :class:`~dpdeblur.utils.batch.BatchReport` (per-pair stats in ``item.info``)."""
    from dpdeblur.io.images import read_image, write_image
    from dpdeblur.utils.atomic import atomic_group, atomic_write_text
    from dpdeblur.utils.batch import ItemResult, run_batch

    out = Path(out_dir)
    est = estimator or DISFlow("medium")
    items = [p if isinstance(p, Pair) else Pair(str(p[0]), Path(p[1]), Path(p[2])) for p in pairs]
    _check_outputs_apart(items, out)

    def one(p: Pair) -> ItemResult:
        paths = list(ALIGNED.item_paths(out, p.id).values())  # gt, mask, flow
        if not overwrite and all(q.is_file() for q in paths):
            return ItemResult(p.id, status="skipped", outputs=[str(q) for q in paths])
        blur, sharp = read_image(p.blur), read_image(p.sharp)
        if blur.rgb.shape != sharp.rgb.shape:
            raise DataError(f"{p.sharp}: size {sharp.rgb.shape[:2]} differs from {p.blur} {blur.rgb.shape[:2]}")
        h, w = blur.rgb.shape[:2]
        if min(h, w) < MIN_SIDE:
            raise DataError(f"{p.blur}: {w}x{h} pixels; optical flow needs images of at least {MIN_SIDE}x{MIN_SIDE}")
        r = align_pair(blur.rgb, sharp.rgb, est, sharp_sigma, lam)
        with atomic_group(dict(enumerate(paths))) as tmp:  # gt, mask and flow of a pair: all or none
            write_image(tmp[0], r.deformed, bit_depth=16 if sharp.bit_depth > 8 else 8)
            write_image(tmp[1], r.mask.astype(np.uint8) * 255, bit_depth=8)
            save_flow(tmp[2], r.flow)
        return ItemResult(p.id, outputs=[str(q) for q in paths], info=r.stats)

    report = run_batch(items, one, label="align", name=lambda p: p.id, progress=progress)
    done = [i.info for i in report.items if i.status == "ok"]
    summary = report.to_dict()
    if done:
        summary["mean"] = {k: float(np.mean([d[k] for d in done])) for k in done[0]}
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2))
    return report, summary
