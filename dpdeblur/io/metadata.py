"""EXIF and ICC: read once, orient once, carry to the output.

EXIF is kept as a TIFF-structured byte string (what PNG's ``eXIf`` chunk holds;
JPEG's APP1 adds the ``Exif\\0\\0`` prefix). The Orientation tag is patched in
place to 1 after the pixels are rotated, so maker notes and offsets stay valid.
Writers: PNG (``iCCP`` + ``eXIf`` chunks), JPEG (APP1 Exif + APP2 ICC_PROFILE
segments), TIFF (ICC tag and the main descriptive EXIF tags of IFD0).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

__all__ = [
    "tiff_exif",
    "read_metadata",
    "apply_orientation",
    "exif_orientation",
    "set_exif_orientation",
    "embed_png",
    "embed_jpeg",
    "tiff_extratags",
]

_ORIENTATION = 0x0112
_EXIF_PREFIX = b"Exif\x00\x00"
# IFD0 tags copied into TIFF outputs: description, make, model, software, date, artist, copyright
_TIFF_TEXT_TAGS = (270, 271, 272, 305, 306, 315, 33432)


def tiff_exif(exif: bytes | None) -> bytes | None:
    """The one EXIF representation of ``io/``: TIFF-structured bytes (``II*\\0``/``MM\\0*``...).

    Accepts the APP1 form too (``Exif\\0\\0`` + TIFF, as Pillow's ``Exif.tobytes()``
    and JPEG files hold it) and strips the prefix; None or empty stays None.
    """
    if not exif:
        return None
    exif = bytes(exif)
    return exif[len(_EXIF_PREFIX) :] if exif.startswith(_EXIF_PREFIX) else exif


def _ifd0_entries(tiff: bytes):
    """Yield ``(offset_of_entry, tag, type, count, byte_order)`` of IFD0; nothing if malformed."""
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return
    bo = "<" if tiff[:2] == b"II" else ">"
    off = struct.unpack(bo + "I", tiff[4:8])[0]
    if off + 2 > len(tiff):
        return
    n = struct.unpack(bo + "H", tiff[off : off + 2])[0]
    for i in range(n):
        e = off + 2 + 12 * i
        if e + 12 > len(tiff):
            return
        tag, typ, cnt = struct.unpack(bo + "HHI", tiff[e : e + 8])
        yield e, tag, typ, cnt, bo


def exif_orientation(tiff: bytes | None) -> int:
    """EXIF Orientation (1..8) of EXIF bytes (see :func:`tiff_exif`); 1 when absent or invalid."""
    tiff = tiff_exif(tiff)
    for e, tag, typ, _, bo in _ifd0_entries(tiff or b""):
        if tag == _ORIENTATION and typ == 3:
            v = struct.unpack(bo + "H", tiff[e + 8 : e + 10])[0]
            return v if 1 <= v <= 8 else 1
    return 1


def set_exif_orientation(tiff: bytes, value: int = 1) -> bytes:
    """TIFF-structured copy of ``tiff`` (see :func:`tiff_exif`) with the Orientation tag set
    to ``value`` (otherwise unchanged, also when it has none)."""
    tiff = tiff_exif(tiff) or b""
    for e, tag, typ, _, bo in _ifd0_entries(tiff):
        if tag == _ORIENTATION and typ == 3:
            b = bytearray(tiff)
            b[e + 8 : e + 10] = struct.pack(bo + "H", value)
            return bytes(b)
    return tiff


def apply_orientation(a: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels :math:`(H, W, ...)` upright for EXIF ``orientation`` (as Pillow's exif_transpose)."""
    t = {
        1: lambda x: x,
        2: lambda x: x[:, ::-1],
        3: lambda x: x[::-1, ::-1],
        4: lambda x: x[::-1],
        5: lambda x: x.swapaxes(0, 1),
        6: lambda x: np.rot90(x, -1),
        7: lambda x: x.swapaxes(0, 1)[::-1, ::-1],
        8: lambda x: np.rot90(x, 1),
    }.get(orientation, lambda x: x)
    return np.ascontiguousarray(t(a))


def read_metadata(path: str | Path) -> dict:
    """``{'exif': bytes | None, 'icc': bytes | None, 'orientation': int}`` of an image file.

    Pillow parses the container lazily (pixels are not decoded). For TIFF inputs
    the EXIF is rebuilt from the descriptive IFD0 tags and the Exif sub-IFD.
    Unreadable metadata is ignored (the pixels decide whether a file is valid).
    """
    meta = {"exif": None, "icc": None, "orientation": 1}
    try:
        from PIL import Image as PILImage

        with PILImage.open(path) as im:
            meta["icc"] = im.info.get("icc_profile") or None
            raw = im.info.get("exif")
            if raw:
                meta["exif"] = tiff_exif(raw)
            elif im.format == "TIFF":
                ifd0 = im.getexif()
                meta["orientation"] = int(ifd0.get(_ORIENTATION, 1)) if ifd0.get(_ORIENTATION, 1) in range(1, 9) else 1
                ex = PILImage.Exif()
                for tag in _TIFF_TEXT_TAGS:
                    if tag in ifd0:
                        ex[tag] = ifd0[tag]
                sub = ifd0.get_ifd(0x8769)
                if sub:
                    ex[0x8769] = dict(sub)
                if len(ex):
                    meta["exif"] = tiff_exif(ex.tobytes())
                return meta
    except Exception:  # noqa: BLE001 - metadata is best effort
        return meta
    meta["orientation"] = exif_orientation(meta["exif"])
    return meta


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def embed_png(png: bytes, exif: bytes | None = None, icc: bytes | None = None) -> bytes:
    """Insert ``iCCP`` and ``eXIf`` chunks right after ``IHDR`` (before the image data)."""
    end = 8 + 8 + struct.unpack(">I", png[8:12])[0] + 4  # signature + IHDR chunk
    exif = tiff_exif(exif)
    extra = b""
    if icc:
        extra += _png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc))
    if exif:
        extra += _png_chunk(b"eXIf", exif)
    return png[:end] + extra + png[end:]


def embed_jpeg(jpg: bytes, exif: bytes | None = None, icc: bytes | None = None) -> bytes:
    """Insert APP1 (Exif) and APP2 (ICC_PROFILE, split in chunks) after SOI and any APP0."""
    pos = 2
    exif = tiff_exif(exif)
    if jpg[2:4] == b"\xff\xe0":
        pos = 4 + struct.unpack(">H", jpg[4:6])[0]
    segs = b""
    if exif and len(exif) + 8 <= 0xFFFF:
        body = _EXIF_PREFIX + exif
        segs += b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body
    if icc:
        size = 0xFFFF - 2 - 14
        parts = [icc[i : i + size] for i in range(0, len(icc), size)]
        for k, part in enumerate(parts, 1):
            body = b"ICC_PROFILE\x00" + bytes([k, len(parts)]) + part
            segs += b"\xff\xe2" + struct.pack(">H", len(body) + 2) + body
    return jpg[:pos] + segs + jpg[pos:]


def tiff_extratags(exif: bytes | None, icc: bytes | None) -> list[tuple]:
    """``tifffile`` extra tags: ICC profile, Orientation 1, and the descriptive IFD0 text tags."""
    tags: list[tuple] = [(274, "H", 1, 1, True)]
    exif = tiff_exif(exif)
    if icc:
        tags.append((34675, "B", len(icc), icc, True))
    if exif:
        try:
            from PIL import Image as PILImage

            ex = PILImage.Exif()
            ex.load(_EXIF_PREFIX + exif)
            for tag in _TIFF_TEXT_TAGS:
                v = ex.get(tag)
                if isinstance(v, str) and v and v.isascii():
                    tags.append((tag, "s", 0, v, True))
        except Exception:  # noqa: BLE001
            pass
    return tags
