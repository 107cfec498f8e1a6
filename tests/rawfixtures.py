"""Synthetic dual-pixel raw files written with tifffile (LibRaw 0.22 reads all of them).

Geometry: a 2x2 RGGB CFA, ``H x W`` active pixels (LibRaw refuses < 22 px).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

#: Real Google Pixel 4 captures (``<id>_left/_right.png``, ``calibration/``) for the tests that
#: need them: ``$DPDEBLUR_PIXEL4_DIR``, else the team's shared data set beside the checkout
#: (``../shared/data/pixel4-dp``, which CI has); those tests are skipped when neither exists.
_BESIDE = Path(__file__).resolve().parents[2] / "shared" / "data" / "pixel4-dp"
PIXEL4_DIR = Path(os.environ.get("DPDEBLUR_PIXEL4_DIR", "") or _BESIDE)
PIXEL4_SKIP = "no Pixel 4 captures: set DPDEBLUR_PIXEL4_DIR (or place them at ../shared/data/pixel4-dp)"

H, W = 32, 48
RGGB = (0, 1, 1, 2)
# Canon 5D Mark IV XYZ->camera matrix (x10000), so LibRaw develops plausible colours
CM = (6446, -366, -864, -4436, 12204, 2513, -952, 2496, 6348)


def dng_tags(black=(512, 512, 512, 512), white=16383, orientation=1, crop=None, dng=True, make="Canon",
             model="Canon EOS 5D Mark IV"):
    """tifffile ``extratags`` for a CFA raw IFD. ``black`` is the 2x2 BlackLevel pattern
    (row-major positions); ``crop = (x, y, w, h)`` sets DefaultCropOrigin/Size."""
    t = [
        (271, "s", 0, make, True), (272, "s", 0, model, True), (274, "H", 1, (orientation,), True),
        (33421, "H", 2, (2, 2), True), (33422, "B", 4, RGGB, True),
    ]
    if dng:
        srat = tuple(v for c in CM for v in (c, 10000))
        t += [
            (50706, "B", 4, (1, 4, 0, 0), True), (50707, "B", 4, (1, 1, 0, 0), True),
            (50713, "H", 2, (2, 2), True), (50714, "H", 4, tuple(black), True), (50717, "H", 1, (white,), True),
            (50721, "2i", 9, srat, True), (50728, "2I", 3, (1, 2, 1, 1, 1, 2), True),
        ]
    if crop is not None:
        t += [(50719, "I", 2, crop[:2], True), (50720, "I", 2, crop[2:], True)]
    return t


def write_two_ifd(path, f0, f1, tags0, tags1):
    import tifffile

    with tifffile.TiffWriter(path) as t:
        t.write(f0, photometric=32803, extratags=tags0)
        t.write(f1, photometric=32803, extratags=tags1, subfiletype=0)
    return path


def write_subifd(path, f0, f1, tags0, tags1):
    """DNG-style: IFD0 = RGB thumbnail (NewSubFileType 1), raw frames in two SubIFDs."""
    import tifffile

    head = [t for t in tags0 if t[0] in (271, 272, 274, 50706, 50707, 50721, 50728)]
    raw0 = [t for t in tags0 if t not in head]
    raw1 = [t for t in tags1 if t not in head and t[0] not in (271, 272, 274)]
    with tifffile.TiffWriter(path) as t:
        t.write(np.zeros((8, 12, 3), np.uint8), photometric="rgb", subifds=2, subfiletype=1, extratags=head)
        t.write(f0, photometric=32803, extratags=raw0, subfiletype=0)
        t.write(f1, photometric=32803, extratags=raw1, subfiletype=0)
    return path


def write_spp2(path, f0, f1, tags0):
    """Adobe DNG Converter style: one IFD, SamplesPerPixel = 2 (A+B, one photodiode)."""
    import tifffile

    with tifffile.TiffWriter(path) as t:  # tifffile refuses a 2-sample CFA: write, then patch
        t.write(np.stack([f0, f1], -1).astype(np.uint16), photometric="minisblack", planarconfig="contig", extratags=tags0)
    with tifffile.TiffFile(path, mode="r+") as tif:
        tif.pages[0].tags["PhotometricInterpretation"].overwrite(32803)
    return path


def write_single(path, f0, tags0):
    import tifffile

    tifffile.imwrite(path, f0, photometric=32803, extratags=tags0)
    return path


def frames(seed=0, lo=1500, hi=4000, black0=(512, 512, 512, 512), black1=(256, 256, 256, 256)):
    """(f0, f1, stored): frame 0 = A+B + black0, frame 1 = A + black1 (uint16)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(lo // 2, hi // 2, (H, W))
    b = rng.integers(lo // 2, hi // 2, (H, W))
    bm0 = np.array(black0).reshape(2, 2)[np.arange(H)[:, None] % 2, np.arange(W)[None] % 2]
    bm1 = np.array(black1).reshape(2, 2)[np.arange(H)[:, None] % 2, np.arange(W)[None] % 2]
    return (a + b + bm0).astype(np.uint16), (a + bm1).astype(np.uint16), a, b


def write_pair(folder, name="s1", shape=(24, 32), black=1024, white=16383):
    import cv2

    rng = np.random.default_rng(1)
    left = rng.integers(black, 9000, shape).astype(np.uint16)
    right = rng.integers(black, 9000, shape).astype(np.uint16)
    left[0, 0] = white
    cv2.imwrite(str(folder / f"{name}_left.png"), left)
    cv2.imwrite(str(folder / f"{name}_right.png"), right)
    return left, right
