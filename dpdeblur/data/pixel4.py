"""Real dual-pixel captures of a Google Pixel 4 in Xin et al.'s layout, and their scoring protocol.

Data: Xin, Wadhwa, Xue, Barron, Srinivasan, Chen, Garg, Levin, Defocus Map Estimation and
Deblurring from a Single Dual-Pixel Image (ICCV 2021, arXiv:2110.05655). Layout of a root
(defined by :data:`dpdeblur.data.layouts.PIXEL4`)::

    <id>_left.png, <id>_right.png          one-channel 16-bit views (2016x1512, 14-bit
                                           linear, black level 1024)
    gt_all_in_focus/<id>_gt.png            all-in-focus reference of the CENTRAL crop
                                           (1344x1008), focus-stacked, another intensity scale
    calibration/white_sheet_{left,right}.png   white sheet seen by both views (vignetting)
    calibration/blur_kernels_{left,right}.npy  measured PSFs (used by ``synth --psf-bank``)

Protocol (:func:`load_scene` then :func:`score_scene`):

1. views: ``(raw - black) / (white - black)`` (linear, [0, 1]);
2. complementary vignetting: the right view is multiplied by ``box(W_L) / box(W_R)``,
   the ratio of the black-subtracted white sheets smoothed with a 101x101 box (Xin et al.);
3. the central crop of the reference's size (1344x1008 of 2016x1512);
4. the model sees the views as the Pixel reader delivers them (sRGB transfer, one channel
   repeated on R, G, B); the combined input is the mean of the two views;
5. scoring: the output is decoded to linear light and reduced to one channel; the
   reference is scaled by the least-squares gain ``g = <out, gt> / <gt, gt>`` (exposure
   differs), and both are sRGB-encoded before PSNR / SSIM / MAE. The deformed-GT numbers
   warp the gain-fitted reference onto the output first (the focus-stacked reference is
   misaligned by 1-3 px), as JDRL does for SDD, but with an affine transform estimated by
   ECC instead of a dense flow, which could explain blur away.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dpdeblur.data.layouts import PIXEL4
from dpdeblur.errors import DataError
from dpdeblur.io.dualpixel import PIXEL_BLACK, PIXEL_WHITE

__all__ = ["PIXEL4_BLACK", "PIXEL4_WHITE", "Pixel4Scene", "scene_ids", "select_scenes", "load_scene", "vignetting_gain",
           "gain_fit", "to_linear_gray", "model_views", "deform_reference", "aligned_reference", "score",
           "write_pairs", "PROTOCOL", "DEFORM_NOTE", "CEILING", "CEILING_NOTE"]

PIXEL4_BLACK, PIXEL4_WHITE = float(PIXEL_BLACK), float(PIXEL_WHITE)  # the sensor's levels (dpdeblur.io.dualpixel)
VIGNETTING_BOX = 101
#: the deformed-GT alignment is matched on both images smoothed by this Gaussian (pixels). It is
#: affine, not a dense flow: the focus stack's misalignment on these captures measures as a
#: 1-3 px shift and a ~0.5% scale difference, while dense DIS flow between a sharp reference
#: and a blurry output "explained" blur with vectors of 50-100 px and moved scores by up to
#: 1.7 dB between two outputs that differ by 0.01 dB in plain PSNR.
ALIGN_SIGMA = 2.0
PROTOCOL = ("pixel4 protocol: black 1024, white-sheet vignetting gain on the right view, central crop, one channel; "
            "reference scaled by a least-squares gain in linear light, scores on sRGB-encoded images")
DEFORM_NOTE = (f"reference warped onto each output by an affine transform (ECC on both images smoothed, "
               f"sigma {ALIGN_SIGMA:g} px)")
#: Row name of the plain-PSNR ceiling: the reference itself, aligned onto the combined input.
CEILING = "aligned-reference"
CEILING_NOTE = (f"{CEILING}: the reference warped onto the combined input, i.e. a perfect deblur that keeps the "
                "input's geometry; its plain scores are the ceiling of any such output (the focus stack is "
                "misaligned with the views)")


@dataclass
class Pixel4Scene:
    """One scene, cropped to the reference: every array :math:`(H, W)` float32, linear."""

    id: str
    left: np.ndarray
    right: np.ndarray
    gt: np.ndarray  # reference in its own scale, [0, 1] of 16 bits

    @property
    def combined(self) -> np.ndarray:
        return 0.5 * (self.left + self.right)


def _read16(path: Path) -> np.ndarray:
    from dpdeblur.io.dualpixel import read_sensor_image

    a = read_sensor_image(path)
    if a.ndim != 2:
        raise DataError(f"{path}: {a.shape[2]} channels; the Pixel 4 layout stores one-channel 16-bit images")
    return a.astype(np.float32)


#: Ids of the scenes that have both views and a reference (sorted).
scene_ids = PIXEL4.scene_ids


def select_scenes(root: str | Path, ids: list[str] | tuple[str, ...] | None = None) -> list[str]:
    """The scene ids of ``root`` (all, sorted, or ``ids`` in their order); an unknown id is a
    :class:`DataError` naming the ones that exist."""
    have = scene_ids(root)
    if not have:
        raise DataError(f"{root}: no Pixel 4 scenes ({PIXEL4.summary})")
    if not ids:
        return have
    missing = [i for i in ids if i not in have]
    if missing:
        raise DataError(f"{root}: no scene {', '.join(missing)}; scenes here: {', '.join(have)}")
    return list(dict.fromkeys(ids))


def vignetting_gain(root: str | Path, black: float = PIXEL4_BLACK) -> np.ndarray | None:
    """``box(W_L) / box(W_R)`` from ``calibration/white_sheet_*.png`` (None when absent)."""
    import cv2

    wl, wr = (PIXEL4.white_sheet(root, v) for v in ("left", "right"))
    if not (wl.is_file() and wr.is_file()):
        return None
    a, b = (np.clip(_read16(p) - black, 1.0, None) for p in (wl, wr))
    k = (VIGNETTING_BOX, VIGNETTING_BOX)
    return (cv2.blur(a, k, borderType=cv2.BORDER_REFLECT) / cv2.blur(b, k, borderType=cv2.BORDER_REFLECT)).astype(np.float32)


def _centre(a: np.ndarray, h: int, w: int) -> np.ndarray:
    H, W = a.shape[:2]
    if H < h or W < w:
        raise DataError(f"views {W}x{H} are smaller than the reference {w}x{h}")
    t, l = (H - h) // 2, (W - w) // 2
    return a[t : t + h, l : l + w]


def load_scene(root: str | Path, scene: str, gain: np.ndarray | None = None,
               black: float = PIXEL4_BLACK, white: float = PIXEL4_WHITE) -> Pixel4Scene:
    """Steps 1-3 of the protocol for one scene (``gain`` from :func:`vignetting_gain`)."""
    root = Path(root)
    left, right = (np.clip((_read16(PIXEL4.view_path(root, scene, v)) - black) / (white - black), 0, 1) for v in ("left", "right"))
    if left.shape != right.shape:
        raise DataError(f"{PIXEL4.view_path(root, scene, 'left')}: views differ in size {left.shape} vs {right.shape}")
    if gain is not None:
        if gain.shape != right.shape:
            raise DataError(f"{root / PIXEL4.CALIB_DIR}: white sheets {gain.shape[::-1]} differ from the views {right.shape[::-1]}")
        right = right * gain
    gt = _read16(PIXEL4.gt_path(root, scene)) / 65535.0
    h, w = gt.shape
    return Pixel4Scene(scene, _centre(left, h, w).copy(), _centre(right, h, w).copy(), gt)


def to_linear_gray(img: np.ndarray) -> np.ndarray:
    """A model output (sRGB-encoded :math:`(H, W, 3)` or :math:`(H, W)`) -> linear one channel."""
    from dpdeblur.io.dualpixel import srgb_decode

    a = srgb_decode(img)
    return a.mean(axis=2) if a.ndim == 3 else a


def gain_fit(gt: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``g * gt`` with the least-squares gain ``g = <out, gt> / <gt, gt>`` (linear arrays)."""
    g = float(np.sum(out.astype(np.float64) * gt) / max(float(np.sum(gt.astype(np.float64) ** 2)), 1e-12))
    return (g * gt).astype(np.float32)


def model_views(scene: Pixel4Scene, order: tuple[str, ...] = ("left", "right")) -> dict[str, np.ndarray]:
    """The views as the model sees them: sRGB-encoded linear values, one channel on R, G, B."""
    from dpdeblur.io.dualpixel import srgb_encode

    return {v: np.repeat(srgb_encode(getattr(scene, v))[..., None], 3, axis=2) for v in (order or ("left", "right"))}


def _align(out: np.ndarray, ref: np.ndarray):
    from dpdeblur.flow.affine import align_affine

    warped, fit = align_affine(out, ref, ALIGN_SIGMA)
    return np.clip(warped, 0, 1), fit


def deform_reference(out: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``ref`` warped onto ``out`` (both :math:`(H, W)` in [0, 1], encoded) by the affine
    transform that ECC finds between them (:mod:`dpdeblur.flow.affine`)."""
    return _align(out, ref)[0]


def aligned_reference(scene: Pixel4Scene):
    """The reference as a training target for ``scene``: gain-fitted to the combined view in
    linear light, sRGB-encoded, then warped onto the encoded combined view by the affine fit.
    This is also the combined input's deformed-GT reference in :func:`score`.
    Returns ``(target (H, W) float32 in [0, 1], AffineFit)``."""
    from dpdeblur.io.dualpixel import srgb_encode

    return _align(srgb_encode(scene.combined), srgb_encode(gain_fit(scene.gt, scene.combined)))


def write_pairs(root: str | Path, out: str | Path, scenes: list[str] | None = None, split: str = "train",
                overwrite: bool = False, on_scene=None) -> list[dict]:
    """Write Pixel 4 scenes as a DPDD-layout training root (``dpdeblur train --dataset dpdd``):
    ``<split>_l/source/p4_<id>_L.png``, ``<split>_r/source/p4_<id>_R.png`` (the views as the
    model sees them), ``<split>_c/source/p4_<id>.png`` (combined) and
    ``<split>_c/target/p4_<id>.png`` (:func:`aligned_reference`), all 16-bit, three equal
    channels. Existing files are kept unless ``overwrite``. Returns one record per scene
    (id, files, affine matrix, ECC correlation, ``skipped``; ``error`` for a scene that failed,
    whose files are not written while the other scenes go on); ``on_scene(done, total, id)``."""
    import warnings

    from dpdeblur.data.layouts import DPDD
    from dpdeblur.errors import DpdeblurError
    from dpdeblur.io.dualpixel import srgb_encode
    from dpdeblur.io.images import write_image
    from dpdeblur.utils.atomic import atomic_group

    DPDD.check_split(split)
    root, out = Path(root), Path(out)
    ids = select_scenes(root, scenes)
    gain = vignetting_gain(root)
    records = []
    for n, sid in enumerate(ids, 1):
        item = f"p4_{sid}"
        paths = DPDD.item_paths(out, split, item)
        files = {k: paths[k] for k in ("left", "right", "combined", "sharp")}
        rec: dict = {"id": sid, "files": {k: str(v) for k, v in files.items()}}
        if not overwrite and all(p.is_file() for p in files.values()):
            rec["skipped"] = True
        else:
            try:  # a bad scene is reported in its record and the others go on; its files: all or none
                scene = load_scene(root, sid, gain)
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    target, fit = aligned_reference(scene)
                for w in caught:  # said again naming the scene
                    warnings.warn(f"scene {sid}: {w.message}", w.category, stacklevel=2)
                planes = {**model_views(scene), "combined": srgb_encode(scene.combined), "sharp": target}
                with atomic_group(files) as tmp:
                    for k, p in tmp.items():
                        a = planes[k]
                        write_image(p, a if a.ndim == 3 else np.repeat(a[..., None], 3, axis=2), 16)
            except DpdeblurError as e:
                rec.update(skipped=False, error=str(e))
            else:
                rec.update(skipped=False, affine=np.round(fit.matrix, 5).tolist(),
                           ecc=round(fit.cc, 5) if np.isfinite(fit.cc) else None, converged=fit.converged)
        records.append(rec)
        if on_scene:
            on_scene(n, len(ids), sid)
    return records


def score(out_linear: np.ndarray, gt: np.ndarray, ssim_window: str = "wang", deformed: bool = True,
          warped_reference: np.ndarray | None = None) -> dict[str, float]:
    """Protocol step 5: PSNR / SSIM / MAE of a linear one-channel result against the reference
    (gain-fitted, sRGB-encoded), plus ``*_deformed`` against the reference warped onto it
    (``warped_reference``, when that warp is already known, e.g. :func:`aligned_reference` for
    the combined input)."""
    from dpdeblur.io.dualpixel import srgb_encode
    from dpdeblur.metrics import compute_metrics_np

    o = srgb_encode(out_linear)
    g = srgb_encode(gain_fit(gt, out_linear))
    row = compute_metrics_np(o, g, ssim_window)
    if deformed:
        warped = deform_reference(o, g) if warped_reference is None else warped_reference
        row.update({f"{k}_deformed": v for k, v in compute_metrics_np(o, warped, ssim_window).items()})
    return row
