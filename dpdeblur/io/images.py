"""Image files: PNG / TIFF / JPEG at 8 and 16 bits, read to float32 in [0, 1].

Arrays are ``(H, W, 3)`` RGB (channel-last) float32 in [0, 1] in memory; files
keep their bit depth, which :func:`read_image` reports so that writers can keep it.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dpdeblur.errors import InputError, UsageError
from dpdeblur.io.metadata import (
    apply_orientation,
    embed_jpeg,
    embed_png,
    read_metadata,
    set_exif_orientation,
    tiff_extratags,
)
from dpdeblur.utils.atomic import atomic_path

__all__ = ["IMAGE_EXTS", "Image", "read_image", "write_image", "to_float", "from_float", "format_of"]

IMAGE_EXTS = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".pgm", ".ppm", ".bmp")


@dataclass
class Image:
    """A decoded image.

    Attributes:
        rgb: :math:`(H, W, 3)` float32 in [0, 1].
        bit_depth: 8 or 16, as stored in the file.
        alpha: :math:`(H, W)` float32 in [0, 1] set aside, or None.
        path: the source file.
        gray: the file holds one colour channel (gray, or gray + alpha); ``rgb`` repeats it.
        meta: ``exif`` (TIFF-structured bytes with Orientation reset to 1, or None),
            ``icc`` (bytes or None), ``orientation`` (the file's EXIF orientation,
            already applied to ``rgb`` and ``alpha``).
    """

    rgb: np.ndarray
    bit_depth: int
    alpha: np.ndarray | None = None
    path: Path | None = None
    meta: dict = field(default_factory=dict)
    gray: bool = False


def to_float(a: np.ndarray) -> np.ndarray:
    """uint8 / uint16 / float array -> float32 in [0, 1]."""
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535.0
    return a.astype(np.float32, copy=False)


def from_float(a: np.ndarray, bit_depth: int) -> np.ndarray:
    """float in [0, 1] -> uint8 / uint16 with rounding and clipping."""
    if bit_depth not in (8, 16):
        raise UsageError(f"bit depth must be 8 or 16, got {bit_depth}")
    if a.dtype in (np.uint8, np.uint16):
        a = to_float(a)
    top = 255.0 if bit_depth == 8 else 65535.0
    return np.clip(np.rint(np.asarray(a, dtype=np.float32) * top), 0, top).astype(np.uint8 if bit_depth == 8 else np.uint16)


def decode_image_file(path: str | Path, kinds: str = "PNG/TIFF/JPEG"):
    """``(samples as stored, decoder messages)`` of an image file: OpenCV's ``IMREAD_UNCHANGED``
    (BGR order, EXIF orientation not applied) and the captured libpng/libtiff/libjpeg text
    (``.text``, ``.summary()``).

    Raises :class:`InputError` naming the file for a folder, a missing, empty, corrupt or
    unsupported file (``kinds`` names the formats in that message), or a header declaring more
    pixels than a real photo.
    """
    import cv2

    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not an image file")
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty (0 bytes); re-export or remove it")
    data = np.fromfile(path, dtype=np.uint8)
    with quiet_decoder() as noise:
        try:
            a = cv2.imdecode(data, cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)
        except cv2.error as e:
            if "CV_IO_MAX_IMAGE_PIXELS" in str(e) or "validateInputImageSize" in str(e):
                dims = _png_header_size(data)
                what = f"{dims[0]}x{dims[1]} pixels" if dims else "more pixels than a real photo"
                raise InputError(f"{path}: the header declares {what} (limit {_MAX_PIXELS} pixels); "
                                 "the file is corrupt or not an image, re-export it") from None
            a = None
    if a is None:
        raise InputError(f"{path}: not a readable {kinds} image (corrupt or unsupported); re-export it")
    return a, noise


def read_image(path: str | Path) -> Image:
    """Read an image file; gray becomes 3 channels, alpha is set aside, the EXIF
    orientation is applied (once: the decoder is told to ignore it) and recorded.

    Raises :class:`InputError` naming the file for missing, empty, corrupt or
    unsupported files.
    """
    path = Path(path)
    a, noise = decode_image_file(path)
    if noise.text:
        _warn_once(f"{path}: the decoder reported problems with this file ({noise.summary()}); "
                   "it was read, but check the result")
    if path.suffix.lower() in (".tif", ".tiff"):
        pages = _tiff_pages(path)
        if pages > 1:
            _warn_once(f"{path}: {pages} pages; only the first is read (save each page as its own file to use the others)")
    if a.dtype not in (np.uint8, np.uint16):
        if a.dtype.kind == "f":
            if not np.isfinite(a).all():
                bad = int((~np.isfinite(a)).sum())
                raise InputError(f"{path}: {bad} NaN or infinite sample(s); replace them (e.g. with 0) and re-export")
            out = int(np.count_nonzero((a < 0) | (a > 1)))
            if out:
                _warn_once(f"{path}: {out} float sample(s) outside [0, 1] (largest {float(a.max()):.3g}) were "
                           "clipped; scale the image into [0, 1] (e.g. tone-map an HDR image) to keep them")
            a = np.clip(a, 0, 1)
        else:
            raise InputError(f"{path}: unsupported sample type {a.dtype}; convert to 8- or 16-bit")
    bit_depth = 16 if a.dtype == np.uint16 or a.dtype.kind == "f" else 8
    alpha = None
    if a.ndim == 2:
        rgb = np.repeat(a[..., None], 3, axis=2)
    elif a.shape[2] == 1:
        rgb = np.repeat(a, 3, axis=2)
    elif a.shape[2] == 2:  # gray + alpha
        rgb, alpha = np.repeat(a[..., :1], 3, axis=2), a[..., 1]
    elif a.shape[2] == 3:
        rgb = a[..., ::-1]
    elif a.shape[2] == 4:
        rgb, alpha = a[..., 2::-1], a[..., 3]
    else:
        raise InputError(f"{path}: {a.shape[2]} channels; expected gray, RGB or RGBA")
    meta = read_metadata(path)
    o = meta["orientation"]
    if meta["exif"]:
        meta["exif"] = set_exif_orientation(meta["exif"], 1)
    return Image(
        rgb=apply_orientation(to_float(rgb), o),
        bit_depth=bit_depth,
        alpha=None if alpha is None else apply_orientation(to_float(alpha), o),
        path=path,
        meta=meta,
        gray=a.ndim == 2 or a.shape[2] <= 2,
    )


_MAX_PIXELS = 1 << 30  # OpenCV's CV_IO_MAX_IMAGE_PIXELS


def _png_header_size(data: np.ndarray) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR, or None for other formats."""
    b = data[:24].tobytes()
    if len(b) == 24 and b[:8] == b"\x89PNG\r\n\x1a\n" and b[12:16] == b"IHDR":
        import struct

        return struct.unpack(">II", b[16:24])
    return None


class _Captured:
    text = ""

    def summary(self) -> str:
        lines = [ln.strip() for ln in self.text.splitlines() if ln.strip()]
        first = lines[0] if lines else ""
        if "] " in first:  # "[ WARN:0@0.01] global grfmt_png.cpp:793 readFromStreamOrBuffer ..." -> message
            first = first.split("] ", 1)[1]
        return first[:160] + (f" (+{len(lines) - 1} more)" if len(lines) > 1 else "")


@contextlib.contextmanager
def quiet_decoder():
    """Keep OpenCV's and libpng/libtiff/libjpeg's messages (written straight to file
    descriptor 2) off the user's terminal; the captured text is yielded (``.text``) so
    that the caller can say it once, in its own words."""
    import cv2

    cap = _Captured()
    with _FD2_LOCK:  # file descriptor 2 is process-wide: one redirection at a time
        yield from _quiet(cap, cv2)


_FD2_LOCK = threading.RLock()


def _quiet(cap: _Captured, cv2):
    import os
    import sys
    import tempfile

    try:
        cv2.setLogLevel(0)  # OpenCV's own [ WARN ] lines: silent
    except Exception:  # noqa: BLE001 - older builds
        pass
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (embedded interpreters)
        yield cap
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield cap
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            cap.text = sink.read().decode("utf-8", "replace")


def _tiff_pages(path: Path) -> int:
    """How many images a TIFF file holds (1 when the decoder cannot tell)."""
    import cv2

    with quiet_decoder():
        try:
            return int(cv2.imcount(str(path)))
        except cv2.error:
            return 1


_WARNED: set[str] = set()


def _warn_once(msg: str) -> None:
    import warnings

    if msg not in _WARNED:
        _WARNED.add(msg)
        warnings.warn(msg, stacklevel=3)


def format_of(path: Path) -> str:
    """``png``, ``tif`` or ``jpg`` from the extension; a usage error for anything else."""
    ext = path.suffix.lower()
    if ext == ".png":
        return "png"
    if ext in (".tif", ".tiff"):
        return "tif"
    if ext in (".jpg", ".jpeg"):
        return "jpg"
    raise UsageError(f"{path}: cannot write {ext or 'files without extension'}; use .png, .tif or .jpg")


def write_image(
    path: str | Path,
    rgb: np.ndarray,
    bit_depth: int = 8,
    alpha: np.ndarray | None = None,
    quality: int = 95,
    exif: bytes | None = None,
    icc: bytes | None = None,
) -> Path:
    """Atomically write ``rgb`` (:math:`(H, W, 3)` or :math:`(H, W)`, float [0, 1]
    or uint8/uint16) as PNG/TIFF (8 or 16 bits) or JPEG (8 bits, ``quality``).

    ``alpha`` (:math:`(H, W)`) is re-attached where the format allows (PNG, TIFF).
    ``exif`` (TIFF-structured bytes, as ``Image.meta['exif']``) and ``icc`` are
    embedded: PNG eXIf/iCCP, JPEG APP1/APP2, TIFF ICC tag + descriptive IFD0 tags;
    the written Orientation is always 1 (pixels are stored upright).
    """
    import cv2

    path = Path(path)
    fmt = format_of(path)
    exif = set_exif_orientation(exif, 1) if exif else None
    if fmt == "jpg":
        bit_depth = 8
    a = from_float(rgb, bit_depth)
    if a.ndim == 3:
        a = a[..., ::-1]  # RGB -> BGR for OpenCV
        if alpha is not None and fmt != "jpg":
            a = np.concatenate([a, from_float(alpha, bit_depth)[..., None]], axis=2)
    a = np.ascontiguousarray(a)
    if fmt == "tif":
        import tifffile

        rgb_order = a[..., [2, 1, 0, *range(3, a.shape[2])]] if a.ndim == 3 else a
        with atomic_path(path) as tmp:
            tifffile.imwrite(
                tmp, rgb_order, photometric="rgb" if a.ndim == 3 else "minisblack", compression="zlib",
                extrasamples=[2] if a.ndim == 3 and a.shape[2] == 4 else None,
                metadata=None, extratags=tiff_extratags(exif, icc),
            )
        return path
    params = [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)] if fmt == "jpg" else []
    with quiet_decoder():
        ok, buf = cv2.imencode("." + fmt, a, params)
    if not ok:
        raise InputError(f"{path}: OpenCV could not encode the image")
    data = buf.tobytes()
    if exif or icc:
        data = (embed_png if fmt == "png" else embed_jpeg)(data, exif, icc)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path
