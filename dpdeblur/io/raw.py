"""Dual-pixel files -> left / right / combined views.

Formats:

- Canon Dual Pixel RAW ``.CR2`` (frame 0 = both photodiodes A+B, frame 1 = one
  photodiode), ``.CR3`` where LibRaw exposes the second frame, and DNG with two
  raw frames (separate IFDs, SubIFDs, or one IFD with SamplesPerPixel = 2, which
  LibRaw 0.22 exposes as two frames). All read with rawpy/LibRaw.
- Google Pixel view pairs ``<id>_left`` / ``<id>_right`` (16-bit PGM or PNG, one
  channel, linear with a black level); either file of the pair may be given.

Usage::

    views = read_dual_pixel("IMG_0001.CR2")        # DualPixelViews
    views.left, views.right, views.combined        # (H, W, 3) float32 sRGB in [0, 1]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dpdeblur.choices import VIEWS
from dpdeblur.data.layouts import LONG, match_view, view_stem
from dpdeblur.errors import InputError, UsageError
from dpdeblur.io.dualpixel import (
    PIXEL_BLACK, PIXEL_WHITE, FlatField, area_scale, black_map, crop, develop, extract_views, read_sensor_image,
    srgb_encode,
)

__all__ = [
    "RAW_EXTS", "PAIR_EXTS", "STORED_VIEW", "DualPixelViews", "RawFrame",
    "read_dual_pixel", "read_raw_frames", "load_flat_field", "pair_paths", "is_pair_file", "is_sensor_pair",
    "check_raw_options",
]

RAW_EXTS = (".cr2", ".cr3", ".dng")
PAIR_EXTS = (".png", ".pgm")
# Canon does not document which photodiode frame 1 holds. "right" is this
# project's convention (it is the first view DMTNet takes); check it on your
# camera with meta["left_share"] on a white sheet and flip with stored_view.
STORED_VIEW = "right"
_FLIP_TO_EXIF = {0: 1, 3: 3, 5: 8, 6: 6}  # LibRaw sizes.flip -> EXIF Orientation


@dataclass
class DualPixelViews:
    """Developed dual-pixel views, sensor orientation (disparity horizontal).

    Attributes:
        left, right, combined: :math:`(H, W, 3)` float32 sRGB in [0, 1] (16-bit
            precision); the views are scaled to the combined image's brightness.
        meta: camera, levels, white balance, orientation, stored view, saturation,
            ``monochrome`` (one-channel view files: the three channels are equal)...
        exif: EXIF as TIFF-structured bytes (:func:`dpdeblur.io.metadata.tiff_exif`),
            Orientation set to the file's rotation, for writing beside the result, or None.
        saturation_mask: :math:`(H, W)` bool, pixels where A+B reached its white level.
    """

    left: np.ndarray
    right: np.ndarray
    combined: np.ndarray
    meta: dict = field(default_factory=dict)
    exif: bytes | None = None
    saturation_mask: np.ndarray | None = None


@dataclass
class RawFrame:
    """One raw frame: visible CFA :math:`(H, W)` uint16, black level per LibRaw
    colour index (4 values), white level."""

    cfa: np.ndarray
    black: tuple[int, ...]
    white: int


def is_pair_file(path: str | Path) -> bool:
    """True for ``<id>_left.png`` / ``<id>_right.pgm`` style view files."""
    p = Path(path)
    return p.suffix.lower() in PAIR_EXTS and match_view(p.stem, (LONG,)) is not None


def is_sensor_pair(path: str | Path) -> bool:
    """True for a view file of a raw sensor pair (Google Pixel's ``<id>_left`` / ``<id>_right``:
    one channel, 16-bit, linear with black level 1024) that :func:`read_dual_pixel` develops;
    False for an sRGB view image of the same name (3 channels or 8-bit), which pairs like
    ``<id>_L`` / ``<id>_R``. Reads the file's header only: a PGM is a sensor file when its
    maximum value needs 16 bits, a PNG when its IHDR says 16-bit greyscale."""
    p = Path(path)
    if not is_pair_file(p) or not p.is_file():
        return False
    with open(p, "rb") as f:
        head = f.read(64)
    if p.suffix.lower() == ".pgm":  # P5 <width> <height> <maxval>: 16-bit when maxval > 255
        fields = b" ".join(line.split(b"#")[0] for line in head.splitlines()).split()
        return len(fields) >= 4 and fields[0] == b"P5" and fields[3].isdigit() and int(fields[3]) > 255
    # PNG signature, IHDR, then width, height (4 + 4 bytes), bit depth (byte 24), colour type (byte 25; 0 = grey)
    return len(head) >= 26 and head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR" and head[24] == 16 and head[25] == 0


def pair_paths(path: str | Path) -> tuple[Path, Path, str]:
    """Either file of a view pair -> ``(left_path, right_path, id)``."""
    p = Path(path)
    m = match_view(p.stem, (LONG,))
    if p.suffix.lower() not in PAIR_EXTS or m is None:
        raise InputError(f"{p}: not a dual-pixel view file; expected <id>_left / <id>_right .png or .pgm")
    left, right = (p.with_name(view_stem(m.id, s, LONG, like=m.suffix) + p.suffix) for s in ("left", "right"))
    for q in (left, right):
        if not q.is_file():
            raise InputError(f"{p}: its pair file {q.name} is missing; put both views in the same folder")
    return left, right, m.id


def _open(path: Path, shot: int):
    """Open frame ``shot`` (shot_select set BEFORE opening; rawpy.imread would
    silently return frame 0 for separate-frame files)."""
    import rawpy

    r = rawpy.RawPy()
    r.set_unpack_params(shot_select=shot)
    try:
        r.open_file(str(path))
        r.unpack()  # a missing frame is only reported here
    except rawpy.LibRawRequestForNonexistentImageError:
        r.close()
        raise
    except rawpy.LibRawFileUnsupportedError:
        r.close()
        raise InputError(f"{path}: not a raw file LibRaw can read (unsupported format or not a camera raw file)") from None
    except (rawpy.LibRawIOError, rawpy.LibRawDataError, rawpy.LibRawError) as e:
        r.close()
        raise InputError(f"{path}: truncated or corrupt raw file ({type(e).__name__}); copy it from the card again") from None
    return r


def _sniff(path: Path) -> None:
    """Refuse files that are not TIFF-based (CR2, DNG) or ISO-BMFF (CR3) before LibRaw sees them."""
    with open(path, "rb") as f:
        head = f.read(16)
    if head[:4] in (b"II*\0", b"MM\0*") or head[4:8] == b"ftyp":
        return
    kind = ("a PNG image" if head.startswith(b"\x89PNG") else "a JPEG image" if head.startswith(b"\xff\xd8")
            else "text" if head and all(32 <= c < 127 or c in (9, 10, 13) for c in head) else "unknown data")
    raise InputError(f"{path}: not a raw file (it holds {kind}); give the camera's original .CR2/.CR3/.DNG")


def _check_complete(path: Path) -> None:
    """TIFF-based files: every IFD's image data must lie inside the file (LibRaw
    may zero-fill or drop a truncated frame silently)."""
    try:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            pages = [q for p in tif.pages for q in (p, *(p.pages or ()))]  # IFDs and their SubIFDs
            ends = [o + n for p in pages for o, n in zip(p.dataoffsets, p.databytecounts)]
            size = path.stat().st_size
    except Exception:  # noqa: BLE001 - not parseable as TIFF: LibRaw decides
        return
    if ends and max(ends) > size:
        raise InputError(f"{path}: truncated or corrupt raw file (image data ends at byte {max(ends)}, file has {size}); copy it from the card again")


def _frame(r, black_level, white_level) -> RawFrame:
    black = tuple(int(b) for b in r.black_level_per_channel) if black_level is None else (int(black_level),) * 4
    white = int(r.white_level) if white_level is None else int(white_level)
    return RawFrame(np.array(r.raw_image_visible, copy=True), black, white)


def read_raw_frames(path: str | Path, black_level: int | None = None, white_level: int | None = None):
    """Open a dual-frame raw file.

    Returns:
        ``(raw0, frames, meta)``: the open, unpacked frame-0 ``rawpy.RawPy`` (for
        :func:`~dpdeblur.io.dualpixel.develop`; the caller closes it), the two
        :class:`RawFrame` s, and metadata. Raises :class:`InputError` for missing,
        corrupt, single-frame or equal-frame files.
    """
    import rawpy

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty (0 bytes)")
    _sniff(path)
    _check_complete(path)
    try:
        raw0 = _open(path, 0)
    except rawpy.LibRawRequestForNonexistentImageError:
        raise InputError(f"{path}: LibRaw finds no raw image in this file") from None
    try:
        raw1 = _open(path, 1)
    except rawpy.LibRawRequestForNonexistentImageError:
        raw0.close()
        raise InputError(f"{path}: not a Dual Pixel RAW file (one raw frame); shoot with Dual Pixel RAW on") from None
    try:
        frames = [_frame(raw0, black_level, white_level), _frame(raw1, black_level, white_level)]
        if frames[0].cfa.shape != frames[1].cfa.shape:
            raise InputError(f"{path}: raw frames differ in size {frames[0].cfa.shape} vs {frames[1].cfa.shape}; not a Dual Pixel RAW file")
        if np.array_equal(frames[0].cfa, frames[1].cfa):
            raise InputError(f"{path}: not a Dual Pixel RAW file (its two raw frames are identical)")
        s = raw0.sizes
        meta = {
            "file": str(path),
            "format": "dual-frame raw",
            "camera": _camera(path),
            "black_levels": [list(f.black) for f in frames],
            "white_levels": [f.white for f in frames],
            "white_balance": [float(x) for x in raw0.camera_whitebalance],
            "rgb_xyz_matrix": np.asarray(raw0.rgb_xyz_matrix)[:3].round(6).tolist(),
            "cfa_pattern": raw0.color_desc.decode(errors="replace"),
            "libraw_flip": int(s.flip),
            "orientation": _FLIP_TO_EXIF.get(int(s.flip), 1),
        }
    except BaseException:
        raw0.close()
        raise
    finally:
        raw1.close()
    return raw0, frames, meta


def _crop_box(raw0) -> tuple[int, int, int, int] | None:
    """Camera crop area (DNG DefaultCrop, LibRaw inset crop) in visible-area coordinates."""
    s = raw0.sizes
    if not s.crop_width or not s.crop_height:
        return None
    top, left = s.crop_top_margin - s.top_margin, s.crop_left_margin - s.left_margin
    top, left = max(0, top), max(0, left)
    h, w = min(s.crop_height, s.height - top), min(s.crop_width, s.width - left)
    if h <= 0 or w <= 0:
        return None
    return top, left, h, w


def _camera(path: Path) -> str:
    tags = _tiff_tags(path)
    make, model = tags.get("Make", ""), tags.get("Model", "")
    if model.lower().startswith(make.lower()):
        make = ""
    return " ".join(x for x in (make, model) if x).strip() or "unknown"


def _tiff_tags(path: Path) -> dict:
    """Make/Model/EXIF of TIFF-based raw files (CR2, DNG); empty for others."""
    try:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            tags = tif.pages[0].tags
            out = {k: str(tags[k].value).strip("\0 ") for k in ("Make", "Model", "DateTime") if k in tags}
            if "ExifTag" in tags and isinstance(tags["ExifTag"].value, dict):
                out["exif"] = tags["ExifTag"].value
            return out
    except Exception:  # noqa: BLE001 - CR3 and friends are not TIFF
        return {}


_EXIF_KEEP = {  # EXIF IFD tags copied to the output (name -> tag id)
    "ExposureTime": 0x829A, "FNumber": 0x829D, "ISOSpeedRatings": 0x8827, "DateTimeOriginal": 0x9003,
    "ExposureBiasValue": 0x9204, "FocalLength": 0x920A, "LensModel": 0xA434,
}


def _exif_bytes(path: Path, orientation: int) -> bytes | None:
    """Minimal EXIF (camera, exposure, lens, Orientation) for the developed image."""
    try:
        from PIL import Image

        tags = _tiff_tags(path)
        exif = Image.Exif()
        exif[0x0112] = int(orientation)
        for name, tag in (("Make", 0x010F), ("Model", 0x0110), ("DateTime", 0x0132)):
            if tags.get(name):
                exif[tag] = tags[name]
        sub = exif.get_ifd(0x8769)
        for name, tag in _EXIF_KEEP.items():
            v = tags.get("exif", {}).get(name)
            if v is not None:
                sub[tag] = v[0] / v[1] if isinstance(v, tuple) and len(v) == 2 and v[1] else v
        from dpdeblur.io.metadata import tiff_exif

        return tiff_exif(exif.tobytes())
    except Exception:  # noqa: BLE001 - EXIF is best effort
        return None


def _finish(left, right, combined, mask, box, flat_field, scale, linear):
    """crop -> flat-field (linear) -> area scale (linear) -> sRGB."""
    left, right, combined, mask = (crop(a, box) for a in (left, right, combined, mask))
    if flat_field is not None:
        left, right = flat_field.apply(left, right)
    out = [area_scale(np.ascontiguousarray(a), scale) for a in (left, right, combined)]
    mask = None if mask is None else area_scale(np.ascontiguousarray(mask), scale)
    out = [np.clip(a, 0, 1).astype(np.float32) if linear else srgb_encode(a) for a in out]
    return (*out, mask)


def _left_share(view: np.ndarray, combined: np.ndarray) -> list[float]:
    """``sum(left) / sum(combined)`` in the left / middle / right thirds of the
    frame (views are x2, so 1.0 = half the light): the complementary vignetting
    shows as a trend across the three numbers."""
    w = view.shape[1]
    thirds = [slice(i * w // 3, (i + 1) * w // 3) for i in range(3)]
    return [round(float(view[:, t].sum() / max(float(combined[:, t].sum()), 1e-12)), 4) for t in thirds]


def load_flat_field(flat_field, black_level=None, white_level=None) -> FlatField | None:
    """A :class:`FlatField`, a pair of white-sheet files, or None -> FlatField | None
    (one-channel files are linearised with the pair levels, default 1024 / 16383)."""
    if flat_field is None or isinstance(flat_field, FlatField):
        return flat_field
    wl, wr = flat_field
    return FlatField.from_files(wl, wr, PIXEL_BLACK if black_level is None else black_level,
                                PIXEL_WHITE if white_level is None else white_level)


def check_raw_options(stored_view: str = STORED_VIEW, scale: float = 1.0, black_level: int | None = None,
                      white_level: int | None = None) -> None:
    """Usage errors for the options of :func:`read_dual_pixel` (``deblur`` and ``split-dp`` check
    them before any file is read), naming the settings."""
    if stored_view not in VIEWS:
        raise UsageError(f"stored_view {stored_view!r}: choose {' or '.join(VIEWS)}", settings=("stored_view",))
    if not 0.0 < scale <= 1.0:
        raise UsageError(f"scale {scale}: must be in (0, 1]", settings=("scale",))
    for name, v in (("black_level", black_level), ("white_level", white_level)):
        if v is not None and not 0 <= v <= 65535:
            raise UsageError(f"{name} {v}: must be in 0..65535", settings=(name,))
    if black_level is not None and white_level is not None and black_level >= white_level:
        raise UsageError(f"black_level {black_level} must be below white_level {white_level}",
                         settings=("black_level", "white_level"))


def read_dual_pixel(
    path: str | Path,
    stored_view: str = STORED_VIEW,
    flat_field: FlatField | tuple[str | Path, str | Path] | None = None,
    scale: float = 1.0,
    black_level: int | None = None,
    white_level: int | None = None,
    demosaic: str = "AHD",
    linear: bool = False,
) -> DualPixelViews:
    """Read a dual-pixel file into developed left / right / combined views.

    Args:
        path: a ``.CR2`` / ``.CR3`` / ``.dng`` dual-frame raw file, or either file
            of a ``<id>_left`` / ``<id>_right`` pair.
        stored_view: which photodiode a raw file's frame 1 holds (default
            :data:`STORED_VIEW`, ``'right'``; Canon does not document it).
        flat_field: a :class:`~dpdeblur.io.dualpixel.FlatField` or a pair of
            white-sheet files ``(left, right)``; corrects complementary vignetting.
        scale: area down-sampling factor in (0, 1] (0.25: 5D Mark IV -> DPDD size).
        black_level, white_level: override the file's levels (pairs default to
            1024 / 16383, the Pixel 4's).
        demosaic: LibRaw demosaic algorithm for raw files.
        linear: return linear values instead of sRGB-encoded ones.
    """
    path = Path(path)
    check_raw_options(stored_view, scale, black_level, white_level)
    ff = load_flat_field(flat_field, black_level, white_level)
    if is_pair_file(path):
        return _read_pair(path, ff, scale, black_level, white_level, linear)
    if path.suffix.lower() not in RAW_EXTS:
        raise InputError(f"{path}: not a dual-pixel file; expected {'/'.join(RAW_EXTS)} or <id>_left/_right .png/.pgm")
    raw0, frames, meta = read_raw_frames(path, black_level, white_level)
    try:
        colors = np.asarray(raw0.raw_colors_visible)
        b0 = black_map(colors, frames[0].black)
        cfa = extract_views(frames[0].cfa, frames[1].cfa, b0, black_map(colors, frames[1].black), frames[0].white, stored_view)
        lin = {k: develop(raw0, getattr(cfa, k), b0, demosaic) for k in ("left", "right", "combined")}
        box = _crop_box(raw0)
    finally:
        raw0.close()
    left, right, combined, mask = _finish(lin["left"], lin["right"], lin["combined"], cfa.saturated, box, ff, scale, linear)
    meta.update(
        stored_view=stored_view,
        saturation=round(float(cfa.saturated.mean()), 6),
        left_share=_left_share(cfa.left, cfa.combined),
        crop=list(box) if box else None,
        scale=scale, flat_field=ff is not None, demosaic=demosaic,
        transfer="linear" if linear else "srgb", shape=list(left.shape[:2]), monochrome=False,
    )
    return DualPixelViews(left, right, combined, meta, _exif_bytes(path, meta["orientation"]), mask)


def _read_pair(path, ff, scale, black_level, white_level, linear) -> DualPixelViews:
    lp, rp, pid = pair_paths(path)
    black = PIXEL_BLACK if black_level is None else black_level
    white = PIXEL_WHITE if white_level is None else white_level
    if white <= black:
        raise UsageError(f"white_level {white} must exceed black_level {black} (a view pair's defaults are "
                         f"{PIXEL_BLACK} and {PIXEL_WHITE}); set both", settings=("white_level", "black_level"))
    raw = []
    for p in (lp, rp):
        a = read_sensor_image(p)
        if a.ndim != 2:
            raise InputError(f"{p}: {a.shape[2]} channels; a dual-pixel view file has one channel")
        if a.dtype != np.uint16 and black_level is None and white_level is None:
            raise InputError(f"{p}: {8 * a.itemsize}-bit samples; a raw sensor view is 16-bit linear data (Pixel: black "
                             "level 1024): for developed views name them <id>_L/<id>_R, else give black_level and "
                             "white_level for its levels", settings=("black_level", "white_level"))
        if int(a.max()) <= black:
            raise InputError(f"{p}: every sample is at or below the black level {black} (the image would be black); "
                             "check the file, or give black_level and white_level for its levels",
                             settings=("black_level", "white_level"))
        raw.append(a)
    if raw[0].shape != raw[1].shape:
        raise InputError(f"{lp}: the left and right views differ in size {raw[0].shape} vs {raw[1].shape}")
    if raw[0].dtype != raw[1].dtype:
        raise InputError(f"{lp} and {rp}: one view is {8 * raw[0].itemsize}-bit, the other {8 * raw[1].itemsize}-bit; "
                         "they are not the two views of one capture")
    lv, rv = ((a.astype(np.float32) - black) / (white - black) for a in raw)
    mask = (raw[0] >= white) | (raw[1] >= white)
    combined_lin = 0.5 * (lv + rv)  # views are x2 the combined's share: L + R == 2 C
    left, right, combined, mask = _finish(lv, rv, combined_lin, mask, None, ff, scale, linear)
    meta = {
        "file": str(lp), "format": "view pair", "id": pid, "camera": "unknown",
        "black_levels": [[black], [black]], "white_levels": [white, white], "white_balance": None,
        "orientation": 1, "stored_view": None, "saturation": round(float(mask.mean()), 6),
        "left_share": _left_share(lv, combined_lin),
        "crop": None, "scale": scale, "flat_field": ff is not None,
        "transfer": "linear" if linear else "srgb", "shape": list(left.shape[:2]), "monochrome": True,
    }
    rgb = [np.repeat(a[..., None], 3, axis=2) for a in (left, right, combined)]
    return DualPixelViews(*rgb, meta, None, mask)
