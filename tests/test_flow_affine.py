"""Affine (ECC) alignment used by the real-data deformed-GT protocol: it recovers a known
shift + scale, ignores sharpness differences, cannot "explain" blur, is stable, and falls
back to the identity (with a warning) when there is nothing to align."""

import cv2
import numpy as np
import pytest

from dpdeblur.data import pixel4 as p4
from dpdeblur.flow.affine import align_affine, estimate_affine, warp_affine
from dpdeblur.metrics import psnr_np


def texture(seed=0, h=120, w=160):
    a = np.random.default_rng(seed).random((h, w)).astype(np.float32)
    a = cv2.GaussianBlur(a, (0, 0), 1.5)
    return 0.1 + 0.8 * (a - a.min()) / (a.max() - a.min())


# the misalignment measured between the Pixel 4 views and their focus stacks: ~0.5% scale, 1-3 px shift
TRUE = np.array([[0.998, 0.0, 1.5], [0.0, 0.995, -2.25]])


def test_recovers_a_known_shift_and_scale_and_warps_back():
    fixed = texture()
    moving = cv2.warpAffine(fixed, TRUE, fixed.shape[::-1], flags=cv2.INTER_CUBIC,
                            borderMode=cv2.BORDER_REFLECT)  # moving sampled at TRUE @ x equals fixed at x
    fit = estimate_affine(fixed, moving)
    assert fit.converged and fit.cc > 0.9
    np.testing.assert_allclose(fit.matrix[:, :2], TRUE[:, :2], atol=0.003)
    np.testing.assert_allclose(fit.matrix[:, 2], TRUE[:, 2], atol=0.1)
    assert fit.displacement(0, 0) == pytest.approx((1.5, -2.25), abs=0.1)
    assert fit.displacement(80, 60) == pytest.approx((80 * 0.998 + 1.5 - 80, 60 * 0.995 - 2.25 - 60), abs=0.1)
    back = warp_affine(moving, fit)
    inner = (slice(10, -10), slice(10, -10))
    assert psnr_np(back[inner], fixed[inner]) > 40
    assert psnr_np(moving[inner], fixed[inner]) < 25  # the misalignment is what there was to undo


def test_alignment_ignores_sharpness_and_cannot_explain_blur():
    big = texture(1, 120, 164)
    sharp = big[:, 2:-2]
    blurry = cv2.GaussianBlur(big, (0, 0), 3.0)[:, 2:-2]
    # a sharp reference shifted by 2 px is found on a blurry image
    shifted = big[:, :-4]  # shifted(x + 2) = sharp(x)
    fit = estimate_affine(blurry, shifted)
    assert fit.displacement(80, 60) == pytest.approx((2.0, 0.0), abs=0.1)
    # no misalignment: the warp stays the identity and the score stays the plain score (a dense
    # flow would move texture to imitate the blur)
    warped, fit = align_affine(blurry, sharp)
    h, w = sharp.shape
    for corner in ((0, 0), (w, 0), (0, h), (w, h)):
        assert np.hypot(*fit.displacement(*corner)) < 0.5
    assert psnr_np(blurry, warped) == pytest.approx(psnr_np(blurry, sharp), abs=0.1)


def test_deformed_score_is_stable_under_tiny_output_changes():
    sharp = texture(2)
    ref = cv2.warpAffine(sharp, TRUE, sharp.shape[::-1], flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    out = cv2.GaussianBlur(sharp, (0, 0), 1.0)
    out2 = np.clip(out + np.random.default_rng(0).normal(0, 1e-3, out.shape).astype(np.float32), 0, 1)
    a, b = p4.score(out, ref), p4.score(out2, ref)
    assert abs(a["psnr"] - b["psnr"]) < 0.05
    assert abs(a["psnr_deformed"] - b["psnr_deformed"]) < 0.05
    assert a["psnr_deformed"] > a["psnr"] + 5


def test_nothing_to_align_falls_back_to_identity_with_a_warning():
    flat = np.full((40, 50), 0.5, np.float32)
    with pytest.warns(RuntimeWarning, match="did not converge"):
        fit = estimate_affine(flat, flat)
    assert not fit.converged
    np.testing.assert_array_equal(fit.matrix, np.eye(2, 3))
    with pytest.raises(ValueError, match="one size"):
        estimate_affine(flat, flat[:10])
