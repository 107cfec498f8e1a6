"""Dual-pixel raw reading: exact CFA extraction on tifffile-written fixtures,
development consistency, orientation, crop, errors, view pairs and real Pixel 4 data."""


import numpy as np
import pytest
from rawfixtures import PIXEL4_DIR, PIXEL4_SKIP, H, W, dng_tags, frames, write_pair, write_single, write_spp2, write_subifd, write_two_ifd

from dpdeblur.errors import InputError, UsageError
from dpdeblur.io.dualpixel import FlatField, black_map, extract_views, srgb_decode, srgb_encode
from dpdeblur.io.raw import pair_paths, read_dual_pixel, read_raw_frames

B0, B1 = (500, 510, 520, 530), (250, 255, 260, 265)  # BlackLevel 2x2 patterns (row-major positions)
PIXEL = PIXEL4_DIR


def count_frames(path, limit=8):
    """Raw frames LibRaw exposes: raise shot_select (set before opening) until it refuses at unpack."""
    import rawpy

    n = 0
    while n < limit:
        r = rawpy.RawPy()
        r.set_unpack_params(shot_select=n)
        try:
            r.open_file(str(path))
            r.unpack()
        except rawpy.LibRawRequestForNonexistentImageError:
            break
        finally:
            r.close()
        n += 1
    return n


def pattern_map(black):
    return np.array(black).reshape(2, 2)[np.arange(H)[:, None] % 2, np.arange(W)[None] % 2]


def test_extract_views_exact():
    ab = np.array([[1100, 600, 4095]])
    stored = np.array([[350, 300, 2000]])
    v = extract_views(ab, stored, black_ab=100, black_stored=50, white_ab=4095, stored_view="right")
    # ab - 100 = [1000, 500, 3995]; s = [300, 250, 1950]; other = [700, 250, clipped -> s]
    np.testing.assert_array_equal(v.right, [[600, 500, 3900]])
    np.testing.assert_array_equal(v.left, [[1400, 500, 3900]])
    np.testing.assert_array_equal(v.combined, [[1000, 500, 3995]])
    np.testing.assert_array_equal(v.saturated, [[False, False, True]])
    v2 = extract_views(ab, stored, 100, 50, 4095, stored_view="left")
    np.testing.assert_array_equal(v2.left, v.right)
    with pytest.raises(UsageError, match="left' or 'right"):
        extract_views(ab, stored, 0, 0, 1, stored_view="top")


def _layouts(tmp_path, f0, f1):
    t0, t1 = dng_tags(B0, 16000), dng_tags(B1, 15000)
    return {
        "two-ifd": (write_two_ifd(tmp_path / "two.dng", f0, f1, t0, t1), B1, 15000),
        "subifd": (write_subifd(tmp_path / "sub.dng", f0, f1, t0, t1), B1, 15000),
        # one IFD: both samples share its levels
        "spp2": (write_spp2(tmp_path / "spp2.dng", f0, f1 - pattern_map(B1) + pattern_map(B0), t0), B0, 16000),
    }


@pytest.mark.parametrize("layout", ["two-ifd", "subifd", "spp2"])
def test_frames_levels_and_exact_views(tmp_path, layout):
    f0, f1, a, b = frames(black0=B0, black1=B1)
    path, black1, white1 = _layouts(tmp_path, f0, f1)[layout]
    raw0, fr, meta = read_raw_frames(path)
    try:
        colors = np.asarray(raw0.raw_colors_visible)
    finally:
        raw0.close()
    assert count_frames(path) == 2
    np.testing.assert_array_equal(fr[0].cfa, f0)
    # LibRaw reports black per colour index R, G, B, G2 = positions (0,0), (0,1), (1,1), (1,0)
    assert fr[0].black == (500, 510, 530, 520) and fr[0].white == 16000
    assert fr[1].black == (black1[0], black1[1], black1[3], black1[2]) and fr[1].white == white1
    assert meta["camera"] == "Canon EOS 5D Mark IV" and meta["white_balance"][:3] == [2.0, 1.0, 2.0]
    v = extract_views(fr[0].cfa, fr[1].cfa, black_map(colors, fr[0].black), black_map(colors, fr[1].black),
                      fr[0].white, "right")
    np.testing.assert_array_equal(v.right, 2 * a)  # the stored photodiode
    np.testing.assert_array_equal(v.left, 2 * b)
    np.testing.assert_array_equal(v.combined, a + b)
    assert not v.saturated.any()


def smooth_scene(share=(0.3, 0.7)):
    """Near-neutral smooth scene (R, B at half of G for WB 2/1/2) with a left->right share ramp."""
    yy, xx = np.mgrid[0:H, 0:W]
    g = 800 + 600 * np.sin(xx / 5.0) + 300 * np.cos(yy / 4.0)
    ab = np.rint(2 * g * np.where((yy % 2) == (xx % 2), 0.5, 1.0)).astype(int)
    a = np.rint(ab * (share[0] + (share[1] - share[0]) * xx / W)).astype(int)
    return (ab + pattern_map(B0)).astype(np.uint16), (a + pattern_map(B1)).astype(np.uint16)


def test_develop_consistency_orientation_crop(tmp_path):
    f0, f1 = smooth_scene()
    t0 = dng_tags(B0, 16000, orientation=6, crop=(2, 4, 40, 24))
    p = write_two_ifd(tmp_path / "rot.dng", f0, f1, t0, dng_tags(B1, 15000))
    v = read_dual_pixel(p, demosaic="LINEAR", linear=True)
    # sensor orientation kept (no rotation to 90 CW), cropped to DefaultCrop (x=2, y=4, 40x24)
    assert v.left.shape == (24, 40, 3) and v.meta["orientation"] == 6 and v.meta["crop"] == [4, 2, 24, 40]
    np.testing.assert_allclose(v.left + v.right, 2 * v.combined, atol=2e-4)  # linear develop of views
    assert 0.05 < v.combined.mean() < 0.5 and np.ptp(v.combined.mean((0, 1))) < 0.01  # neutral, no auto-bright
    # stored (right) share ramps 0.6 -> 1.4 across the width: left share falls
    assert v.meta["left_share"][0] > 1.2 > 1.0 > v.meta["left_share"][2]
    assert v.right[:, -8:].mean() > v.combined[:, -8:].mean() and v.right[:, :8].mean() < v.combined[:, :8].mean()
    s = read_dual_pixel(p)  # default: AHD, sRGB
    np.testing.assert_allclose(srgb_decode(s.combined), v.combined, atol=0.01)
    from PIL import Image

    exif = Image.Exif()
    assert s.exif[:2] in (b"II", b"MM")  # TIFF-structured, as every EXIF in dpdeblur.io
    exif.load(s.exif)
    assert exif[0x0112] == 6 and exif[0x010F] == "Canon"
    half = read_dual_pixel(p, scale=0.5, linear=True, demosaic="LINEAR")
    assert half.left.shape == (12, 20, 3) and abs(half.combined.mean() - v.combined.mean()) < 1e-3


def test_saturation_mask(tmp_path):
    f0, f1, a, b = frames(black0=B0, black1=B1)
    f0[3, 5] = f0[10, 20] = 16000
    p = write_two_ifd(tmp_path / "sat.dng", f0, f1, dng_tags(B0, 16000), dng_tags(B1, 15000))
    v = read_dual_pixel(p, demosaic="LINEAR")
    assert v.saturation_mask.sum() == 2 and v.saturation_mask[3, 5] and v.saturation_mask[10, 20]
    assert v.meta["saturation"] == pytest.approx(2 / (H * W), abs=1e-6)


def test_canon_tiff_path(tmp_path):
    """A TIFF with Make=Canon and two raw IFDs (no DNG tags) goes the CR2 way through LibRaw."""
    f0, f1, a, b = frames(black0=(0,) * 4, black1=(0,) * 4)
    t = dng_tags(dng=False)
    with pytest.raises(InputError, match="not a Dual Pixel RAW file .*identical"):
        read_dual_pixel(write_two_ifd(tmp_path / "same.CR2", f0, f0, t, t))
    p = write_two_ifd(tmp_path / "dp.CR2", f0, f1, t, t)
    raw0, fr, meta = read_raw_frames(p)
    raw0.close()
    assert fr[0].black == (0, 0, 0, 0) and meta["camera"] == "Canon EOS 5D Mark IV"
    v = extract_views(fr[0].cfa, fr[1].cfa, 0, 0, fr[0].white, "left")
    np.testing.assert_array_equal(v.left, 2 * a)
    np.testing.assert_array_equal(v.right, 2 * b)
    out = read_dual_pixel(p, stored_view="left")
    assert out.left.shape == (H, W, 3) and out.meta["stored_view"] == "left"


def test_bad_files(tmp_path):
    f0, f1, _, _ = frames()
    single = write_single(tmp_path / "one.dng", f0, dng_tags())
    with pytest.raises(InputError, match=r"one.dng: not a Dual Pixel RAW file \(one raw frame\)"):
        read_dual_pixel(single)
    full = write_two_ifd(tmp_path / "full.dng", f0, f1, dng_tags(), dng_tags()).read_bytes()
    (tmp_path / "cut.dng").write_bytes(full[: len(full) * 9 // 10])  # inside frame 1 data
    with pytest.raises(InputError, match="cut.dng: truncated or corrupt raw file"):
        read_dual_pixel(tmp_path / "cut.dng")
    (tmp_path / "photo.CR2").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(InputError, match="photo.CR2: not a raw file .*PNG image"):
        read_dual_pixel(tmp_path / "photo.CR2")
    (tmp_path / "empty.cr3").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        read_dual_pixel(tmp_path / "empty.cr3")
    with pytest.raises(InputError, match="no such file"):
        read_dual_pixel(tmp_path / "missing.dng")
    with pytest.raises(UsageError, match="scale"):
        read_dual_pixel(single, scale=2)


def test_view_pair_exact(tmp_path):
    left, right = write_pair(tmp_path)
    assert pair_paths(tmp_path / "s1_right.png")[2] == "s1"
    v = read_dual_pixel(tmp_path / "s1_right.png", linear=True)  # either file of the pair
    lv = (left.astype(np.float32) - 1024) / (16383 - 1024)
    rv = (right.astype(np.float32) - 1024) / (16383 - 1024)
    np.testing.assert_allclose(v.left[..., 0], lv, rtol=1e-6)
    np.testing.assert_allclose(v.right[..., 2], rv, rtol=1e-6)
    np.testing.assert_allclose(v.combined[..., 1], (lv + rv) / 2, rtol=1e-6)
    assert v.saturation_mask.sum() == 1 and v.saturation_mask[0, 0]
    s = read_dual_pixel(tmp_path / "s1_left.png", black_level=0, white_level=65535)
    np.testing.assert_allclose(s.left[..., 0], srgb_encode(left / 65535.0), atol=1e-6)
    import cv2

    cv2.imwrite(str(tmp_path / "p_left.pgm"), left)
    cv2.imwrite(str(tmp_path / "p_right.pgm"), right)
    np.testing.assert_array_equal(read_dual_pixel(tmp_path / "p_left.pgm").right, read_dual_pixel(tmp_path / "s1_left.png").right)
    (tmp_path / "s1_right.png").unlink()
    with pytest.raises(InputError, match="s1_right.png is missing"):
        read_dual_pixel(tmp_path / "s1_left.png")


def test_flat_field_exact_on_flat_scene():
    yy, xx = np.mgrid[0:20, 0:40].astype(np.float32)
    wl, wr = 0.5 + 0.01 * xx, 0.9 - 0.01 * xx  # complementary vignetting, linear
    ff = FlatField(wl, wr, smooth=40)
    l2, r2 = ff.apply(0.3 * wl, 0.3 * wr)  # a flat grey scene seen through that vignetting
    np.testing.assert_allclose(l2, r2, rtol=1e-5)
    np.testing.assert_allclose(l2 + r2, 0.3 * (wl + wr), rtol=1e-5)  # combined unchanged


@pytest.mark.skipif(not PIXEL.is_dir(), reason=PIXEL4_SKIP)
def test_real_pixel4_captures():
    ff = (PIXEL / "calibration" / "white_sheet_left.png", PIXEL / "calibration" / "white_sheet_right.png")
    full = read_dual_pixel(PIXEL / "001_left.png")
    assert full.left.shape == (1512, 2016, 3) and full.left.dtype == np.float32
    assert 0.1 < full.combined.mean() < 0.9 and full.meta["saturation"] < 0.01
    for sid in ("001", "002"):
        raw = read_dual_pixel(PIXEL / f"{sid}_right.png", linear=True, scale=0.25)
        flat = read_dual_pixel(PIXEL / f"{sid}_right.png", linear=True, scale=0.25, flat_field=ff)
        assert raw.left.shape == (378, 504, 3)

        def profile(v, axis):
            return np.log(v.left[..., 0].mean(axis) / v.right[..., 0].mean(axis))

        # the left/right ratio varies along the width (horizontal dual-pixel split), not the height
        assert profile(raw, 0).std() > 2 * profile(raw, 1).std()
        # the white-sheet flat-field removes most of that gradient (measured ~0.11 -> ~0.04)
        assert profile(flat, 0).std() < 0.5 * profile(raw, 0).std()
        np.testing.assert_allclose(flat.combined, raw.combined)
