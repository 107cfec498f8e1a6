"""`dpdeblur deblur` end to end on generated files with tiny models (weights saved by save_weights,
which records the tiny builder config in the file: no --model-config needed)."""

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image as PILImage
from typer.testing import CliRunner

from dpdeblur.cli import app
from dpdeblur.io.images import read_image, write_image
from dpdeblur.io.metadata import read_metadata
from dpdeblur.models import create_model
from dpdeblur.models.weights import save_weights

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
ENV.pop("DPDEBLUR_WEIGHTS_DIR", None)

@pytest.fixture(scope="module")
def weights(tmp_path_factory, tiny):
    d = tmp_path_factory.mktemp("w")
    save_weights(tiny.model("dmtnet-t"), d / "dp.safetensors")
    save_weights(tiny.model("unet"), d / "rgb.safetensors")  # a single-image model for the rgb code path
    return d


def cli(*args):
    r = CliRunner().invoke(app, ["deblur", *[str(a) for a in args]], catch_exceptions=False)
    return r


def rnd(h, w, c=3, depth=8, seed=0):
    top = 255 if depth == 8 else 65535
    return np.random.default_rng(seed).integers(0, top + 1, (h, w, c)).astype(np.uint8 if depth == 8 else np.uint16)


@pytest.fixture()
def pairs(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    for v, seed in (("L", 1), ("R", 2)):
        write_image(d / f"a_{v}.png", rnd(40, 56, seed=seed), 8)
        write_image(d / f"b_{v}.tif", rnd(40, 56, depth=16, seed=seed), 16)
    write_image(d / "c_L.png", rnd(40, 56), 8)  # unpaired
    write_image(d / "d_L.png", rnd(40, 56), 8)  # wrong pair: sizes differ
    write_image(d / "d_R.png", rnd(44, 56), 8)
    write_image(d / "e.png", rnd(40, 56), 8)  # not a view
    (d / "z_L.png").write_bytes(b"")  # zero-byte
    write_image(d / "z_R.png", rnd(40, 56), 8)
    (d / "y_L.png").write_bytes(b"\x89PNG\r\n\x1a\ncorrupt")
    write_image(d / "y_R.png", rnd(40, 56), 8)
    return d


def test_batch_pairs_json_skip_overwrite(pairs, weights, tmp_path):
    out = tmp_path / "out"
    args = [pairs, "-o", out, "--model", "dmtnet-t", "--weights", weights / "dp.safetensors", "--tile", "32", "--overlap", "16", "--json"]
    r = cli(*args)
    assert r.exit_code == 1, r.output  # partial failure
    rep = json.loads(r.stdout)
    assert (rep["ok"], rep["skipped"], rep["failed"]) == (2, 0, 5)
    errors = " ".join(i["error"] for i in rep["items"] if i["status"] == "failed")
    for needle in ("no matching c_R", "differ in size", "needs two views", "empty (0 bytes)", "not a readable"):
        assert needle in errors
    a, b = read_image(out / "a_deblurred.png"), read_image(out / "b_deblurred.tif")
    assert (a.bit_depth, b.bit_depth) == (8, 16) and a.rgb.shape == (40, 56, 3)
    assert sorted(p.name for p in out.iterdir()) == ["a_deblurred.png", "b_deblurred.tif"]  # no temp files left
    mtime = (out / "a_deblurred.png").stat().st_mtime_ns
    rep2 = json.loads(cli(*args).stdout)
    assert (rep2["ok"], rep2["skipped"]) == (0, 2) and (out / "a_deblurred.png").stat().st_mtime_ns == mtime
    r3 = cli("--left", pairs / "a_L.png", "--right", pairs / "a_R.png", *args[1:], "--overwrite", "--bit-depth", "16", "--ext", "tif")
    assert r3.exit_code == 0 and json.loads(r3.stdout)["ok"] == 1
    assert read_image(out / "a_deblurred.tif").bit_depth == 16


def test_views_stacked_right_then_left(pairs, weights, tmp_path):
    import dpdeblur

    model = create_model("dmtnet-t", weights=weights / "dp.safetensors")  # the tiny config comes from the file
    l, r = read_image(pairs / "a_L.png").rgb, read_image(pairs / "a_R.png").rgb
    y = dpdeblur.deblur((l, r), model=model, tile=0)
    import torch

    x = torch.cat([torch.from_numpy(v).permute(2, 0, 1) for v in (r, l)])[None]
    with torch.inference_mode():
        ref = model(x)[0].clamp(0, 1).permute(1, 2, 0).numpy()
    assert np.abs(y - ref).max() < 1e-6
    out = tmp_path / "o"
    cli("--left", pairs / "a_L.png", "--right", pairs / "a_R.png", "-o", out, "--model", "dmtnet-t",
        "--weights", weights / "dp.safetensors", "--tile", "0", "--bit-depth", "16", "--ext", "png")
    assert np.abs(read_image(out / "a_deblurred.png").rgb - ref).max() <= 0.5 / 65535 + 1e-6
    # the path API pairs <id>_L with <id>_R by itself
    assert np.abs(dpdeblur.deblur(str(pairs / "a_L.png"), model=model, tile=0) - y).max() < 1e-6


def test_long_view_names_pair_like_train_and_sensor_pairs_go_to_the_raw_reader(tmp_path, weights):
    """deblur reads view names as train does (one matcher, dpdeblur.data.layouts.match_view):
    sRGB ``<id>_left/_right`` images pair like ``<id>_L/_R``; one-channel 16-bit
    ``<id>_left/_right`` files are Pixel sensor pairs, developed by the raw reader (black 1024)."""
    import dpdeblur
    from dpdeblur.data.sets import find_pairs
    from dpdeblur.io.raw import is_sensor_pair, read_dual_pixel
    from rawfixtures import write_pair

    d = tmp_path / "in"
    d.mkdir()
    for v, seed in (("left", 1), ("right", 2)):
        write_image(d / f"a_{v}.png", rnd(40, 56, seed=seed), 8)  # sRGB views, long names
    for v, seed in (("L", 1), ("R", 2)):
        write_image(d / f"b_{v}.png", rnd(40, 56, seed=seed), 8)  # the same views, short names
    write_pair(d, "s1", shape=(32, 48))  # a Pixel sensor pair
    assert [is_sensor_pair(d / f) for f in ("a_left.png", "b_L.png", "s1_left.png", "s1_right.png")] == [False, False, True, True]
    # train pairs the long names too (the same matcher)
    tv, sharp = tmp_path / "tv", tmp_path / "sharp"
    tv.mkdir(), sharp.mkdir()
    for v in ("left", "right"):
        (tv / f"a_{v}.png").write_bytes((d / f"a_{v}.png").read_bytes())
    write_image(sharp / "a.png", rnd(40, 56), 8)
    assert [(s.id, s.left.name, s.right.name) for s in find_pairs("folder", left=tv, right=tv, sharp=sharp).samples] == [
        ("a", "a_left.png", "a_right.png")]

    out = tmp_path / "o"
    r = cli(d, "-o", out, "--model", "dmtnet-t", "--weights", weights / "dp.safetensors", "--tile", "0", "--json")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert rep["ok"] == 3 and rep["failed"] == 0  # a (pair), b (pair), s1 (one raw item for its two files)
    assert sorted(p.name for p in out.iterdir()) == ["a_deblurred.png", "b_deblurred.png", "s1_deblurred.png"]
    # a_left/a_right hold the same pixels as b_L/b_R: the same result
    assert np.array_equal(read_image(out / "a_deblurred.png").rgb, read_image(out / "b_deblurred.png").rgb)
    # the sensor pair went through the raw reader: 16-bit output equal to deblurring its developed
    # views, one channel like the sensor's files (the mean of the model's three)
    model = create_model("dmtnet-t", weights=weights / "dp.safetensors")
    v = read_dual_pixel(d / "s1_left.png")
    assert v.meta["monochrome"]
    ref = dpdeblur.deblur((v.left, v.right), model=model, tile=0).mean(axis=2)
    got = read_image(out / "s1_deblurred.png")
    assert got.bit_depth == 16 and got.gray and np.abs(got.rgb[..., 0] - ref).max() <= 0.5 / 65535 + 1e-6
    # a long-named view alone names its missing twin in the same style
    (d / "a_right.png").unlink()
    rep = json.loads(cli(d / "a_left.png", "-o", out, "--model", "dmtnet-t", "--weights", weights / "dp.safetensors",
                         "--json").stdout)
    assert rep["failed"] == 1 and "no matching a_right.*" in rep["items"][0]["error"]


def test_dpdd_layout(tmp_path, weights):
    root = tmp_path / "dpdd"
    for split in ("test",):
        for v, seed in (("l", 1), ("r", 2)):
            (root / f"{split}_{v}" / "source").mkdir(parents=True)
            for i in ("1P0A1", "1P0A2"):
                write_image(root / f"{split}_{v}" / "source" / f"{i}_{v.upper()}.png", rnd(32, 48, depth=16, seed=seed), 16)
    r = cli(root, "-o", tmp_path / "o", "--model", "dmtnet-t", "--weights", weights / "dp.safetensors", "--json")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "o/test").iterdir()) == ["1P0A1_deblurred.png", "1P0A2_deblurred.png"]


def test_dpdd_root_results_go_to_split_folders_never_into_the_data_set(tmp_path, weights):
    """Ids repeat across splits (synth's, many data sets'): each split gets its own folder, under -o
    or, without it, under <root>/deblurred, never among the data set's images."""
    from dpdeblur.data import find_pairs

    root = tmp_path / "dpdd"
    for split, seed in (("train", 1), ("test", 3)):
        for v in "lr":
            write_image(root / f"{split}_{v}/source/001_{v.upper()}.png", rnd(32, 48, depth=16, seed=seed), 16)
        for part in ("source", "target"):
            write_image(root / f"{split}_c/{part}/001.png", rnd(32, 48, depth=16, seed=seed), 16)
    before = sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))
    w = ("--model", "dmtnet-t", "--weights", weights / "dp.safetensors")
    r = CliRunner().invoke(app, ["deblur", str(root), "-o", str(tmp_path / "o"), *map(str, w)])
    assert r.exit_code == 0, r.output
    assert sorted(p.relative_to(tmp_path / "o").as_posix() for p in (tmp_path / "o").rglob("*.png")) == [
        "test/001_deblurred.png", "train/001_deblurred.png"]
    assert f"results: {(tmp_path / 'o').resolve()}/<split>" in " ".join(r.output.split())
    a, b = (read_image(tmp_path / f"o/{s}/001_deblurred.png").rgb for s in ("train", "test"))
    assert not np.array_equal(a, b)  # two different inputs, two results: nothing overwritten
    r = CliRunner().invoke(app, ["deblur", str(root), *map(str, w), "--json"])
    assert r.exit_code == 0, r.output
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if not p.as_posix().startswith(str(root / "deblurred"))) == before
    assert sorted(json.loads(r.stdout)["items"][i]["outputs"][0] for i in range(2)) == [
        str(root / "deblurred/test/001_deblurred.png"), str(root / "deblurred/train/001_deblurred.png")]
    assert [s.id for s in find_pairs("dpdd", root, "train").samples] == ["001"]  # the data set reads as before
    r = CliRunner().invoke(app, ["deblur", str(root), *map(str, w), "--json"])  # a re-run skips both
    assert r.exit_code == 0 and json.loads(r.stdout)["skipped"] == 2


def test_rgb_model_gray_rgba_rotated(tmp_path, weights):
    d = tmp_path / "in"
    d.mkdir()
    write_image(d / "gray.png", rnd(30, 40, depth=16)[..., 0], 16)
    write_image(d / "grayrgb.png", np.repeat(rnd(30, 40, depth=16)[..., :1], 3, axis=2), 16)  # the same pixels as RGB
    PILImage.fromarray(np.dstack([rnd(30, 40)[..., 0], np.full((30, 40), 200, np.uint8)]), "LA").save(d / "graya.png")
    write_image(d / "rgba.png", rnd(30, 40), 8, alpha=np.linspace(0, 1, 1200, dtype=np.float32).reshape(30, 40))
    ex = PILImage.Exif()
    ex[0x0112] = 6
    ex[0x010F] = "Canon"
    PILImage.fromarray(rnd(30, 40)).save(d / "rot.jpg", exif=ex, icc_profile=b"icc" * 50, quality=95)
    r = cli(d, "-o", tmp_path / "o", "--model", "unet", "--weights", weights / "rgb.safetensors", "--json", "--quality", "90")
    assert r.exit_code == 0, r.output
    o = tmp_path / "o"
    g = read_image(o / "gray_deblurred.png")
    assert g.bit_depth == 16 and g.gray and g.rgb.shape == (30, 40, 3)
    # gray in, gray out: one channel, the mean of what the model gives the same pixels as RGB
    one = cv2.imread(str(o / "gray_deblurred.png"), cv2.IMREAD_UNCHANGED)
    three = cv2.imread(str(o / "grayrgb_deblurred.png"), cv2.IMREAD_UNCHANGED)
    assert one.shape == (30, 40) and one.dtype == np.uint16 and three.shape == (30, 40, 3)
    assert np.abs(one.astype(np.int64) - three.astype(np.float64).mean(axis=2)).max() <= 1
    ga = read_image(o / "graya_deblurred.png")  # gray + alpha: written as RGBA, the alpha kept
    assert not ga.gray and ga.alpha is not None and np.abs(ga.alpha - 200 / 255).max() < 1e-6
    a = read_image(o / "rgba_deblurred.png")
    assert a.alpha is not None and np.abs(a.alpha - np.linspace(0, 1, 1200).reshape(30, 40)).max() < 1 / 255
    rot = read_image(o / "rot_deblurred.jpg")
    assert rot.rgb.shape == (40, 30, 3)  # upright, rotated exactly once
    meta = read_metadata(o / "rot_deblurred.jpg")
    assert meta["orientation"] == 1 and meta["icc"] == b"icc" * 50
    rep = json.loads(r.stdout)
    assert {i["name"].split("/")[-1]: i["info"]["orientation"] for i in rep["items"]}["rot.jpg"] == 6
    assert {i["name"].split("/")[-1]: i["info"]["channels"] for i in rep["items"]} == {
        "gray.png": 1, "grayrgb.png": 3, "graya.png": 4, "rgba.png": 4, "rot.jpg": 3}  # the written file's (alpha counts)


@pytest.mark.parametrize("depth", [8, 16])  # 8-bit: view images; 16-bit one-channel: raw Pixel view files
def test_gray_views_give_a_gray_result(tmp_path, weights, depth):
    d = tmp_path / "in"
    d.mkdir()
    for v, seed in (("L", 1), ("R", 2)):
        write_image(d / f"g_{v}.png", rnd(40, 56, depth=depth, seed=seed)[..., 0], depth)
    write_image(d / "m_L.png", rnd(40, 56, depth=depth, seed=3)[..., 0], depth)  # one gray view, one colour view
    write_image(d / "m_R.png", rnd(40, 56, depth=depth, seed=4), depth)
    r = cli(d, "-o", tmp_path / "o", "--model", "dmtnet-t", "--weights", weights / "dp.safetensors", "--json")
    assert r.exit_code == 0, r.output
    g = cv2.imread(str(tmp_path / "o" / "g_deblurred.png"), cv2.IMREAD_UNCHANGED)
    assert g.shape == (40, 56) and g.dtype == (np.uint8 if depth == 8 else np.uint16)
    if depth == 8:  # a 16-bit one-channel file beside a colour one is not a raw view pair; 8-bit is
        assert cv2.imread(str(tmp_path / "o" / "m_deblurred.png"), cv2.IMREAD_UNCHANGED).shape == (40, 56, 3)


def run(*args):
    return subprocess.run([sys.executable, "-m", "dpdeblur", "deblur", *map(str, args)], capture_output=True, text=True, env=ENV)


def test_missing_weights_fail_before_work(pairs, tmp_path):
    r = run(pairs, "-o", tmp_path / "o", "--model", "dmtnet-b")  # dmtnet-b ships no weights
    assert r.returncode == 1
    assert "dmtnet-b" in r.stderr and "--weights" in r.stderr and "dpdeblur train" in r.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("extra", [["--left", "x_L.png"], ["--blend", "plain"], ["--bit-depth", "12"], ["--model-config", "oops"]])
def test_usage_errors_exit_2(pairs, weights, extra):
    r = cli(pairs, "--model", "dmtnet-t", "--weights", weights / "dp.safetensors", *extra)
    assert r.exit_code == 2, r.output
    assert "error:" in r.output


def test_rgb_api_accepts_arrays(weights):
    import dpdeblur

    img = rnd(33, 47)
    y = dpdeblur.deblur(img, model="unet", weights=weights / "rgb.safetensors", tile=32, overlap=16)
    assert y.shape == (33, 47, 3) and y.dtype == np.float32 and 0 <= y.min() and y.max() <= 1
    with pytest.raises(Exception, match="dual-pixel"):
        dpdeblur.deblur(img, model="dmtnet-t", weights=weights / "dp.safetensors")


def test_globs_and_recursive_folders(pairs, weights, tmp_path):
    sub = pairs / "sub"
    sub.mkdir()
    for v, seed in (("L", 3), ("R", 4)):
        write_image(sub / f"k_{v}.jpg", rnd(40, 56, seed=seed), 8)
    common = ["--model", "dmtnet-t", "--weights", weights / "dp.safetensors", "--json"]
    r = cli(str(pairs / "a_*.png"), "-o", tmp_path / "g", *common)  # a glob: the twins pair up
    assert r.exit_code == 0 and json.loads(r.stdout)["ok"] == 1
    r = cli(str(pairs / "sub"), "-o", tmp_path / "r", *common, "--ext", "png")
    assert r.exit_code == 0 and (tmp_path / "r" / "k_deblurred.png").is_file()
    r = cli(pairs, "-r", "-o", tmp_path / "rr", *common)
    rep = json.loads(r.stdout)
    assert rep["ok"] == 3 and (tmp_path / "rr" / "k_deblurred.jpg").is_file()  # a, b and sub/k


def test_help_does_not_import_torch():
    code = ("import sys; from dpdeblur.cli import app; import typer.testing as tt;"
            "r=tt.CliRunner().invoke(app, ['deblur', '--help']); assert r.exit_code==0 and '--tile' in r.output;"
            "print('torch' in sys.modules, 'numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, check=True).stdout.split()
    assert out == ["False", "False"]


def test_rerun_beside_the_inputs_skips_its_own_outputs(tmp_path, weights):
    """Outputs written beside the inputs are not taken for inputs by the next run over the folder
    (a glob or a folder); named explicitly, such a file is still an input."""
    d = tmp_path / "in"
    for v, seed in (("L", 1), ("R", 2)):
        write_image(d / f"x_{v}.png", rnd(40, 56, seed=seed), 8)
    common = ["--model", "dmtnet-t", "--weights", weights / "dp.safetensors", "--json"]
    r = cli(d, *common)
    assert r.exit_code == 0 and json.loads(r.stdout)["ok"] == 1 and (d / "x_deblurred.png").is_file()
    for again in (d, str(d / "*.png")):
        r = cli(again, *common)
        rep = json.loads(r.stdout)
        assert r.exit_code == 0, r.output
        assert (rep["ok"], rep["skipped"], rep["failed"], len(rep["items"])) == (0, 1, 0, 1)
    r = cli(d / "x_deblurred.png", "-o", tmp_path / "o", *common)  # explicit: an input like any other
    assert r.exit_code == 1 and "needs two views" in json.loads(r.stdout)["items"][0]["error"]


def test_json_reports_an_error_before_any_work(tmp_path, weights):
    """--json: scripts get a JSON document on stdout for a usage error or a failure too."""
    r = cli(tmp_path / "nope.png", "--model", "dmtnet-t", "--weights", weights / "dp.safetensors", "--json")
    assert r.exit_code == 1 and json.loads(r.stdout) == {"error": r.stderr.split("error: ", 1)[1].strip(), "exit_code": 1}
    r = cli(tmp_path / "nope.png", "--model", "dmtnet-t", "--tile", "-3", "--json")
    doc = json.loads(r.stdout)
    assert r.exit_code == 2 and doc["exit_code"] == 2 and "--tile" in doc["error"]


def test_8bit_views_named_left_right_are_images_not_sensor_data(tmp_path, weights):
    """An 8-bit ``<id>_left.pgm`` pair holds developed views, not 16-bit linear sensor data (which
    would read as black under the Pixel's black level): it is deblurred as a view pair."""
    from dpdeblur.io.raw import is_sensor_pair

    g = rnd(40, 56, c=1, seed=3)[..., 0]
    for side in ("left", "right"):
        cv2.imwrite(str(tmp_path / f"v_{side}.pgm"), g)
        cv2.imwrite(str(tmp_path / f"s_{side}.pgm"), g.astype(np.uint16) * 64 + 1024)
    assert not is_sensor_pair(tmp_path / "v_left.pgm") and is_sensor_pair(tmp_path / "s_left.pgm")
    r = cli(tmp_path / "v_left.pgm", "-o", tmp_path / "o", "--model", "dmtnet-t", "--weights", weights / "dp.safetensors")
    assert r.exit_code == 0, r.output
    out = read_image(tmp_path / "o/v_deblurred.png")
    assert out.bit_depth == 8 and out.gray and out.rgb.mean() > 0.2  # the views' level, not black


def test_scale_deblurs_area_averaged_inputs(tmp_path, weights):
    """--scale S: every input area-averaged in linear light, deblurred and written at that size;
    the same as deblurring views scaled beforehand."""
    from dpdeblur.io.dualpixel import area_scale, srgb_decode, srgb_encode
    from dpdeblur.inference.pipeline import Deblurrer, Loaded

    left, right = rnd(64, 96, depth=16, seed=1), rnd(64, 96, depth=16, seed=2)
    write_image(tmp_path / "p_L.png", left, 16)
    write_image(tmp_path / "p_R.png", right, 16)
    w = weights / "dp.safetensors"
    r = CliRunner().invoke(app, ["deblur", str(tmp_path / "p_L.png"), "--weights", str(w), "--scale", "0.5",
                                 "--tile", "0", "-o", str(tmp_path / "o"), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["items"][0]["info"]["size"] == [48, 32]
    got = read_image(tmp_path / "o/p_deblurred.png").rgb
    views = {k: srgb_encode(area_scale(srgb_decode(v.astype(np.float32) / 65535), 0.5)) for k, v in (("left", left), ("right", right))}
    want = Deblurrer(None, w, tile=0).run(Loaded(views=views, bit_depth=16))
    assert got.shape == (32, 48, 3) and np.abs(got - want).max() < 2 / 65535
    sensor = (1024 + np.random.default_rng(3).random((40, 60)) * 15000).astype(np.uint16)
    for side in ("left", "right"):  # a raw sensor pair: scaled by the raw reader, in linear light
        cv2.imwrite(str(tmp_path / f"s_{side}.png"), sensor)
    r = CliRunner().invoke(app, ["deblur", str(tmp_path / "s_left.png"), "--weights", str(w), "--scale", "0.25",
                                 "--tile", "0", "-o", str(tmp_path / "o"), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["items"][0]["info"]["size"] == [15, 10]
    for bad in ("0", "1.5", "-1"):
        r = CliRunner().invoke(app, ["deblur", str(tmp_path / "p_L.png"), "--weights", str(w), "--scale", bad, "-o", str(tmp_path / "x")])
        assert r.exit_code == 2 and f"--scale {float(bad)}: must be in (0, 1]" in r.output and not (tmp_path / "x").exists()
