"""dpdeblur synth: dual-pixel PSFs, rendering conventions, data set layout and CLI."""

import json
import math
import cv2
import numpy as np
import pytest

from dpdeblur.data import synth_sources
from dpdeblur.io.dualpixel import srgb_decode
from dpdeblur.data.synth import (
    SynthParams, dp_psf, make_dataset, parse_split, read_depth, synthesize_layered, synthesize_pair,
)

# the classic simulator: clean half-discs on the given values (no linearisation, exposure or tone)
CLASSIC = dict(psf="disc", linear=False, tone="none", exposure=None, white_balance=0.0, gray=0.0, bits8=0.0)
CLEAN = dict(noise=0.0, vignetting=0.0, **CLASSIC)


def run(*args):
    """In-process CLI call (fast); the subprocess path is covered by tests/test_cli.py."""
    from typer.testing import CliRunner

    from dpdeblur.cli import app

    r = CliRunner().invoke(app, list(args))
    r.returncode = r.exit_code
    return r


def centroid_x(psf):
    x = np.arange(psf.shape[1]) - psf.shape[1] // 2
    return float((psf.sum(0) * x).sum() / psf.sum())


@pytest.mark.parametrize("r", [1.0, 2.5, 6.0])
def test_psf_halves_are_mirrors_and_sum_to_the_disc(r):
    left, right = dp_psf(r)
    assert left.shape == right.shape == (2 * math.ceil(r + 0.5) + 1,) * 2
    np.testing.assert_array_equal(left, right[:, ::-1])
    assert left.sum() == pytest.approx(0.5, abs=1e-6) and right.sum() == pytest.approx(0.5, abs=1e-6)
    disc = left + right
    np.testing.assert_allclose(disc, disc.T, atol=1e-7)  # round: symmetric under transposition
    np.testing.assert_allclose(disc, disc[::-1, ::-1], atol=1e-7)
    # area coverage: a fully covered pixel holds 1 / (pi r^2); the rim pixels are partial (soft edge)
    assert disc[disc.shape[0] // 2, disc.shape[1] // 2] == pytest.approx(disc.max())
    assert 1.0 / disc.max() == pytest.approx(math.pi * r * r, rel=0.05)
    rim = disc[disc.shape[0] // 2, :]
    assert 0 < rim[disc.shape[1] // 2 + math.ceil(r)] < disc.max() or rim[-1] == 0


def test_sign_flips_which_half_each_view_gets():
    lp, rp = dp_psf(4.0)
    ln, rn = dp_psf(-4.0)
    assert centroid_x(lp) == pytest.approx(-4 * 4.0 / (3 * math.pi), abs=0.15)  # half-disc centroid
    assert centroid_x(rp) > 0
    assert centroid_x(ln) > 0 and centroid_x(rn) < 0
    np.testing.assert_array_equal(lp, rn)
    assert dp_psf(0.0)[0].shape == (1, 1) and dp_psf(0.0)[0][0, 0] == 0.5


def test_in_focus_pixels_are_untouched():
    rng = np.random.default_rng(1)
    sharp = rng.uniform(0, 1, (40, 64, 3)).astype(np.float32)
    depth = np.full((40, 64), 2.0, np.float32)
    depth[:, 40:] = 8.0  # far part defocused
    p = SynthParams(max_radius=4, focus=2.0, **CLEAN)
    _, left, right, comb = synthesize_pair(sharp, depth, p, np.random.default_rng(0))
    far = 40 - 6  # beyond the largest kernel's reach
    for a in (left, right, comb):
        np.testing.assert_allclose(a[:, :far], sharp[:, :far], atol=1e-6)
    assert np.abs(left[:, 44:] - sharp[:, 44:]).mean() > 0.05  # the far part is blurred


def test_combined_is_the_sum_of_the_halves():
    rng = np.random.default_rng(2)
    sharp = rng.uniform(0.2, 0.4, (48, 64, 3)).astype(np.float32)  # nothing clips
    depth = rng.uniform(1, 10, (48, 64)).astype(np.float32)
    _, left, right, comb = synthesize_pair(sharp, depth, SynthParams(noise=0.02, vignetting=0.3, **CLASSIC), np.random.default_rng(0))
    np.testing.assert_allclose(comb, (left + right) / 2, atol=1e-6)
    assert not np.allclose(left, right, atol=0.01)  # vignetting + noise differ per view
    # complementary vignetting: left view brighter on the left side, right view on the right
    assert left[:, :8].mean() > right[:, :8].mean() and right[:, -8:].mean() > left[:, -8:].mean()


@pytest.mark.parametrize("mode", ["depth", "layered", "plane"])
def test_constant_image_stays_constant(mode):
    c = np.full((48, 64, 3), 0.37, np.float32)
    rng = np.random.default_rng(3)
    p = SynthParams(max_radius=6, **CLEAN)
    if mode == "layered":
        sharp, *views = synthesize_layered(c, [c, c, c], p, rng)
        np.testing.assert_allclose(sharp, 0.37, atol=1e-6)
    else:
        depth = rng.uniform(0.5, 10, (48, 64)) if mode == "depth" else None
        views = synthesize_pair(c, depth, p, rng)[1:]
    for v in views:
        np.testing.assert_allclose(v, 0.37, atol=1e-5)


@pytest.mark.parametrize("depth_value,sign", [(8.0, 1), (0.5, -1)])
def test_views_shift_in_opposite_directions(depth_value, sign):
    """Behind the focal plane the left view moves left and the right view right; in front, reversed."""
    H, W = 32, 96
    sharp = np.zeros((H, W, 3), np.float32)
    sharp[:, 48:] = 1.0  # vertical edge
    depth = np.full((H, W), depth_value, np.float32)
    p = SynthParams(max_radius=10, focus=1.0, **CLEAN)
    info = {}
    _, left, right, _ = synthesize_pair(sharp, depth, p, np.random.default_rng(4), info=info)
    R = info["peak_radius"]
    dl, dr, ds = (np.diff(a[..., 0].mean(0)) for a in (left, right, sharp))
    lags = np.arange(-W + 2, W - 1)
    lag_l = lags[np.argmax(np.correlate(dl, ds, "full"))]  # shift of the left view vs sharp
    lag_r = lags[np.argmax(np.correlate(dr, ds, "full"))]
    lag_lr = lags[np.argmax(np.correlate(dr, dl, "full"))]
    assert np.sign(lag_l) == -sign and np.sign(lag_r) == sign
    assert abs(lag_lr) == pytest.approx(2 * 4 * R / (3 * math.pi), abs=1.5)  # twice the half-disc centroid


def _tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_layered_dataset_has_dpdd_layout_16bit_and_json(tmp_path):
    out = tmp_path / "ds"
    params = SynthParams(max_radius=8.0, **CLASSIC)
    manifest, report = make_dataset(out, size=(64, 48), split={"train": 2, "val": 1, "test": 1}, seed=5, params=params)
    assert report.exit_code == 0 and manifest["ok"] == 4
    files = _tree(out)
    assert "synth.json" in files
    for s, n in (("train", 2), ("val", 1), ("test", 1)):
        for i in range(n):
            for rel in (f"{s}_c/source/{s}{i:05d}.png", f"{s}_c/target/{s}{i:05d}.png",
                        f"{s}_l/source/{s}{i:05d}_L.png", f"{s}_r/source/{s}{i:05d}_R.png"):
                a = cv2.imread(str(out / rel), cv2.IMREAD_UNCHANGED)
                assert a.dtype == np.uint16 and a.shape == (48, 64, 3), rel
    assert len(files) == 1 + 4 * 4
    j = json.loads((out / "synth.json").read_text())
    assert j["seed"] == 5 and j["counts"] == {"train": 2, "val": 1, "test": 1} and j["size"] == [64, 48]
    assert j["params"]["max_radius"] == 8.0 and "views_brightness" in j["conventions"]
    assert all(s["licence"] for s in j["sources"]) and j["mode"] == "layered random planes"
    # held-out photographs only ever appear in the test split
    held = {f"skimage:{n}" for n in synth_sources.HELD_OUT}
    for it in j["items"]:
        if it["split"] != "test":
            assert not held & {it["source"], *it["textures"]}
    # written files keep combined = (left + right) / 2 up to 16-bit rounding and clipping
    rd = lambda rel: cv2.imread(str(out / rel), cv2.IMREAD_UNCHANGED).astype(np.float64)  # noqa: E731
    l, r, c = rd("val_l/source/val00000_L.png"), rd("val_r/source/val00000_R.png"), rd("val_c/source/val00000.png")
    ok = (l < 65535) & (r < 65535)
    assert np.abs(c - (l + r) / 2)[ok].max() <= 1.0


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    kw = dict(size=(48, 32), split={"train": 2, "val": 0, "test": 1})
    make_dataset(tmp_path / "a", seed=7, **kw)
    make_dataset(tmp_path / "b", seed=7, **kw)
    make_dataset(tmp_path / "c", seed=8, **kw)
    files = _tree(tmp_path / "a")
    assert files == _tree(tmp_path / "b")
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)
    assert (tmp_path / "a/train_c/source/train00000.png").read_bytes() != (tmp_path / "c/train_c/source/train00000.png").read_bytes()


def test_without_scikit_image_procedural_textures_suffice(tmp_path, monkeypatch):
    monkeypatch.setattr(synth_sources, "skimage_data_dir", lambda: None)
    manifest, report = make_dataset(tmp_path / "p", size=(48, 32), split={"train": 2, "val": 0, "test": 1})
    assert report.exit_code == 0
    assert all(s["name"].startswith("procedural:") for s in manifest["sources"])


def test_user_images_with_depth_maps(tmp_path):
    img_dir, dep_dir = tmp_path / "img", tmp_path / "dep"
    img_dir.mkdir(), dep_dir.mkdir()
    rng = np.random.default_rng(0)
    for k in range(2):
        cv2.imwrite(str(img_dir / f"im{k}.png"), (rng.uniform(0, 255, (60, 80, 3))).astype(np.uint8))
    np.save(dep_dir / "im0.npy", rng.uniform(1, 5, (30, 40)).astype(np.float32))  # half resolution is fine
    cv2.imwrite(str(dep_dir / "im1.png"), rng.integers(1000, 9000, (60, 80)).astype(np.uint16))
    manifest, report = make_dataset(tmp_path / "o", images=img_dir, depth=dep_dir, size=(64, 48), split={"train": 2, "val": 0, "test": 0})
    assert report.exit_code == 0, report.to_dict()
    assert [it["depth"].rsplit("/", 1)[-1] for it in manifest["items"]] == ["im0.npy", "im1.png"]
    assert manifest["mode"] == "depth maps" and manifest["items"][0]["levels"] >= 2


def test_read_depth_pfm(tmp_path):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    p = tmp_path / "d.pfm"
    p.write_bytes(b"Pf\n4 3\n-1.0\n" + np.flipud(a).astype("<f4").tobytes())
    np.testing.assert_array_equal(read_depth(p), a)


def test_parse_split():
    assert parse_split(None, 100) == {"train": 80, "val": 10, "test": 10}
    assert parse_split("train=3,test=1", 0) == {"train": 3, "val": 0, "test": 1}


def test_cli_errors_and_json(tmp_path):
    r = run("synth", "-o", str(tmp_path / "x"), "--images", str(tmp_path / "missing"))
    assert r.returncode == 1 and "no such folder" in r.stderr  # missing and empty: both failures (1)
    (tmp_path / "empty").mkdir()
    r = run("synth", "-o", str(tmp_path / "x"), "--images", str(tmp_path / "empty"))
    assert r.returncode == 1 and "empty" in r.stderr and "point --images at" in r.stderr  # the library's setting as the flag
    r = run("synth", "-o", str(tmp_path / "x"), "--size", "64by48")
    assert r.returncode == 2 and "WIDTHxHEIGHT" in r.stderr
    img = tmp_path / "img"
    img.mkdir()
    cv2.imwrite(str(img / "a.png"), np.zeros((40, 50, 3), np.uint8))
    (tmp_path / "dep").mkdir()
    r = run("synth", "-o", str(tmp_path / "d"), "--images", str(img), "--depth", str(tmp_path / "dep"), "--count", "1")
    assert r.returncode == 1 and "a.png: no depth map" in r.stderr
    r = run("synth", "-o", str(tmp_path / "ok"), "--count", "2", "--size", "48x32", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["ok"] == 2
    r = run("synth", "-o", str(tmp_path / "ok"), "--count", "2", "--size", "48x32")
    assert r.returncode == 2 and "--overwrite" in r.stderr
    r = run("synth", "-o", str(tmp_path / "ok"), "--count", "1", "--size", "48x32", "--overwrite", "--json")
    assert r.returncode == 0 and len(list((tmp_path / "ok/train_c/source").iterdir())) == 1


def test_make_samples(tmp_path):
    from dpdeblur.data.synth_samples import SAMPLES, make_samples

    files = make_samples(tmp_path)
    assert len(files) == 4 * len(SAMPLES) + 1
    for sid in SAMPLES:
        l, r = (cv2.imread(str(tmp_path / f"{sid}_{v}.png"), cv2.IMREAD_UNCHANGED) for v in "LR")
        c = cv2.imread(str(tmp_path / "combined" / f"{sid}.png"), cv2.IMREAD_UNCHANGED)
        assert l.dtype == np.uint16 and l.shape == (192, 256, 3)
        ok = (l < 65535) & (r < 65535)
        lin = lambda a: srgb_decode(a / 65535.0).astype(np.float64)  # noqa: E731 - views are sRGB-encoded
        assert np.abs(lin(c) - (lin(l) + lin(r)) / 2)[ok].max() <= 2e-4  # the sum holds in linear light
        sharp = cv2.imread(str(tmp_path / "sharp" / f"{sid}.png"), cv2.IMREAD_UNCHANGED)
        assert sharp.shape == (192, 256, 3)
        assert np.abs(c / 257.0 - sharp).mean() > 1.0  # visibly defocused
    text = (tmp_path / "README.md").read_text()
    assert "CC0" in text and "public domain" in text


def test_synth_help_imports_neither_torch_nor_numpy():
    import os
    import subprocess
    import sys

    code = (
        "import sys; from dpdeblur.cli import app; import typer.testing as tt;"
        "r=tt.CliRunner().invoke(app, ['synth','--help']); assert r.exit_code==0 and '--max-radius' in r.output;"
        "print('torch' in sys.modules, 'cv2' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout.split()
    assert out == ["False", "False"]
