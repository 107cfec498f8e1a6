"""Dual-pixel views from raw sensor data: extraction, development, flat-field.

The pipeline (each photodiode holds about half the light, so a view is scaled x2
to match the combined image, as in the DPDD set of "Defocus Deblurring Using
Dual-Pixel Data", Abuolaim & Brown, arXiv:2005.00305)::

    frames (A+B, stored)  --extract_views-->  CFA views (black-subtracted, x2)
        --develop (LibRaw, one parameter set)-->  linear RGB (H, W, 3)
        --crop / FlatField / area scale-->  --srgb_encode-->  sRGB [0, 1]

:func:`extract_views` is pure numpy (exact, testable); :func:`develop` is the
only step that calls LibRaw. Arrays are channel-last: CFA :math:`(H, W)`,
images :math:`(H, W, 3)` (or :math:`(H, W)` for one-channel sensors).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dpdeblur.choices import VIEWS
from dpdeblur.errors import InputError, UsageError

#: Google Pixel dual-pixel sensor views (`<id>_left/_right`): 14-bit linear samples, black level 1024.
PIXEL_BLACK, PIXEL_WHITE = 1024, 16383

__all__ = [
    "VIEWS", "CfaViews", "FlatField", "black_map", "extract_views", "develop",
    "srgb_encode", "srgb_decode", "area_scale", "crop",
]


@dataclass
class CfaViews:
    """Black-subtracted views in frame-0 units, each scaled to the combined brightness.

    Attributes:
        left, right, combined: :math:`(H, W)` float32; ``left + right == 2 * combined``
            outside saturated pixels.
        saturated: :math:`(H, W)` bool, where frame 0 (A+B) is at its white level.
    """

    left: np.ndarray
    right: np.ndarray
    combined: np.ndarray
    saturated: np.ndarray


def black_map(colors: np.ndarray, black: tuple | list | np.ndarray) -> np.ndarray:
    """Per-channel black levels (indexed by LibRaw colour index) -> :math:`(H, W)` float32 map."""
    return np.asarray(black, dtype=np.float32)[colors]


def extract_views(
    ab: np.ndarray,
    stored: np.ndarray,
    black_ab: np.ndarray | float,
    black_stored: np.ndarray | float,
    white_ab: float,
    stored_view: str = "right",
) -> CfaViews:
    """Split frame 0 (A+B) and frame 1 (one photodiode) into left and right views.

    ``ab_lin = ab - black_ab``, ``s = stored - black_stored``, other ``= ab_lin - s``;
    both views are multiplied by 2 so that ``left + right == 2 * ab_lin``.
    Where ``ab >= white_ab`` the derived view is unknown (the sum clipped); there
    it is replaced by the stored view (no disparity) and the pixel is flagged.

    Args:
        ab, stored: :math:`(H, W)` raw frames (any integer or float dtype).
        black_ab, black_stored: each frame's own black level: scalar or :math:`(H, W)` map.
        white_ab: frame 0's white (saturation) level, raw units.
        stored_view: which photodiode frame 1 holds, ``'left'`` or ``'right'``.
    """
    if stored_view not in VIEWS:
        raise UsageError(f"stored view must be 'left' or 'right', got {stored_view!r}")
    if ab.shape != stored.shape:
        raise InputError(f"frame sizes differ: {ab.shape} vs {stored.shape}; not a Dual Pixel RAW pair")
    ab_lin = ab.astype(np.float32) - np.asarray(black_ab, np.float32)
    s = stored.astype(np.float32) - np.asarray(black_stored, np.float32)
    saturated = ab >= white_ab
    other = np.where(saturated, s, ab_lin - s)
    views = {stored_view: 2.0 * s, _other(stored_view): 2.0 * other}
    return CfaViews(views["left"], views["right"], ab_lin, saturated)


def _other(view: str) -> str:
    return "left" if view == "right" else "right"


def develop(raw, cfa: np.ndarray, black: np.ndarray, demosaic: str = "AHD") -> np.ndarray:
    """Develop one black-subtracted CFA view with frame 0's parameters.

    The view (plus frame 0's black map, clipped to uint16) is written into the
    open frame-0 ``rawpy.RawPy`` ``raw``'s ``raw_image_visible`` and developed with
    its as-shot white balance and colour matrix to linear sRGB primaries,
    16 bits, no auto-brightening and ``user_flip=0`` (sensor orientation kept).

    Args:
        raw: an unpacked frame-0 ``rawpy.RawPy``; its buffer is overwritten.
        cfa: :math:`(H, W)` float, same shape as ``raw.raw_image_visible``.
        black: :math:`(H, W)` frame 0's black map.
        demosaic: a ``rawpy.DemosaicAlgorithm`` name (``AHD``, ``LINEAR``, ``DHT``...).

    Returns:
        :math:`(H, W, 3)` float32 linear RGB in [0, 1].
    """
    import rawpy

    buf = raw.raw_image_visible
    buf[...] = np.clip(np.rint(cfa + black), 0, 65535).astype(buf.dtype)
    try:
        algo = rawpy.DemosaicAlgorithm[demosaic.upper()]
    except KeyError:
        names = ", ".join(a.name for a in rawpy.DemosaicAlgorithm)
        raise UsageError(f"unknown demosaic algorithm {demosaic!r}; choose one of {names}") from None
    rgb = raw.postprocess(
        output_bps=16, no_auto_bright=True, use_camera_wb=True, use_auto_wb=False,
        output_color=rawpy.ColorSpace.sRGB, gamma=(1, 1), user_flip=0, demosaic_algorithm=algo,
    )
    return rgb.astype(np.float32) / 65535.0


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """Linear [0, 1] -> sRGB transfer function (IEC 61966-2-1), float32."""
    x = np.clip(linear, 0.0, 1.0).astype(np.float32)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055).astype(np.float32)


def srgb_decode(encoded: np.ndarray) -> np.ndarray:
    """sRGB [0, 1] -> linear, float32 (inverse of :func:`srgb_encode`)."""
    x = np.clip(encoded, 0.0, 1.0).astype(np.float32)
    return np.where(x <= 0.04045, x / 12.92, np.power((x + 0.055) / 1.055, 2.4)).astype(np.float32)


def crop(img: np.ndarray | None, box: tuple[int, int, int, int] | None) -> np.ndarray | None:
    """``box = (top, left, height, width)`` crop; None passes through."""
    if img is None or box is None:
        return img
    t, l, h, w = box
    return img[t : t + h, l : l + w]


def area_scale(img: np.ndarray, scale: float) -> np.ndarray:
    """Down-sample by ``scale`` (0 < scale <= 1) with area averaging (cv2.INTER_AREA)."""
    import cv2

    if scale == 1.0:
        return img
    if not 0.0 < scale < 1.0:
        raise UsageError(f"scale must be in (0, 1], got {scale}", settings=("scale",))
    h, w = img.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if img.dtype == bool:
        return cv2.resize(img.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


class FlatField:
    """Complementary left/right vignetting correction from white-sheet views.

    With smoothed linear white-sheet views :math:`W_L, W_R`, the gains are
    ``g_L = (W_L + W_R) / (2 W_L)`` and ``g_R = (W_L + W_R) / (2 W_R)``: on a flat
    scene both corrected views equal the mean view, and ``L g_L + R g_R == L + R``
    (the combined image is left unchanged).

    Args:
        white_left, white_right: :math:`(H, W)` or :math:`(H, W, C)` linear white-sheet views.
        smooth: width in pixels of the coarse grid the white sheets are averaged on
            (removes texture and noise of the sheet).
    """

    def __init__(self, white_left: np.ndarray, white_right: np.ndarray, smooth: int = 64):
        import cv2

        if white_left.shape != white_right.shape:
            raise InputError(f"flat_field white sheets differ in size: {white_left.shape} vs {white_right.shape}; "
                             "give the left and right views of one white-sheet capture", settings=("flat_field",))
        h, w = white_left.shape[:2]
        small = (max(2, smooth), max(2, round(smooth * h / w)))

        def blur(a):
            s = cv2.resize(a.astype(np.float32), small, interpolation=cv2.INTER_AREA)
            return cv2.resize(s, (w, h), interpolation=cv2.INTER_LINEAR)

        wl, wr = blur(white_left), blur(white_right)
        eps = 1e-6 * max(float(wl.max()), float(wr.max()), 1e-12)
        wl, wr = np.maximum(wl, eps), np.maximum(wr, eps)
        self.gain_left = ((wl + wr) / (2 * wl)).astype(np.float32)
        self.gain_right = ((wl + wr) / (2 * wr)).astype(np.float32)

    @classmethod
    def from_files(cls, white_left: str | Path, white_right: str | Path, black_level: float = PIXEL_BLACK,
                   white_level: float = PIXEL_WHITE, smooth: int = 64) -> "FlatField":
        """White sheets from files: one-channel 16-bit sensor images (Pixel style,
        linearised with ``black_level``/``white_level``) or 3-channel sRGB images
        (e.g. ``split-dp`` output of a white-sheet raw file, linearised with sRGB)."""
        return cls(*(_read_linear(p, black_level, white_level) for p in (white_left, white_right)), smooth=smooth)

    def apply(self, left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Correct linear views :math:`(H, W[, C])`; gains are resized to the views' size."""
        return left * self._fit(self.gain_left, left), right * self._fit(self.gain_right, right)

    @staticmethod
    def _fit(gain: np.ndarray, img: np.ndarray) -> np.ndarray:
        import cv2

        if gain.shape[:2] != img.shape[:2]:
            gain = cv2.resize(gain, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR)
        if gain.ndim == 2 and img.ndim == 3:
            gain = gain[..., None]
        elif gain.ndim == 3 and img.ndim == 2:
            gain = gain.mean(axis=2)
        return gain


def read_sensor_image(path: str | Path) -> np.ndarray:
    """A one-channel (or 3-channel) 8/16-bit image file as stored (no conversion); an
    :class:`InputError` naming the file when it is missing, empty or not a readable image."""
    from dpdeblur.io.images import decode_image_file

    return decode_image_file(path, "PNG/PGM")[0]


def _read_linear(path: str | Path, black_level: float, white_level: float) -> np.ndarray:
    a = read_sensor_image(path)
    if a.ndim == 2 or a.shape[2] == 1:
        return np.clip((a.reshape(a.shape[:2]).astype(np.float32) - black_level) / (white_level - black_level), 0, None)
    from dpdeblur.io.images import to_float

    return srgb_decode(to_float(a[..., 2::-1]))
