"""Metrics: hand-computed values and scikit-image agreement (both SSIM windows)."""

import math

import numpy as np
import pytest
import torch

from dpdeblur.metrics import compute_metrics, mae_np, psnr, psnr_np, ssim, ssim_np

skm = pytest.importorskip("skimage.metrics")


def pair(h=40, w=48, c=3, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.random((h, w, c))
    b = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1)
    return a, b


def test_psnr_mae_hand_computed():
    a = np.zeros((4, 4, 3))
    b = np.full((4, 4, 3), 0.1)
    assert psnr_np(a, b) == pytest.approx(20.0, abs=1e-9)  # mse 0.01 -> 20 dB
    assert mae_np(a, b) == pytest.approx(0.1)
    b[0, 0, 0] = 0.5  # mse = (47*0.01 + 0.25)/48
    assert psnr_np(a, b) == pytest.approx(10 * math.log10(48 / (47 * 0.01 + 0.25)))
    assert psnr_np(a, a) == math.inf
    # no re-quantisation: a 1e-4 difference is visible
    assert psnr_np(a, a + 1e-4) == pytest.approx(80.0)


def test_ssim_identical_and_constant():
    a, _ = pair()
    assert ssim_np(a, a) == pytest.approx(1.0)
    assert ssim_np(a, a, "skimage-default") == pytest.approx(1.0)
    # constant images: SSIM = (2 m1 m2 + C1) / (m1^2 + m2^2 + C1) exactly
    x, y = np.full((16, 16), 0.2), np.full((16, 16), 0.6)
    c1 = 0.01**2
    assert ssim_np(x, y) == pytest.approx((2 * 0.2 * 0.6 + c1) / (0.04 + 0.36 + c1))


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_skimage(seed):
    a, b = pair(seed=seed)
    assert psnr_np(b, a) == pytest.approx(skm.peak_signal_noise_ratio(a, b, data_range=1), abs=1e-9)
    want = skm.structural_similarity(a, b, data_range=1, channel_axis=-1)
    assert ssim_np(b, a, "skimage-default") == pytest.approx(want, abs=1e-9)
    want = skm.structural_similarity(
        a, b, data_range=1, channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert ssim_np(b, a, "wang") == pytest.approx(want, abs=1e-9)
    g = skm.structural_similarity(a[..., 0], b[..., 0], data_range=1)
    assert ssim_np(b[..., 0], a[..., 0], "skimage-default") == pytest.approx(g, abs=1e-9)
    # the two windows give visibly different numbers
    assert abs(ssim_np(b, a, "wang") - ssim_np(b, a, "skimage-default")) > 1e-4


def test_torch_batches_per_image():
    a, b = pair()
    ta = torch.from_numpy(a).permute(2, 0, 1).float()
    tb = torch.from_numpy(b).permute(2, 0, 1).float()
    batch_p, batch_t = torch.stack([tb, ta]), torch.stack([ta, ta])
    s = ssim(batch_p, batch_t)
    assert s.shape == (2,) and s[1] == pytest.approx(1.0, abs=1e-6)
    assert float(s[0]) == pytest.approx(ssim_np(b, a), abs=1e-5)  # float32 vs float64
    p = psnr(batch_p, batch_t)
    assert float(p[0]) == pytest.approx(psnr_np(b, a), abs=1e-4) and torch.isinf(p[1])
    m = compute_metrics(batch_p + 0.5, batch_t)  # clamped to [0, 1]
    assert float(m["mae"][1]) == pytest.approx(float(torch.minimum(1 - ta, torch.tensor(0.5)).mean()), abs=1e-6)


def test_window_side_table_matches_the_windows():
    """choices.SSIM_WINDOW_SIDE (read by checks that import no torch) is the windows' real size."""
    from dpdeblur.choices import SSIM_WINDOW_SIDE, SSIM_WINDOWS
    from dpdeblur.metrics.image import _window_1d, ssim_window_size

    assert set(SSIM_WINDOW_SIDE) == set(SSIM_WINDOWS)
    for w in SSIM_WINDOWS:
        assert ssim_window_size(w) == SSIM_WINDOW_SIDE[w] == len(_window_1d(w)[0])
