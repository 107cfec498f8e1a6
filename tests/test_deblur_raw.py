"""`dpdeblur deblur photo.dng`: raw dual-pixel files split in memory, deblurred, written with EXIF."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import rawfixtures as rf
from dpdeblur.cli import app
from dpdeblur.models.weights import save_weights

@pytest.fixture(scope="module")
def weights(tmp_path_factory, tiny):
    p = tmp_path_factory.mktemp("w") / "dp.safetensors"
    save_weights(tiny.model("dmtnet-t"), p)  # the file records the tiny config
    return p


def raw_file(path, orientation=1):
    f0, f1, _, _ = rf.frames(seed=3)
    rf.write_two_ifd(path, f0, f1, rf.dng_tags(orientation=orientation), rf.dng_tags(black=(256,) * 4, orientation=orientation))
    return path


def test_deblur_raw_end_to_end(tmp_path, weights):
    src = raw_file(tmp_path / "photo.dng", orientation=6)
    single = tmp_path / "single.dng"
    f0, _, _, _ = rf.frames(seed=4)
    rf.write_single(single, f0, rf.dng_tags())
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["deblur", str(src), str(single), "-o", str(out), "--model", "dmtnet-t", "--weights", str(weights),
                                 "--json", "--tile", "0"])
    assert r.exit_code == 1, r.output  # the single-frame file fails, the batch goes on
    rep = json.loads(r.stdout[r.stdout.index("{"):])
    by = {i["name"]: i for i in rep["items"]}
    assert by[str(single)]["status"] == "failed" and "not a Dual Pixel RAW file" in by[str(single)]["error"]
    ok = by[str(src)]
    assert ok["status"] == "ok"
    res = out / "photo_deblurred.tif"  # raw -> 16-bit TIFF
    assert ok["outputs"] == [str(res)]
    import tifffile

    with tifffile.TiffFile(res) as tf:
        page = tf.pages[0]
        arr = page.asarray()
        assert arr.dtype == np.uint16 and arr.ndim == 3 and arr.shape[2] == 3
        # the network ran in sensor orientation (48x32, disparity horizontal); the result is
        # turned upright for EXIF orientation 6 (90 degrees clockwise) and written with Orientation 1
        assert arr.shape[0] > arr.shape[1]
        assert page.tags.get(274) is None or page.tags[274].value == 1
    import dpdeblur
    from dpdeblur.io.metadata import apply_orientation
    from dpdeblur.io.raw import read_dual_pixel

    v = read_dual_pixel(src)
    sensor = dpdeblur.deblur((v.left, v.right), model="dmtnet-t", weights=weights, tile=0)
    assert sensor.shape[1] > sensor.shape[0]  # views stay in sensor orientation through the network
    assert np.abs(arr / 65535.0 - apply_orientation(sensor, 6)).max() <= 1 / 65535 + 1e-6


def test_deblur_raw_python_api(tmp_path, weights):
    import dpdeblur
    from dpdeblur.io.raw import read_dual_pixel

    src = raw_file(tmp_path / "a.dng")
    views = read_dual_pixel(src)
    y = dpdeblur.deblur(src, model="dmtnet-t", weights=weights, tile=0)
    assert y.shape == views.combined.shape and y.dtype == np.float32
    # the same result as handing the views in explicitly
    y2 = dpdeblur.deblur((views.left, views.right), model="dmtnet-t", weights=weights, tile=0)
    assert np.allclose(y, y2, atol=1e-6)


def test_bad_stored_view_is_usage_error(tmp_path, weights):
    src = raw_file(tmp_path / "a.dng")
    r = CliRunner().invoke(app, ["deblur", str(src), "--model", "dmtnet-t", "--weights", str(weights),
                                 "--stored-view", "top"])
    assert r.exit_code == 2 and "--stored-view" in r.output
