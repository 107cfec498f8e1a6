"""Image I/O core: exact round trips at 8 and 16 bits, gray and alpha handling."""

import numpy as np
import pytest

from dpdeblur.errors import InputError
from dpdeblur.io.images import from_float, read_image, write_image


@pytest.mark.parametrize("ext", [".png", ".tif"])
@pytest.mark.parametrize("depth", [8, 16])
def test_exact_roundtrip(tmp_path, ext, depth):
    rng = np.random.default_rng(0)
    top = 255 if depth == 8 else 65535
    a = rng.integers(0, top + 1, (7, 9, 3)).astype(np.uint8 if depth == 8 else np.uint16)
    p = write_image(tmp_path / f"x{ext}", a, bit_depth=depth)
    im = read_image(p)
    assert im.bit_depth == depth
    assert np.array_equal(from_float(im.rgb, depth), a)  # exact, channel order kept


def test_gray_and_alpha(tmp_path):
    g = np.arange(12, dtype=np.uint16).reshape(3, 4) * 1000
    p = write_image(tmp_path / "g.png", g, bit_depth=16)
    im = read_image(p)
    assert im.rgb.shape == (3, 4, 3) and np.allclose(im.rgb[..., 0], im.rgb[..., 2])
    rgb = np.random.default_rng(1).random((5, 6, 3)).astype(np.float32)
    alpha = np.linspace(0, 1, 30, dtype=np.float32).reshape(5, 6)
    p = write_image(tmp_path / "a.png", rgb, bit_depth=8, alpha=alpha)
    im = read_image(p)
    assert im.alpha is not None and np.abs(im.alpha - alpha).max() <= 0.5 / 255 + 1e-6
    assert np.abs(im.rgb - rgb).max() <= 0.5 / 255 + 1e-6


def test_bad_files(tmp_path):
    (tmp_path / "z.png").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        read_image(tmp_path / "z.png")
    (tmp_path / "c.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(InputError, match="not a readable"):
        read_image(tmp_path / "c.png")


def test_float_tiff_out_of_range_is_clipped_with_a_warning(tmp_path):
    import cv2

    a = np.full((8, 8, 3), 0.5, np.float32)
    a[0, 0] = 2.5
    a[1, 1] = -0.25
    cv2.imwrite(str(tmp_path / "hdr.tif"), a)
    with pytest.warns(UserWarning, match=r"hdr\.tif: 6 float sample\(s\) outside \[0, 1\] \(largest 2\.5\) were clipped"):
        img = read_image(tmp_path / "hdr.tif")
    assert img.bit_depth == 16 and img.rgb.max() == 1.0 and img.rgb.min() == 0.0
    assert np.allclose(img.rgb[2:, 2:], 0.5, atol=1e-6)


def test_multi_page_tiff_reads_page_one_and_says_so(tmp_path):
    import cv2

    pages = [np.full((8, 8, 3), 40 * (i + 1), np.uint8) for i in range(3)]
    cv2.imwritemulti(str(tmp_path / "stack.tif"), pages)
    with pytest.warns(UserWarning, match=r"stack\.tif: 3 pages; only the first is read"):
        img = read_image(tmp_path / "stack.tif")
    assert np.allclose(img.rgb, 40 / 255)
    write_image(tmp_path / "one.tif", pages[0], 8)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_image(tmp_path / "one.tif")  # a single page says nothing
