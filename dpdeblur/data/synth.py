"""Dual-pixel defocus simulator (``dpdeblur synth``).

Model (thin lens, per pixel or per fronto-parallel layer):

- inverse depth ``w = 1/d`` (a disparity map is used as ``w`` directly); the
  signed defocus radius is ``r = K * (w_f - w)`` with ``w_f`` the focus plane:
  ``r > 0`` behind the focal plane (farther), ``r < 0`` in front of it. ``K`` (the
  aperture) is set per image so the largest ``|r|`` equals a peak radius drawn in
  ``[max_radius/6, max_radius]``.
- the point-spread function of each view (``--psf``): ``disc``, the two halves of an
  anti-aliased disc of radius ``|r|`` (:func:`dp_psf`: left half (``x < 0``) to the
  left view when ``r > 0``, the right half when ``r < 0``); ``parametric`` (default),
  an apodised aperture split softly in two, with cross-talk, a cat's eye off axis and
  optical softening, drawn per image; or a camera's measured kernels (``--psf-bank``),
  picked by image position and resampled by ``r / ref_radius``. In every case defocus
  shifts the two views in opposite horizontal directions and the direction flips at
  focus (the kernels' point reflection).
- radii are quantised (``radius_step``) and rendered as layers back to front with
  occlusion-aware "over" compositing, one ``cv2.filter2D`` per layer and view on
  the layer's bounding box only (no per-pixel Python loops).
- sensor: each photodiode gets half the light (``half = view / 2``), optional
  complementary vignetting (gains ``1 -/+ v*x``, x in [-1, 1] across the width,
  sum 2), shot + read noise on each half, ``combined = half_L + half_R``.

Realism (default): sources are sRGB-decoded to linear light and given a drawn exposure,
colour cast or monochrome; the PSFs are parametric dual-pixel kernels or a camera's
measured bank (:mod:`dpdeblur.data.psf`); then the tone curve of the views (sRGB or a
plain gamma) and, sometimes, 8-bit steps. The ground truth goes through the same
exposure and tone curve.

Brightness convention (as DPDD / Canon DP data: "x2 to
match the combined image"): written views are ``left = 2*half_L``,
``right = 2*half_R``, so ``combined = (left + right) / 2`` in linear light (exact
before clipping and 16-bit rounding) and an in-focus pixel has ``left == right == combined ==
sharp``. Without a depth map the data set uses layered random planes.

Arrays are :math:`(H, W, 3)` float32 RGB in [0, 1]; depth maps :math:`(H, W)`.
"""

from __future__ import annotations

import functools
import json
import math
import threading
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from dpdeblur.choices import DEPTH_KINDS, PSF_KINDS, TONES
from dpdeblur.data.layouts import DPDD
from dpdeblur.errors import InputError, UsageError

__all__ = [
    "SynthParams", "dp_psf", "signed_radius", "render_layers", "sensor", "synthesize_pair",
    "synthesize_layered", "read_depth", "parse_size", "parse_split", "parse_range", "make_dataset", "SPLITS",
]

SPLITS = DPDD.splits
DEPTH_EXTS = (".npy", ".npz", ".pfm", ".png", ".tif", ".tiff")
CONVENTIONS = {
    "light": "blur, vignetting and noise in linear light (sources sRGB-decoded) unless params.linear is false; then the tone curve",
    "views_brightness": "left/right written x2 (each photodiode holds half the light): combined = (left + right) / 2 in linear light",
    "radius_sign": "r = K * (1/d_focus - 1/d): r > 0 behind the focal plane, r < 0 in front",
    "view_psf": "r > 0: left view = left part of the aperture (light lands left of the point); r < 0: point reflection of the kernels",
    "psf": "parametric (apodised, soft left/right split, cat's eye), disc (clean halves) or a measured bank resampled by r / ref_radius",
    "vignetting": "gain_left = 1 - v*x, gain_right = 1 + v*x, x in [-1, 1] left to right (sum 2)",
    "noise": "per photodiode half (linear): half + N(0, s^2 * half + (s/8)^2), s log-uniform in [noise/10, noise] per image",
    "target": "the sharp image through the same exposure, colour and tone curve as the views (no blur, noise or vignetting)",
}




@dataclass
class SynthParams:
    """Simulator settings; per-image values are drawn from these ranges.

    Attributes:
        max_radius: largest defocus radius in pixels (per-image peak drawn in
            [max/6, max]; with a PSF bank, the bank's equivalent disc radius scaled).
        focus: focus distance in the depth map's units (disparity units for
            ``depth_kind='disparity'``, metres for layered planes); None = random.
        depth_kind: ``'depth'`` (w = 1/d) or ``'disparity'`` (w = d).
        noise: largest shot-noise level ``s`` (linear, fraction of full scale; drawn
            log-uniformly in [s/10, s] per image, read noise s/8); 0 = none.
        vignetting: largest complementary vignetting strength ``v``; 0 = none.
        radius_step: radius quantisation in pixels (one layer per level).
        layers: (min, max) number of planes in layered mode, background included.
        psf: ``'parametric'`` (apodised, soft-split, cat's-eye dual-pixel PSFs,
            :mod:`dpdeblur.data.psf`) or ``'disc'`` (clean half-discs).
        psf_bank: folder of a camera's measured kernels (:class:`~dpdeblur.data.psf.PSFBank`);
            used instead of ``psf`` for a ``bank_share`` of the images (default all).
        linear: blur, vignetting and noise in linear light (sources are sRGB-decoded first).
        tone: encoding of every written image: ``'srgb'``, ``'gamma'`` (plain power
            1/1.8 to 1/2.4), ``'mixed'`` (either, per image) or ``'none'`` (as computed).
        exposure: (lo, hi) range of the linear 99th percentile the scene is scaled to
            (under-exposed raw views sit near 0.3-0.5); None = no scaling.
        white_balance: largest per-channel gain deviation (colour casts); 0 = none.
        gray: probability that an image is monochrome (one-channel sensors such as the
            Pixel's dual-pixel green plane, repeated on R, G, B).
        bits8: probability that the blurry images are quantised to 8 bits.
    """

    max_radius: float = 24.0
    focus: float | None = None
    depth_kind: str = "depth"
    noise: float = 0.02
    vignetting: float = 0.1
    radius_step: float = 0.5
    layers: tuple[int, int] = (2, 5)
    psf: str = "parametric"
    psf_bank: str | None = None
    bank_share: float = 1.0
    linear: bool = True
    tone: str = "mixed"
    exposure: tuple[float, float] | None = (0.2, 1.0)
    white_balance: float = 0.25
    gray: float = 0.15
    bits8: float = 0.25

    def check(self) -> "SynthParams":
        if not (0 <= self.max_radius <= 64):
            raise UsageError(f"max_radius {self.max_radius}: use 0 to 64 pixels", settings=("max_radius",))
        if self.depth_kind not in DEPTH_KINDS:
            raise UsageError(f"depth_kind {self.depth_kind!r}: choose {' or '.join(DEPTH_KINDS)}", settings=("depth_kind",))
        if self.focus is not None and not (self.focus > 0 or self.depth_kind == "disparity"):
            raise UsageError(f"focus {self.focus}: must be > 0 (a distance in depth-map units)", settings=("focus",))
        if not (0 <= self.noise <= 0.5):
            raise UsageError(f"noise {self.noise}: use 0 to 0.5 (fraction of full scale)", settings=("noise",))
        if not (0 <= self.vignetting < 1):
            raise UsageError(f"vignetting {self.vignetting}: use 0 to <1", settings=("vignetting",))
        if self.radius_step <= 0:
            raise UsageError("radius_step must be > 0")
        if self.psf not in PSF_KINDS:
            raise UsageError(f"psf {self.psf!r}: choose {' or '.join(PSF_KINDS)}", settings=("psf",))
        if self.tone not in TONES:
            raise UsageError(f"tone {self.tone!r}: choose one of {', '.join(TONES)}", settings=("tone",))
        if self.exposure is not None and not (0 < self.exposure[0] <= self.exposure[1] <= 4):
            raise UsageError(f"exposure {self.exposure}: write LO,HI with 0 < LO <= HI <= 4", settings=("exposure",))
        if self.psf_bank is not None:
            _bank(str(self.psf_bank))  # a bad bank fails before any work (loaded once, cached)
        for name in ("gray", "bits8", "bank_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise UsageError(f"{name} {getattr(self, name)}: a probability in [0, 1]")
        if not 0 <= self.white_balance < 1:
            raise UsageError(f"white balance {self.white_balance}: use 0 to <1")
        return self


# ----------------------------------------------------------------------------- PSFs


@functools.lru_cache(maxsize=512)
def dp_psf(radius: float, supersample: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Left and right PSFs for a signed defocus ``radius`` (pixels).

    Returns two :math:`(k, k)` float32 arrays (k = 2*ceil(|r| + 0.5) + 1), each
    summing to 0.5, ``left + right`` = the anti-aliased disc (area coverage on a
    ``supersample``² grid), ``left == fliplr(right)``. ``|r| < 0.25`` is a point.
    The arrays are read-only (cached).
    """
    R = abs(float(radius))
    if R < 0.25:
        half = np.full((1, 1), 0.5, np.float32)
        half.flags.writeable = False
        return half, half
    n = int(math.ceil(R + 0.5))
    ss = supersample
    off = (np.arange(ss) + 0.5) / ss - 0.5
    c = (np.arange(-n, n + 1)[:, None] + off[None, :]).reshape(-1)  # sub-sample centres
    inside = (c[None, :] ** 2 + c[:, None] ** 2) <= R * R
    k = 2 * n + 1
    left_ss = inside * (c[None, :] < 0)
    pool = lambda a: a.reshape(k, ss, k, ss).sum(axis=(1, 3)).astype(np.float64)  # noqa: E731
    disc, lhalf = pool(inside), pool(left_ss)
    lhalf = (lhalf / disc.sum()).astype(np.float32)
    rhalf = np.ascontiguousarray(lhalf[:, ::-1])
    left, right = (lhalf, rhalf) if radius > 0 else (rhalf, lhalf)
    for a in (left, right):
        a.flags.writeable = False
    return left, right


def signed_radius(w: np.ndarray, w_focus: float, peak: float) -> tuple[np.ndarray, float]:
    """Signed radius ``K * (w_focus - w)`` for inverse depth ``w``; K makes max |r| = ``peak``.

    Returns the radius map (same shape as ``w``) and K.
    """
    span = float(np.max(np.abs(w_focus - np.asarray(w, np.float64)))) if np.size(w) else 0.0
    K = peak / span if span > 1e-12 else 0.0
    return (K * (w_focus - np.asarray(w, np.float64))).astype(np.float32), K


# ----------------------------------------------------------------------------- rendering


def _convolve_roi(premult: np.ndarray, psf: np.ndarray) -> tuple[np.ndarray, tuple[slice, slice]]:
    """Convolve an (H, W, 4) premultiplied layer with ``psf`` on its bounding box.

    Returns the result on the box grown by the kernel radius and that box's slices.
    """
    import cv2

    alpha = premult[..., 3]
    ys, xs = np.nonzero(alpha.any(axis=1))[0], np.nonzero(alpha.any(axis=0))[0]
    H, W = alpha.shape
    n = psf.shape[0] // 2
    oy0, oy1 = max(0, ys[0] - n), min(H, ys[-1] + 1 + n)
    ox0, ox1 = max(0, xs[0] - n), min(W, xs[-1] + 1 + n)
    iy0, iy1, ix0, ix1 = max(0, oy0 - n), min(H, oy1 + n), max(0, ox0 - n), min(W, ox1 + n)
    src = premult[iy0:iy1, ix0:ix1]
    # filter2D correlates: flip the kernel for a true convolution (light of a point lands on the PSF).
    out = cv2.filter2D(src, -1, psf[::-1, ::-1], borderType=cv2.BORDER_REFLECT) if psf.size > 1 else src * psf[0, 0]
    return out[oy0 - iy0 : oy1 - iy0, ox0 - ix0 : ox1 - ix0], (slice(oy0, oy1), slice(ox0, ox1))


PsfFn = Callable[[float], "tuple[np.ndarray, np.ndarray]"]


def disc_psf(radius: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`dp_psf` at full brightness: the two half-discs, each summing to 1."""
    left, right = dp_psf(float(radius))
    return left * 2.0, right * 2.0


def render_layers(layers: Sequence[tuple[np.ndarray, np.ndarray, float]], psf: PsfFn | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Defocus fronto-parallel layers into the two dual-pixel views (before the sensor).

    Args:
        layers: back to front, each ``(rgb (H, W, 3), alpha (H, W), signed radius)``.
        psf: signed radius -> ``(left, right)`` kernels each summing to 1 (default:
            :func:`disc_psf`, clean half-discs).

    Returns:
        ``(left, right)`` :math:`(H, W, 3)` float32 at full brightness:
        over-compositing of the blurred premultiplied layers, divided by the
        accumulated coverage (fills holes a depth map leaves).
    """
    psf = psf or disc_psf
    H, W = layers[0][1].shape
    views = []
    for v in (0, 1):
        acc = np.zeros((H, W, 4), np.float32)
        for rgb, alpha, r in layers:
            if not alpha.any():
                continue
            premult = np.concatenate([rgb * alpha[..., None], alpha[..., None]], axis=2).astype(np.float32)
            out, box = _convolve_roi(premult, psf(float(r))[v])
            a = np.clip(out[..., 3:4], 0, 1)
            acc[box] = acc[box] * (1 - a) + out
        views.append(acc[..., :3] / np.maximum(acc[..., 3:4], 1e-6))
    return views[0], views[1]


def _bank(path: str):
    """The bank in ``path``, loaded once per version of its files (a rewritten bank is re-read)."""
    from dpdeblur.data.psf import BANK_FILES, BANK_JSON

    p = Path(path)
    folder = p.parent if p.is_file() else p
    stamp = []
    for name in (*BANK_FILES, BANK_JSON):
        try:
            st = (folder / name).stat()
            stamp.append((st.st_mtime_ns, st.st_size))
        except OSError:
            stamp.append(None)
    return _load_bank(path, tuple(stamp))


@functools.lru_cache(maxsize=8)
def _load_bank(path: str, stamp: tuple):
    from dpdeblur.data.psf import PSFBank

    return PSFBank.load(path)


def _optics(params: SynthParams, rng: np.random.Generator, size: tuple[int, int], drawn: dict) -> list[tuple[np.ndarray | None, PsfFn]]:
    """The PSF model of one image: ``[(weight map or None, psf)]`` (weights sum to 1).

    A bank places the image at a random position of the calibrated frame and blends the
    kernels of the grid cells it covers; the parametric model draws one shape per image,
    its cat's eye pointing as at a random frame position.
    """
    from dpdeblur.data.psf import asdict_shape, draw_parametric, parametric_psf

    if params.psf_bank and (params.bank_share >= 1 or rng.random() < params.bank_share):
        bank = _bank(str(params.psf_bank))
        frame = bank.frame_size()
        w, h = size
        origin = (float(rng.uniform(0, max(0, frame[0] - w))), float(rng.uniform(0, max(0, frame[1] - h)))) if frame else (0.0, 0.0)
        drawn.update(psf="bank", bank_origin=[round(v, 1) for v in origin])
        return [(m, functools.partial(bank.kernels, i)) for i, m in bank.cell_weights(size, origin)]
    if params.psf == "parametric":
        shape = draw_parametric(rng)
        drawn.update(psf="parametric", psf_shape=asdict_shape(shape))
        return [(None, functools.partial(parametric_psf, shape=shape))]
    drawn.update(psf="disc")
    return [(None, disc_psf)]


def _render(layers, optics) -> tuple[np.ndarray, np.ndarray]:
    """Render with one PSF model, or blend several by their weight maps (PSF banks). Each
    weighted model is rendered only on its weight's support grown by its largest kernel's
    reach, which gives the same values there as rendering the whole frame."""
    if len(optics) == 1 and optics[0][0] is None:
        return render_layers(layers, optics[0][1])
    H, W = layers[0][1].shape
    left, right = np.zeros((H, W, 3), np.float32), np.zeros((H, W, 3), np.float32)
    for weight, psf in optics:
        ys, xs = np.nonzero(weight.any(axis=1))[0], np.nonzero(weight.any(axis=0))[0]
        if not len(ys):
            continue
        reach = max(max(k.shape[0] for k in psf(float(r))) // 2 for _, _, r in layers)
        y0, y1 = max(0, ys[0] - reach), min(H, ys[-1] + 1 + reach)
        x0, x1 = max(0, xs[0] - reach), min(W, xs[-1] + 1 + reach)
        box = (slice(y0, y1), slice(x0, x1))
        lv, rv = render_layers([(rgb[box], alpha[box], r) for rgb, alpha, r in layers], psf)
        w = weight[box][..., None]
        left[box] += w * lv
        right[box] += w * rv
    return left, right


def sensor(
    left: np.ndarray, right: np.ndarray, noise: float, vignetting: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Photodiode halves with complementary vignetting and shot + read noise.

    ``left``/``right`` are full-brightness views; returns ``(left, right, combined)``
    in the written convention (views x2, ``combined = (left + right) / 2`` before
    clipping). Noise per half: ``N(0, s^2 * half + (s/8)^2)``.
    """
    W = left.shape[1]
    x = np.linspace(-1.0, 1.0, W, dtype=np.float32)[None, :, None]
    halves = [left * 0.5 * (1 - vignetting * x), right * 0.5 * (1 + vignetting * x)]
    if noise > 0:
        halves = [
            h + np.sqrt(noise**2 * np.clip(h, 0, None) + (noise / 8) ** 2) * rng.standard_normal(h.shape, dtype=np.float32)
            for h in halves
        ]
    comb = halves[0] + halves[1]
    return tuple(np.clip(a, 0, 1).astype(np.float32) for a in (2 * halves[0], 2 * halves[1], comb))


def _draw(params: SynthParams, rng: np.random.Generator) -> dict:
    noise = float(params.noise * 10 ** rng.uniform(-1, 0)) if params.noise > 0 else 0.0
    return {
        "peak_radius": float(rng.uniform(params.max_radius / 6, params.max_radius)),
        "noise": noise,
        "vignetting": float(rng.uniform(0, params.vignetting)) if params.vignetting > 0 else 0.0,
    }


def _quantise(r: np.ndarray | float, step: float) -> np.ndarray:
    return np.round(np.asarray(r, np.float32) / step) * step


def _scene(sharp: np.ndarray, params: SynthParams, rng: np.random.Generator, drawn: dict) -> np.ndarray:
    """Scene radiance from a sharp sRGB image: decoded to linear (``params.linear``),
    optionally monochrome, colour-cast and scaled to a drawn exposure."""
    from dpdeblur.io.dualpixel import srgb_decode

    lin = srgb_decode(sharp) if params.linear else np.asarray(sharp, np.float32)
    if params.gray and rng.random() < params.gray:
        lin = np.repeat(lin.mean(axis=2, keepdims=True), 3, axis=2)
        drawn["gray"] = True
    elif params.white_balance:
        g = rng.uniform(1 - params.white_balance, 1 + params.white_balance, 3).astype(np.float32)
        lin = lin * (g / g.max())
        drawn["white_balance"] = [round(float(v), 4) for v in g / g.max()]
    if params.exposure is not None:
        lo, hi = params.exposure
        target = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        p99 = float(np.percentile(lin, 99)) if lin.size else 1.0
        gain = target / max(p99, 1e-3)
        lin = lin * np.float32(gain)
        drawn["exposure_gain"] = round(gain, 4)
    return np.ascontiguousarray(lin, dtype=np.float32)


def _encoder(params: SynthParams, rng: np.random.Generator, drawn: dict) -> Callable[[np.ndarray], np.ndarray]:
    from dpdeblur.io.dualpixel import srgb_encode

    kind = params.tone if params.tone != "mixed" else ("srgb" if rng.random() < 0.65 else "gamma")
    drawn["tone"] = kind
    if kind == "srgb":
        return srgb_encode
    if kind == "gamma":
        g = float(rng.uniform(1.8, 2.4))
        drawn["gamma"] = round(g, 3)
        return lambda a: np.power(np.clip(a, 0, 1), 1 / g).astype(np.float32)
    return lambda a: np.clip(a, 0, 1).astype(np.float32)


def _develop(sharp_lin, left, right, params, rng, drawn) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sensor (vignetting, noise) then the drawn tone curve (and 8-bit quantisation of the
    blurry images): ``(sharp, left, right, combined)`` as written."""
    views = sensor(left, right, drawn["noise"], drawn["vignetting"], rng)
    encode = _encoder(params, rng, drawn)
    out = [encode(np.clip(sharp_lin, 0, 1))] + [encode(v) for v in views]
    if params.bits8 and rng.random() < params.bits8:
        out[1:] = [np.round(a * 255) / 255 for a in out[1:]]
        drawn["bits"] = 8
    return tuple(np.asarray(a, np.float32) for a in out)


def synthesize_pair(
    sharp: np.ndarray,
    depth: np.ndarray | None = None,
    params: SynthParams | None = None,
    rng: np.random.Generator | None = None,
    info: dict | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Dual-pixel views of one sharp image.

    Args:
        sharp: :math:`(H, W, 3)` float32 in [0, 1] (sRGB-encoded when ``params.linear``).
        depth: :math:`(H, W)` depth (or disparity with ``params.depth_kind``); NaN,
            inf and non-positive depths count as unknown (filled with the median).
            None: the whole image is one plane at a random signed radius.
        params: ranges (:class:`SynthParams`); rng: seeded generator.
        info: optional dict filled with the values drawn (focus, K, peak...).

    Returns:
        ``(sharp, left, right, combined)`` each :math:`(H, W, 3)` float32 in [0, 1]:
        the ground truth as written (same exposure and tone as the views) and the views.
    """
    params = (params or SynthParams()).check()
    rng = rng if rng is not None else np.random.default_rng(0)
    sharp = np.asarray(sharp, np.float32)
    drawn = _draw(params, rng)
    lin = _scene(sharp, params, rng, drawn)
    if depth is None:
        r = float(rng.uniform(-1, 1)) * drawn["peak_radius"]
        layers = [(lin, np.ones(sharp.shape[:2], np.float32), float(_quantise(r, params.radius_step)))]
        drawn.update(radius=r)
    else:
        w = _inverse_depth(np.asarray(depth, np.float64), params.depth_kind)
        if params.focus is not None:
            w_f = params.focus if params.depth_kind == "disparity" else 1.0 / params.focus
        else:
            w_f = float(np.quantile(w, rng.uniform(0.05, 0.95)))
        r, K = signed_radius(w, w_f, drawn["peak_radius"])
        q = _quantise(r, params.radius_step)
        levels = np.unique(q)[::-1]  # far (large positive r) first
        layers = [(lin, (q == lv).astype(np.float32), float(lv)) for lv in levels]
        drawn.update(w_focus=float(w_f), K=K, levels=int(len(levels)))
    left, right = _render(layers, _optics(params, rng, (sharp.shape[1], sharp.shape[0]), drawn))
    result = _develop(lin, left, right, params, rng, drawn)
    if info is not None:
        info.update(drawn)
    return result


def _inverse_depth(d: np.ndarray, kind: str) -> np.ndarray:
    valid = np.isfinite(d) & ((d > 0) if kind == "depth" else np.ones_like(d, bool))
    if not valid.any():
        raise InputError("the depth map has no valid value (all NaN, inf or <= 0)")
    w = np.where(valid, 1.0 / np.where(valid, d, 1.0), 0.0) if kind == "depth" else np.where(valid, d, 0.0)
    return np.where(valid, w, np.median(w[valid]))


def _shape_mask(H: int, W: int, rng: np.random.Generator) -> np.ndarray:
    """A random anti-aliased ellipse, rotated rectangle or polygon covering ~5-40% of the frame."""
    import cv2

    m = np.zeros((H, W), np.float32)
    cx, cy = float(rng.uniform(0.1, 0.9) * W), float(rng.uniform(0.1, 0.9) * H)
    s = math.sqrt(rng.uniform(0.05, 0.4) * H * W / math.pi)
    kind = rng.integers(3)
    if kind == 0:
        axes = (max(2, int(s * rng.uniform(0.6, 1.6))), max(2, int(s * rng.uniform(0.6, 1.6))))
        cv2.ellipse(m, (int(cx), int(cy)), axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1, cv2.LINE_AA)
    elif kind == 1:
        box = cv2.boxPoints(((cx, cy), (2 * s * rng.uniform(0.5, 1.5), 2 * s * rng.uniform(0.5, 1.5)), float(rng.uniform(0, 180))))
        cv2.fillPoly(m, [np.int32(box)], 1.0, cv2.LINE_AA)
    else:
        n = int(rng.integers(4, 9))
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = s * rng.uniform(0.6, 1.4, n)
        cv2.fillPoly(m, [np.int32(np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], 1))], 1.0, cv2.LINE_AA)
    return m


def synthesize_layered(
    background: np.ndarray,
    textures: Sequence[np.ndarray],
    params: SynthParams | None = None,
    rng: np.random.Generator | None = None,
    info: dict | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Layered random planes: ``background`` plus one random shape per texture in front.

    Each plane is fronto-parallel at a random depth (background farthest, metres
    in [1.7, 10], foreground in front of it up to 0.5 m); the focus is one of the
    planes half the time (real photos usually have a subject in focus). Shapes
    occlude what lies behind them, so depth edges carry the real dual-pixel
    occlusion effects.

    Returns ``(sharp, left, right, combined)``: the all-in-focus composite
    (ground truth, same exposure and tone as the views) and the three simulated
    images, :math:`(H, W, 3)` float32.
    """
    params = (params or SynthParams()).check()
    rng = rng if rng is not None else np.random.default_rng(0)
    H, W = background.shape[:2]
    drawn = _draw(params, rng)
    w_bg = float(rng.uniform(0.1, 0.6))
    ws = np.sort(rng.uniform(w_bg + 0.05, 2.0, len(textures))) if len(textures) else np.zeros(0)
    w_all = np.concatenate([[w_bg], ws])  # back to front (inverse depth grows)
    if params.focus is not None:
        w_f = 1.0 / params.focus
    elif rng.random() < 0.5:
        w_f = float(rng.choice(w_all))
    else:
        w_f = float(rng.uniform(0.1, 2.0))
    radii, K = signed_radius(w_all, w_f, drawn["peak_radius"])
    radii = _quantise(radii, params.radius_step)
    sharp = np.asarray(background, np.float32).copy()
    masks = []
    for tex in textures:
        m = _shape_mask(H, W, rng)
        masks.append(m)
        sharp = sharp * (1 - m[..., None]) + np.asarray(tex, np.float32) * m[..., None]
    # one exposure / colour draw for the whole scene (from the composite), applied to every layer
    scene_drawn: dict = {}
    _scene(sharp, params, rng, scene_drawn)
    lin_bg = _relight(np.asarray(background, np.float32), params, scene_drawn)
    lin_texs = [_relight(np.asarray(t, np.float32), params, scene_drawn) for t in textures]
    layers = [(lin_bg, np.ones((H, W), np.float32), float(radii[0]))]
    layers += [(lt, m, float(r)) for lt, m, r in zip(lin_texs, masks, radii[1:])]
    lin_sharp = lin_bg.copy()
    for lt, m in zip(lin_texs, masks):
        lin_sharp = lin_sharp * (1 - m[..., None]) + lt * m[..., None]
    drawn.update(scene_drawn)
    left, right = _render(layers, _optics(params, rng, (W, H), drawn))
    result = _develop(lin_sharp, left, right, params, rng, drawn)
    if info is not None:
        info.update(drawn, w_focus=w_f, K=K, depths_m=[round(float(1 / w), 4) for w in w_all], radii=[float(r) for r in radii])
    return result


def _relight(img: np.ndarray, params: SynthParams, drawn: dict) -> np.ndarray:
    """Another source of the same scene through the transform :func:`_scene` drew."""
    from dpdeblur.io.dualpixel import srgb_decode

    lin = srgb_decode(img) if params.linear else img
    if drawn.get("gray"):
        lin = np.repeat(lin.mean(axis=2, keepdims=True), 3, axis=2)
    elif "white_balance" in drawn:
        lin = lin * np.asarray(drawn["white_balance"], np.float32)
    return np.ascontiguousarray(lin * np.float32(drawn.get("exposure_gain", 1.0)), dtype=np.float32)


# ----------------------------------------------------------------------------- files


def _read_pfm(path: Path) -> np.ndarray:
    with open(path, "rb") as f:
        header = f.readline().strip()
        if header not in (b"Pf", b"PF"):
            raise InputError(f"{path}: not a PFM file (header {header[:8]!r})")
        w, h = (int(v) for v in f.readline().split())
        scale = float(f.readline())
        a = np.frombuffer(f.read(), dtype="<f4" if scale < 0 else ">f4")
    a = a.reshape(h, w, 3 if header == b"PF" else 1)[..., 0]
    return np.flipud(a).astype(np.float32)


def read_depth(path: str | Path) -> np.ndarray:
    """A depth / disparity map as :math:`(H, W)` float32: .npy, .npz (first array),
    .pfm, or 16/8-bit PNG/TIFF (raw values, first channel; 0 = unknown)."""
    import cv2

    path = Path(path)
    ext = path.suffix.lower()
    try:
        if ext == ".npy":
            a = np.load(path)
        elif ext == ".npz":
            with np.load(path) as z:
                a = z[z.files[0]]
        elif ext == ".pfm":
            a = _read_pfm(path)
        else:
            a = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
            if a is None:
                raise ValueError("undecodable")
    except (OSError, ValueError, IndexError) as e:
        raise InputError(f"{path}: not a readable depth map ({e}); use .npy, .npz, .pfm or 16-bit PNG/TIFF") from None
    a = np.asarray(a)
    if a.dtype.kind not in "iuf" and a.dtype != bool:
        raise InputError(f"{path}: depth map of dtype {a.dtype}; expected numbers (H, W)")
    a = a.astype(np.float32)
    if a.ndim == 3:
        a = a[..., 0]
    if a.ndim != 2 or a.size == 0:
        raise InputError(f"{path}: depth map has shape {a.shape}; expected (H, W)")
    return a


def _check_depth(d: np.ndarray, kind: str, path: Path) -> None:
    """An :class:`InputError` naming ``path`` when the map has no usable value."""
    valid = np.isfinite(d) & ((d > 0) if kind == "depth" else True)
    if not np.any(valid):
        what = "all NaN, inf or <= 0" if kind == "depth" else "all NaN or inf"
        raise InputError(f"{path}: the {kind} map has no valid value ({what}); fix or replace this map")


def _find_depth(depth_dir: Path, image: Path) -> Path:
    for ext in DEPTH_EXTS:
        p = depth_dir / (image.stem + ext)
        if p.is_file():
            return p
    raise InputError(f"{image}: no depth map {depth_dir / image.stem}.{{npy,npz,pfm,png,tif}}; add one, or make the data set without depth maps")


def parse_size(text: str) -> tuple[int, int]:
    """``'512x384'`` -> (512, 384) = (W, H)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"size {text!r}: write WIDTHxHEIGHT, e.g. 512x384", settings=("size",)) from None
    if not (16 <= w <= 8192 and 16 <= h <= 8192):
        raise UsageError(f"size {text}: each side must be 16 to 8192 pixels", settings=("size",))
    return w, h


def parse_range(text: str | None, setting: str) -> tuple[float, float] | None:
    """``'0.2,1.0'`` -> (0.2, 1.0); ``'none'`` / None -> None; ``setting``: its name in a usage error."""
    if text is None or text.strip().lower() == "none":
        return None
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"{setting} {text!r}: write LO,HI, e.g. 0.2,1.0, or none", settings=(setting,)) from None
    return lo, hi


def parse_split(text: str | None, count: int) -> dict[str, int]:
    """``'train=80,val=10,test=10'`` -> counts; None -> ``count`` split 80/10/10."""
    if text is None:
        if count < 1:
            raise UsageError(f"count {count}: must be at least 1", settings=("count",))
        val = test = count // 10
        return {"train": count - val - test, "val": val, "test": test}
    out = dict.fromkeys(SPLITS, 0)
    seen: set[str] = set()
    for part in text.split(","):
        k, _, v = part.partition("=")
        k, v = k.strip(), v.strip()
        if k not in SPLITS or not (v.isascii() and v.isdigit()):
            raise UsageError(f"split {text!r}: write e.g. train=80,val=10,test=10", settings=("split",))
        if k in seen:
            raise UsageError(f"split {text!r}: {k} is given twice; name each of {', '.join(SPLITS)} at most once", settings=("split",))
        seen.add(k)
        out[k] = int(v)
    if sum(out.values()) < 1:
        raise UsageError(f"split {text!r}: at least one image", settings=("split",))
    return out


MANIFEST = "synth.json"
_STAGE_PREFIX = ".synth-new-"  # the new set is written here, inside OUT, then moved in place
_OLD_PREFIX = ".synth-old-"  # the previous set waits here until the new one is in place


def _made_by_synth(manifest: Path) -> bool:
    """``synth.json`` written by this command (any version): a JSON object whose ``tool`` says so."""
    try:
        j = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return False
    tool = j.get("tool") if isinstance(j, dict) else None
    return isinstance(tool, str) and tool.startswith("dpdeblur") and tool.endswith("synth")


def _check_out(out: Path, overwrite: bool) -> list[Path]:
    """Refuse an output folder synth must not write in, before any work; returns what a previous
    ``synth`` data set there owns (replaced with ``overwrite`` once the new set is written)."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"out {out}: exists and is not a folder; choose another output folder", settings=("out",))
    manifest = out / MANIFEST
    folders = [p for p in DPDD.split_folders(out) if p.exists() or p.is_symlink()]
    if manifest.exists() and not _made_by_synth(manifest):
        raise UsageError(f"out {out}: not a data set made by synth (its {MANIFEST} is not synth's); "
                         "choose an empty or new folder", settings=("out",))
    if folders and not manifest.exists():
        raise UsageError(f"out {out}: not a data set made by synth (it holds {folders[0].name} but no {MANIFEST}); "
                         "choose an empty or new folder", settings=("out",))
    present = folders + ([manifest] if manifest.exists() else [])
    _warn_leftovers(out)
    if present and not overwrite:
        raise UsageError(f"out {out}: already holds a data set ({present[0].name}); set overwrite to replace it "
                         "or choose another folder", settings=("out", "overwrite"))
    return present


def _warn_leftovers(out: Path) -> None:
    """Name staging folders a killed run left in ``out`` (never deleted here: a run going on in
    the same folder may own one, and an old one may hold the only copy of a previous set)."""
    if not out.is_dir():
        return
    left = sorted(p.name for p in out.iterdir() if p.is_dir() and p.name.startswith((_STAGE_PREFIX, _OLD_PREFIX)))
    if left:
        warnings.warn(f"{out}: {', '.join(left)} left by an interrupted synth run ({_STAGE_PREFIX}*: a half-written "
                      f"set, {_OLD_PREFIX}*: a previous set being replaced); delete them once no synth runs here",
                      stacklevel=3)


def _make_folder(out: Path) -> Path | None:
    """Create ``out`` (and missing parents); returns the topmost folder created (None: it existed)."""
    here = out.absolute()
    top = None
    while not here.exists() and here != here.parent:
        top, here = here, here.parent
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"out {out}: cannot create this folder ({e.strerror or e}); choose another folder",
                         settings=("out",)) from None
    return top


def _remove_made(out: Path, top: Path | None) -> None:
    """Remove the folders :func:`_make_folder` created (only while empty)."""
    if top is None:
        return
    here = out.absolute()
    while True:
        try:
            here.rmdir()
        except OSError:
            return
        if here == top:
            return
        here = here.parent


def _swap_in(out: Path, stage: Path, present: list[Path]) -> None:
    """Put the set written in ``stage`` in place of the previous one (``present``): the old
    folders move aside, the new ones in, then the old ones are deleted. Renames only, within
    one folder; on an error every rename done is undone, so OUT keeps the previous set."""
    import shutil
    import tempfile

    from dpdeblur.errors import OutputError

    old = Path(tempfile.mkdtemp(prefix=_OLD_PREFIX, dir=out)) if present else None
    done: list[tuple[Path, Path]] = []
    new = [p for p in DPDD.split_folders(stage) if p.exists()] + [stage / MANIFEST]  # synth.json last
    try:
        for p in sorted(present, key=lambda q: q.name == MANIFEST):  # the old synth.json leaves last
            p.rename(old / p.name)
            done.append((old / p.name, p))
        for p in new:
            p.rename(out / p.name)
            done.append((out / p.name, p))
    except OSError as e:
        for moved, back in reversed(done):
            try:
                moved.rename(back)
            except OSError:
                pass
        if old is not None:
            try:
                old.rmdir()
            except OSError:
                pass
        raise OutputError(f"out {out}: cannot move the new data set in place ({e.strerror or e}); "
                          "the previous one is kept", settings=("out",)) from None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def make_dataset(
    out: str | Path,
    images: str | Path | None = None,
    depth: str | Path | None = None,
    count: int = 100,
    size: tuple[int, int] = (512, 384),
    split: dict[str, int] | None = None,
    params: SynthParams | None = None,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = False,
):
    """Write a synthetic dual-pixel data set in the DPDD layout plus ``synth.json``.

    Args:
        out: output root; ``{train,val,test}_c/{source,target}/<id>.png``,
            ``_l/source/<id>_L.png``, ``_r/source/<id>_R.png`` (16-bit PNG).
        images: folder of sharp images; None = scikit-image photographs (held-out
            ones only in the test split) + procedural textures.
        depth: folder of depth maps named like the images (``<stem>.npy|npz|pfm|png|tif``);
            None = layered random planes.
        count / split: total images (80/10/10) or explicit per-split counts.
        size: (W, H) of every image. seed: everything is a function of (seed, item).
        overwrite: replace a data set an earlier ``make_dataset`` wrote in ``out`` (only its
            own folders and ``synth.json``; a folder holding DPDD folders without ``synth.json``
            is refused).

    Every option, the PSF bank, the sources and ``out`` are checked before anything is
    written. The new set is written in a hidden folder inside ``out`` and moved in place
    (replacing the previous set) only when at least one image set was written; when none
    was, ``out`` is left as it was (not created, no ``synth.json``).

    Returns:
        ``(manifest, report)``: the dict written to ``synth.json`` (``manifest["ok"]``: the
        image sets written; 0 = nothing written) and the
        :class:`~dpdeblur.utils.batch.BatchReport` (exit code 1 if any item failed).
    """
    import shutil
    import tempfile

    from dpdeblur import __version__
    from dpdeblur.data import synth_sources as src
    from dpdeblur.io.images import write_image
    from dpdeblur.utils.atomic import atomic_write_text
    from dpdeblur.utils.batch import ItemResult, run_batch

    params = (params or SynthParams()).check()
    split = split or parse_split(None, count)
    if (set(split) - set(SPLITS) or any(not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 0
                                        for v in split.values()) or sum(split.values()) < 1):
        raise UsageError(f"split {split}: counts of {', '.join(SPLITS)}, whole numbers >= 0, at least one image",
                         settings=("split",))
    split = {s: int(split.get(s, 0)) for s in SPLITS}
    out = Path(out)
    if images is not None and not Path(images).is_dir():
        raise InputError(f"images {images}: no such folder; give a folder of sharp images", settings=("images",))
    if depth is not None and images is None:
        raise UsageError("depth needs images too (maps are matched to the photos by file name)", settings=("depth", "images"))
    if depth is not None and not Path(depth).is_dir():
        raise InputError(f"depth {depth}: no such folder; give a folder of maps named like the photos", settings=("depth",))
    user = src.folder_sources(images) if images is not None else None
    procedural = src.procedural_sources(size)
    pools = {
        s: user or (src.bundled_sources(held_out=(s == "test")) + procedural) for s in SPLITS
    }
    present = _check_out(out, overwrite)  # nothing is touched before this point, nor deleted before the end

    plan = [(s, i, k) for k, (s, i) in enumerate((s, i) for s in SPLITS for i in range(split[s]))]
    records: list[dict] = []

    enlarged: set[str] = set()  # sources already warned about in this run
    lock = threading.Lock()

    def load(source, rng) -> np.ndarray:
        img = source.load(rng)
        f = src.enlargement(img, size)
        with lock:
            first = f > src.MAX_UPSCALE and source.name not in enlarged
            if first:
                enlarged.add(source.name)
        if first:
            warnings.warn(f"{source.name}: {img.shape[1]}x{img.shape[0]} is smaller than the size {size[0]}x{size[1]}; "
                          f"enlarged {f:.1f}x, its sharp targets are soft (use images at least that large, or a "
                          "smaller size)", stacklevel=2)
        return img

    def one(item, stage: Path) -> ItemResult:
        s, i, k = item
        rng = np.random.default_rng([seed, k])
        pool = pools[s]
        item_id = f"{s}{i:05d}"
        rec = {"id": item_id, "split": s}
        if depth is not None:
            bg_src = pool[k % len(pool)]
            dpath = _find_depth(Path(depth), Path(bg_src.name))
            img = load(bg_src, rng)
            dmap = read_depth(dpath)
            _check_depth(dmap, params.depth_kind, dpath)
            ih, iw = img.shape[:2]
            if abs(dmap.shape[1] / dmap.shape[0] - iw / ih) > 0.02 * iw / ih:
                raise InputError(f"{dpath}: depth map {dmap.shape[1]}x{dmap.shape[0]} does not match the image's {iw}x{ih} shape")
            import cv2

            dmap = cv2.resize(dmap, (iw, ih), interpolation=cv2.INTER_NEAREST)
            sharp, dmap = src.random_crop(img, size, rng, extra=dmap)
            sharp, left, right, comb = synthesize_pair(sharp, dmap, params, rng, info=rec)
            rec.update(source=bg_src.name, depth=str(dpath))
        else:
            bg_src = pool[k % len(pool)] if user else pool[int(rng.integers(len(pool)))]
            n_fg = int(rng.integers(params.layers[0], params.layers[1] + 1)) - 1
            fg_srcs = [pool[int(rng.integers(len(pool)))] for _ in range(n_fg)]
            bg, _ = src.random_crop(load(bg_src, rng), size, rng)
            fgs = [src.random_crop(load(f, rng), size, rng)[0] for f in fg_srcs]
            sharp, left, right, comb = synthesize_layered(bg, fgs, params, rng, info=rec)
            rec.update(source=bg_src.name, textures=[f.name for f in fg_srcs])
        paths = DPDD.item_paths(stage, s, item_id)
        keys = ("sharp", "combined", "left", "right")
        try:
            for key, arr in zip(keys, (sharp, comb, left, right)):
                write_image(paths[key], arr, bit_depth=16)
        except BaseException:  # all of an item's files or none
            for key in keys:
                paths[key].unlink(missing_ok=True)
            raise
        records.append(rec)
        return ItemResult(item_id, outputs=[str(DPDD.item_paths(out, s, item_id)["combined"])])

    made = _make_folder(out)
    stage = None
    try:
        try:
            stage = Path(tempfile.mkdtemp(prefix=_STAGE_PREFIX, dir=out))
        except OSError as e:
            raise UsageError(f"out {out}: cannot write in this folder ({e.strerror or e}); choose another folder",
                             settings=("out",)) from None
        report = run_batch(plan, lambda it: one(it, stage), label="synth",
                           name=lambda it: f"{it[0]}{it[1]:05d}", progress=progress)
        used = sorted({n for r in records for n in [r["source"], *r.get("textures", [])]})
        licences = {x.name: x.licence for p in pools.values() for x in p}
        manifest = {
            "tool": f"dpdeblur {__version__} synth",
            "seed": seed,
            "size": list(size),
            "counts": split,
            "params": asdict(params),
            "conventions": CONVENTIONS,
            "layout": f"DPDD: {DPDD.summary}; 16-bit PNG",
            "mode": "depth maps" if depth is not None else "layered random planes",
            "images": str(images) if images is not None else "default: scikit-image photographs + procedural textures",
            "held_out": list(src.HELD_OUT) if images is None else [],
            "sources": [{"name": n, "licence": licences.get(n, "unknown")} for n in used],
            "ok": len(records),
            "failed": [{"id": it.name, "error": it.error} for it in report.items if it.status == "failed"],
            "items": sorted(records, key=lambda r: (SPLITS.index(r["split"]), r["id"])),
        }
        if records:  # nothing written: no synth.json, the previous set (if any) stays
            atomic_write_text(stage / MANIFEST, json.dumps(manifest, indent=1, default=float) + "\n")
            _swap_in(out, stage, present)
    finally:
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)
        _remove_made(out, made)  # only folders this call created and that stayed empty
    return manifest, report
