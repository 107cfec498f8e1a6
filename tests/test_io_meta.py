"""EXIF orientation applied exactly once; EXIF and ICC carried to PNG/JPEG/TIFF with Orientation 1."""

import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import ImageOps

from dpdeblur.io.images import read_image, write_image
from dpdeblur.io.metadata import apply_orientation, exif_orientation, read_metadata

ICC = b"\x00\x00\x02\x0cfake-icc-profile" + bytes(range(200))


def make_exif(orientation, make="Canon"):
    ex = PILImage.Exif()
    ex[0x0112] = orientation
    ex[0x010F] = make
    return ex


def asym(h=6, w=10):
    a = np.zeros((h, w, 3), np.uint8)
    a[0, 0] = (255, 0, 0)  # top-left red
    a[:, -1, 1] = 200  # right column green
    return a


@pytest.mark.parametrize("o", range(1, 9))
def test_apply_orientation_matches_pillow(o):
    a = np.random.default_rng(o).integers(0, 255, (5, 7, 3)).astype(np.uint8)
    ref = np.asarray(ImageOps.exif_transpose(_with_orientation(a, o)))
    assert np.array_equal(apply_orientation(a, o), ref)


def _with_orientation(a, o):
    im = PILImage.fromarray(a)
    im.getexif()[0x0112] = o
    im.info["exif"] = make_exif(o).tobytes()
    return im


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_rotated_read_once_and_carried(tmp_path, ext):
    a = asym()
    src = tmp_path / f"rot{ext}"
    PILImage.fromarray(a).save(src, exif=make_exif(6), icc_profile=ICC, **({"quality": 100} if ext == ".jpg" else {}))
    im = read_image(src)
    assert im.meta["orientation"] == 6 and im.rgb.shape == (10, 6, 3)  # rotated 90 cw
    assert np.argmax(im.rgb[0, -1]) == 0  # the red top-left corner is now top-right
    assert exif_orientation(im.meta["exif"]) == 1 and im.meta["icc"] == ICC
    for out_ext in (".png", ".jpg", ".tif"):
        out = write_image(tmp_path / f"out{out_ext}", im.rgb, 8, exif=im.meta["exif"], icc=im.meta["icc"])
        meta = read_metadata(out)
        assert meta["orientation"] == 1 and meta["icc"] == ICC, out_ext
        with PILImage.open(out) as p:
            assert p.getexif().get(0x010F) == "Canon" and p.size == (6, 10)
        again = read_image(out)  # not rotated a second time
        assert again.rgb.shape == (10, 6, 3) and np.argmax(again.rgb[0, -1]) == 0


def test_tiff_16bit_metadata_roundtrip(tmp_path):
    a = (np.random.default_rng(0).random((8, 5, 3)) * 65535).astype(np.uint16)
    p = write_image(tmp_path / "x.tif", a, 16, exif=make_exif(3).tobytes()[6:], icc=ICC)
    im = read_image(p)
    assert im.bit_depth == 16 and im.meta["orientation"] == 1 and im.meta["icc"] == ICC
    assert np.array_equal(np.rint(im.rgb * 65535).astype(np.uint16), a)


def test_no_metadata_is_fine(tmp_path):
    p = write_image(tmp_path / "plain.png", asym(), 8)
    im = read_image(p)
    assert im.meta == {"exif": None, "icc": None, "orientation": 1}
