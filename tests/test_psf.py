"""Dual-pixel PSFs for ``synth``: measured banks (sums, mirroring, position lookup), the
parametric model, and the sensor's noise statistics."""

import json
import math

import numpy as np
import pytest

from rawfixtures import PIXEL4_DIR, PIXEL4_SKIP

from dpdeblur.data.psf import ParametricPSF, PSFBank, draw_parametric, kernel_radius, parametric_psf, rescale_kernel
from dpdeblur.data.synth import SynthParams, sensor, synthesize_layered
from dpdeblur.errors import InputError, UsageError

PIXEL4 = PIXEL4_DIR


def centroid(k):
    n = k.shape[0]
    ys, xs = np.mgrid[0:n, 0:n] - (n - 1) / 2
    return float((k * xs).sum() / k.sum()), float((k * ys).sum() / k.sum())


def toy_bank(rows=2, cols=3, k=21, cell=None):
    """A bank whose cell i holds an off-centre blob whose size grows with i (identifiable)."""
    ys, xs = np.mgrid[0:k, 0:k] - k // 2
    left, right = [], []
    for i in range(rows * cols):
        r = 3 + i
        disc = (xs**2 + ys**2 <= r * r).astype(np.float32)
        left.append(disc * (xs <= 0) + 1e-3)
        right.append(disc * (xs >= 0) + 1e-3)
    return PSFBank(np.stack(left) * 7, np.stack(right) * 3, (rows, cols), cell=cell)


def test_bank_kernels_sum_to_one_and_scale_with_radius():
    bank = toy_bank()
    for i in range(6):
        for r in (-9.0, -2.0, 0.3, 4.0, 12.5):
            for kk in bank.kernels(i, r):
                assert kk.sum() == pytest.approx(1.0, abs=1e-5) and kk.shape[0] % 2 == 1 and (kk >= 0).all()
    small, big = (kernel_radius(sum(bank.kernels(2, r))) for r in (3.0, 9.0))
    assert big / small == pytest.approx(3.0, rel=0.15)
    # at the bank's reference radius the kernels keep their measured size (their mean is the reference)
    at_ref = np.mean([kernel_radius(sum(bank.kernels(i, bank.ref_radius))) for i in range(6)])
    assert at_ref == pytest.approx(bank.ref_radius, rel=0.05)


def test_negative_radius_is_the_point_reflection():
    bank = toy_bank()
    lp, rp = bank.kernels(3, 6.0)
    ln, rn = bank.kernels(3, -6.0)
    np.testing.assert_array_equal(ln, lp[::-1, ::-1])
    np.testing.assert_array_equal(rn, rp[::-1, ::-1])
    assert centroid(lp)[0] < 0 < centroid(ln)[0]  # the left view shifts the other way across focus
    np.testing.assert_array_equal(rescale_kernel(np.ones((5, 5)), -1.0), rescale_kernel(np.ones((5, 5)), 1.0))


def test_position_lookup_weights():
    bank = toy_bank(rows=2, cols=3, cell=100)  # frame 300x200
    cells = bank.cell_weights((300, 200), (0.0, 0.0))
    total = sum(m for _, m in cells)
    np.testing.assert_allclose(total, 1.0, atol=1e-6)
    by = dict(cells)
    assert by[0][10, 10] == pytest.approx(1.0) and by[5][190, 290] == pytest.approx(1.0)  # corners: own cell only
    assert by[1][50, 150] == pytest.approx(1.0, abs=0.02)  # centre of cell (0, 1)
    assert by[0][50, 100] == pytest.approx(0.5, abs=0.01) and by[1][50, 100] == pytest.approx(0.5, abs=0.01)
    # an image placed inside the frame sees the cells under it
    sub = dict(bank.cell_weights((40, 30), (255.0, 160.0)))  # right of the last column's centre
    assert set(sub) == {5}
    # no cell size: the image spans the whole grid
    spans = dict(toy_bank().cell_weights((60, 40), (0, 0)))
    assert set(spans) == set(range(6))


def test_bank_files_and_errors(tmp_path):
    bank = toy_bank()
    np.save(tmp_path / "blur_kernels_left.npy", bank.left)
    np.save(tmp_path / "blur_kernels_right.npy", bank.right)
    (tmp_path / "psf_bank.json").write_text(json.dumps({"grid": [2, 3], "cell": 50}))
    b = PSFBank.load(tmp_path)
    assert b.grid == (2, 3) and b.cell == 50 and b.frame_size() == (150, 100)
    np.testing.assert_allclose(b.left.sum(axis=(1, 2)), 1.0, atol=1e-6)
    (tmp_path / "psf_bank.json").unlink()
    assert PSFBank.load(tmp_path / "blur_kernels_left.npy").grid == (2, 3)  # 6 kernels: 2 x 3 inferred
    np.save(tmp_path / "blur_kernels_right.npy", bank.right[:5])
    with pytest.raises(InputError, match="kernels"):
        PSFBank.load(tmp_path)
    with pytest.raises(InputError, match="not found"):
        PSFBank.load(tmp_path / "nowhere")
    with pytest.raises(UsageError):
        SynthParams(bank_share=1.5).check()


@pytest.mark.skipif(not PIXEL4.is_dir(), reason=PIXEL4_SKIP)
def test_pixel4_bank_is_a_6x8_grid_of_asymmetric_kernels():
    bank = PSFBank.load(PIXEL4 / "calibration")
    assert bank.grid == (6, 8) and bank.left.shape == (48, 61, 61)
    assert 8 < bank.ref_radius < 16  # the reference defocus: a disc of about 12 px
    for i in (0, 20, 47):
        assert centroid(bank.left[i])[0] < centroid(bank.right[i])[0]  # left view's light lies left


def test_parametric_psf_reduces_to_disc_halves_and_mirrors():
    from dpdeblur.data.synth import disc_psf

    L, R = parametric_psf(6.0, ParametricPSF(), supersample=8)
    dl, dr = disc_psf(6.0)
    assert L.sum() == pytest.approx(1, abs=1e-5) and R.sum() == pytest.approx(1, abs=1e-5)
    np.testing.assert_allclose(L, R[:, ::-1], atol=1e-6)
    assert centroid(L)[0] == pytest.approx(centroid(dl)[0], abs=0.15)
    assert centroid(L)[0] == pytest.approx(-4 * 6.0 / (3 * math.pi), abs=0.2)
    rng = np.random.default_rng(0)
    for _ in range(5):
        shape = draw_parametric(rng)
        L, R = parametric_psf(10.0, shape)
        Ln, Rn = parametric_psf(-10.0, shape)
        np.testing.assert_array_equal(Ln, L[::-1, ::-1])
        assert L.sum() == pytest.approx(1, abs=1e-5) and R.sum() == pytest.approx(1, abs=1e-5)
        assert centroid(L)[0] < 0 < centroid(R)[0]
        assert 7 < kernel_radius(L + R) < 13  # apodisation/softening keep the size near the radius
    # softer splits move each view's centroid toward the middle (less disparity)
    hard = parametric_psf(10.0, ParametricPSF(split_softness=0.0))[0]
    soft = parametric_psf(10.0, ParametricPSF(split_softness=0.6, crosstalk=0.1))[0]
    assert centroid(hard)[0] < centroid(soft)[0] < 0


def test_cat_eye_points_outward_and_clips_the_aperture():
    round_ = parametric_psf(10.0, ParametricPSF())
    cat = parametric_psf(10.0, ParametricPSF(cat_eye=0.4, cat_eye_angle=0.0))  # image position to the right
    area = lambda k: (k > 1e-4).sum()  # noqa: E731
    assert area(cat[0] + cat[1]) < 0.85 * area(round_[0] + round_[1])


def test_sensor_noise_statistics():
    rng = np.random.default_rng(5)
    flat = np.full((256, 256, 3), 0.4, np.float32)
    s = 0.05
    left, right, comb = sensor(flat, flat, s, 0.0, rng)
    half = 0.2
    var_half = s * s * half + (s / 8) ** 2
    assert np.var(left / 2) == pytest.approx(var_half, rel=0.05)  # the view is 2 * half
    assert np.var(comb) == pytest.approx(2 * var_half, rel=0.05)  # two independent halves
    assert abs(float(np.mean(left)) - 0.4) < 2e-3
    assert np.corrcoef(left.ravel() - 0.4, right.ravel() - 0.4)[0, 1] == pytest.approx(0, abs=0.02)


def test_realistic_layered_scene_keeps_focus_and_tone():
    """Default realism: the target and the views share exposure and tone, so a scene entirely in
    focus gives views equal to the target; the combined image equals the views' mean in linear light."""
    from dpdeblur.io.dualpixel import srgb_decode

    rng = np.random.default_rng(3)
    bg = rng.uniform(0.1, 0.9, (48, 64, 3)).astype(np.float32)
    p = SynthParams(focus=1 / 0.35, max_radius=0.1, noise=0.0, vignetting=0.0, tone="srgb", bits8=0.0)
    sharp, left, right, comb = synthesize_layered(bg, [], p, rng, info=(info := {}))
    assert info["tone"] == "srgb" and "exposure_gain" in info
    np.testing.assert_allclose(left, sharp, atol=2e-5)
    p = SynthParams(max_radius=12, noise=0.0, vignetting=0.2, tone="srgb", bits8=0.0)
    sharp, left, right, comb = synthesize_layered(bg, [bg[::-1].copy()], p, np.random.default_rng(1))
    ok = (left < 1) & (right < 1)
    np.testing.assert_allclose(srgb_decode(comb)[ok], ((srgb_decode(left) + srgb_decode(right)) / 2)[ok], atol=1e-4)
    assert np.abs(comb - sharp).mean() > 0.01  # defocused


def test_synth_cli_with_a_psf_bank(tmp_path):
    from typer.testing import CliRunner

    from dpdeblur.cli import app

    bank = toy_bank(rows=2, cols=3)
    bdir = tmp_path / "bank"
    bdir.mkdir()
    np.save(bdir / "blur_kernels_left.npy", bank.left)
    np.save(bdir / "blur_kernels_right.npy", bank.right)
    (bdir / "psf_bank.json").write_text(json.dumps({"grid": [2, 3], "cell": 40}))
    run = lambda *a: CliRunner().invoke(app, ["synth", "-o", *map(str, a)])  # noqa: E731
    r = run(tmp_path / "ds", "--psf-bank", bdir, "--count", "3", "--size", "48x32", "--max-radius", "6", "--json")
    assert r.exit_code == 0, r.output
    j = json.loads(r.stdout)
    assert j["params"]["psf_bank"] == str(bdir) and all(it["psf"] == "bank" for it in j["items"])
    assert all(0 <= it["bank_origin"][0] <= 120 - 48 for it in j["items"])  # placed inside the 120x80 frame
    assert {it["tone"] for it in j["items"]} <= {"srgb", "gamma"}
    r = run(tmp_path / "x", "--psf-bank", tmp_path / "nowhere", "--count", "1")
    assert r.exit_code == 1 and "not found" in r.output and not (tmp_path / "x").exists()
    r = run(tmp_path / "x", "--exposure", "0.5", "--count", "1")
    assert r.exit_code == 2 and "LO,HI" in r.output
    r = run(tmp_path / "x", "--tone", "log", "--count", "1")
    assert r.exit_code == 2 and "--tone" in r.output


def test_bank_rendering_per_cell_support_equals_whole_frame_rendering():
    import functools

    from dpdeblur.data import synth

    bank = toy_bank(rows=2, cols=3)
    rng = np.random.default_rng(2)
    H, W = 40, 60
    m = np.zeros((H, W), np.float32)
    m[10:30, 15:45] = 1
    layers = [(rng.random((H, W, 3)).astype(np.float32), np.ones((H, W), np.float32), 4.0),
              (rng.random((H, W, 3)).astype(np.float32), m, -6.0)]
    optics = [(w, functools.partial(bank.kernels, i)) for i, w in bank.cell_weights((W, H), (0, 0))]
    got = synth._render(layers, optics)
    for v in (0, 1):
        want = sum(w[..., None] * synth.render_layers(layers, psf)[v] for w, psf in optics)
        np.testing.assert_allclose(got[v], want, atol=1e-6)
