"""Real-data protocol (``bench quality --dataset pixel4``) on a tiny fixture in Xin et al.'s layout:
black level, white-sheet vignetting gain, central crop, gain fit, deformed GT; and on the
real Pixel 4 captures when present (tests/rawfixtures.py: PIXEL4_DIR)."""

import json

import cv2
import numpy as np
import pytest
from rawfixtures import PIXEL4_DIR, PIXEL4_SKIP
from typer.testing import CliRunner

from dpdeblur.bench.quality import QualityConfig, bench_quality
from dpdeblur.cli import app
from dpdeblur.data import pixel4 as p4
from dpdeblur.errors import DataError
from dpdeblur.io.dualpixel import srgb_decode, srgb_encode
from dpdeblur.metrics import psnr_np
from dpdeblur.models import create_model
from dpdeblur.models.weights import save_weights

SHARED = PIXEL4_DIR
H, W, h, w = 72, 96, 48, 64  # views and the reference's central crop


def scene_linear(seed):
    a = np.random.default_rng(seed).random((H, W)).astype(np.float32)
    a = cv2.GaussianBlur(a, (0, 0), 2.0)
    return 0.05 + 0.4 * (a - a.min()) / (a.max() - a.min())


def to_raw(lin):
    return np.clip(np.rint(lin * (p4.PIXEL4_WHITE - p4.PIXEL4_BLACK) + p4.PIXEL4_BLACK), 0, 65535).astype(np.uint16)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """Two scenes; the right view darkened by a vignetting gain the white sheets record;
    references 3x brighter than the views (another scale) and scene 1's shifted by one pixel."""
    root = tmp_path_factory.mktemp("pixel4")
    (root / "gt_all_in_focus").mkdir()
    (root / "calibration").mkdir()
    ramp = np.full((H, W), 0.7, np.float32)  # (the 101 px box would bend a ramp on so small a frame)
    white = np.full((H, W), 0.5, np.float32)
    cv2.imwrite(str(root / "calibration/white_sheet_left.png"), to_raw(white))
    cv2.imwrite(str(root / "calibration/white_sheet_right.png"), to_raw(white * ramp))
    t, l = (H - h) // 2, (W - w) // 2
    for i in range(2):
        s = scene_linear(i)
        blur = cv2.GaussianBlur(s, (0, 0), 1.5)
        cv2.imwrite(str(root / f"00{i}_left.png"), to_raw(blur))
        cv2.imwrite(str(root / f"00{i}_right.png"), to_raw(blur * ramp))
        gt = s[t : t + h, l : l + w] * 3
        if i == 1:
            gt = np.roll(gt, 1, axis=1)
        cv2.imwrite(str(root / f"gt_all_in_focus/00{i}_gt.png"), np.rint(gt * 65535 / 3).astype(np.uint16))
    (root / "009_left.png").write_bytes((root / "000_left.png").read_bytes())  # no right view, no gt: not a scene
    save_weights(create_model("dmtnet-t", dim=12, blocks=1, heads=2, window=4), root / "w.safetensors")
    return root


def test_loader_applies_black_level_vignetting_gain_and_centre_crop(root):
    assert p4.scene_ids(root) == ["000", "001"]
    gain = p4.vignetting_gain(root)
    s = p4.load_scene(root, "000", gain)
    assert s.left.shape == s.right.shape == s.gt.shape == (h, w)
    np.testing.assert_allclose(s.right, s.left, atol=2e-3)  # the white sheets undo the ramp
    t, l = (H - h) // 2, (W - w) // 2
    np.testing.assert_allclose(s.left, cv2.GaussianBlur(scene_linear(0), (0, 0), 1.5)[t : t + h, l : l + w], atol=1e-4)
    raw = p4.load_scene(root, "000", None)
    assert raw.right.mean() == pytest.approx(0.7 * raw.left.mean(), rel=0.01)  # without the gain it stays
    with pytest.raises(DataError, match="no scene"):
        p4.scene_ids(root / "calibration")


def test_gain_fit_and_score_are_scale_invariant(root):
    s = p4.load_scene(root, "000", p4.vignetting_gain(root))
    a = p4.score(s.combined, s.gt, deformed=False)
    b = p4.score(s.combined, s.gt * 0.25, deformed=False)  # the reference's scale does not matter
    assert a["psnr"] == pytest.approx(b["psnr"], abs=1e-6)
    g = p4.gain_fit(s.gt, s.combined)
    assert float(np.sum(s.combined * g)) == pytest.approx(float(np.sum(g * g)), rel=1e-4)  # least squares: residual _|_ gt
    manual = psnr_np(np.repeat(srgb_encode(s.combined)[..., None], 3, 2), np.repeat(srgb_encode(g)[..., None], 3, 2))
    assert a["psnr"] == pytest.approx(manual, abs=1e-3)
    # a perfect result scores far above the blurry one
    sharp = p4.gain_fit(s.gt, s.gt) / 3
    assert p4.score(sharp, s.gt, deformed=False)["psnr"] > a["psnr"] + 20


def test_deformed_gt_undoes_the_reference_shift(root):
    s = p4.load_scene(root, "001", p4.vignetting_gain(root))
    t, l = (H - h) // 2, (W - w) // 2
    aligned_sharp = scene_linear(1)[t : t + h, l : l + w]
    r = p4.score(aligned_sharp, s.gt)
    assert r["psnr_deformed"] > r["psnr"] + 5  # the 1 px misalignment is what plain PSNR sees


def test_bench_quality_pixel4_rows_cli_and_crops(root, tmp_path):
    rep, crops = bench_quality(QualityConfig(dataset="pixel4", data_root=root, model="dmtnet-t",
                                             weights=root / "w.safetensors", model_config={"dim": 12, "blocks": 1, "heads": 2, "window": 4},
                                             tile=0, crops=32))
    rows = {r["model"]: r for r in rep["rows"]}
    assert set(rows) == {"identity", "dmtnet-t", p4.CEILING} and rows["identity"]["n"] == 2
    # the ceiling row: the reference aligned onto the input, scored plain only, far above the input
    assert rows[p4.CEILING]["psnr"] > rows["identity"]["psnr"] + 10 and "psnr_deformed" not in rows[p4.CEILING]
    assert {"psnr", "ssim", "mae", "psnr_deformed", "ssim_deformed", "mae_deformed"} <= set(rows["identity"])
    ident = [r for r in rep["per_image"] if r["model"] == "identity"]
    s = p4.load_scene(root, "000", p4.vignetting_gain(root))
    assert ident[0]["psnr"] == pytest.approx(p4.score(s.combined, s.gt, deformed=False)["psnr"], abs=1e-6)
    assert rep["meta"]["dataset"] == "pixel4" and "gain" in rep["meta"]["protocol"]
    assert set(crops) == {"000", "001"} and crops["000"].shape[0] == 32 and crops["000"].shape[1] >= 3 * 32
    out = tmp_path / "crops"
    r = CliRunner().invoke(app, ["bench", "quality", "--dataset", "pixel4", "--data-root", str(root), "--json",
                                 "--save-images", "1", str(out), "--crop", "24"])
    assert r.exit_code == 0, r.output
    j = json.loads(r.stdout)
    assert [x["model"] for x in j["rows"]] == ["identity", p4.CEILING] and j["meta"]["n_images"] == 2
    r = CliRunner().invoke(app, ["bench", "quality", "--dataset", "pixel4"])
    assert r.exit_code == 2 and "--data-root" in r.output


def test_bench_pixel4_scores_chosen_scenes_only(root):
    rep, _ = bench_quality(QualityConfig(dataset="pixel4", data_root=root, ids=["001"], deformed_gt=False))
    assert rep["meta"]["n_images"] == 1 and {r["id"] for r in rep["per_image"]} == {"001"}
    with pytest.raises(DataError, match="no scene 007; scenes here: 000, 001"):
        bench_quality(QualityConfig(dataset="pixel4", data_root=root, ids=["007"]))
    r = CliRunner().invoke(app, ["bench", "quality", "--dataset", "pixel4", "--data-root", str(root), "--ids", "000,001",
                                 "--no-deformed-gt", "--json"])
    assert r.exit_code == 0, r.output
    assert [x["id"] for x in json.loads(r.stdout)["per_image"]][:2] == ["000", "000"]


def test_write_pairs_makes_an_aligned_dpdd_training_root(root, tmp_path):
    from dpdeblur.data import find_pairs
    from dpdeblur.io.images import read_image

    out = tmp_path / "pairs"
    recs = p4.write_pairs(root, out, ["001"])
    assert [r["id"] for r in recs] == ["001"] and not recs[0]["skipped"] and recs[0]["converged"]
    m = np.array(recs[0]["affine"])
    centre = np.array([w / 2, h / 2, 1.0])
    np.testing.assert_allclose(m @ centre - centre[:2], [1.0, 0.0], atol=0.2)  # the reference's 1 px roll, found
    images = find_pairs("dpdd", out, "train")
    (smp,) = images.samples
    assert smp.id == "p4_001" and smp.left.name == "p4_001_L.png" and smp.right.name == "p4_001_R.png"
    planes = {k: read_image(getattr(smp, k)) for k in ("left", "right", "blur", "sharp")}
    for im in planes.values():
        assert im.bit_depth == 16 and im.rgb.shape == (h, w, 3)
        np.testing.assert_array_equal(im.rgb[..., 0], im.rgb[..., 2])
    s = p4.load_scene(root, "001", p4.vignetting_gain(root))
    np.testing.assert_allclose(planes["blur"].rgb[..., 0], srgb_encode(s.combined), atol=1e-4)
    # the target is the reference, gain-fitted to the views and shifted back onto them
    t, l = (H - h) // 2, (W - w) // 2
    truth = srgb_encode(p4.gain_fit(scene_linear(1)[t : t + h, l : l + w], s.combined))
    inner = (slice(4, -4), slice(4, -4))
    target = planes["sharp"].rgb[..., 0]
    assert psnr_np(target[inner], truth[inner]) > 35 > psnr_np(srgb_encode(p4.gain_fit(s.gt, s.combined))[inner], truth[inner])
    before = planes["sharp"].path.stat().st_mtime_ns
    assert p4.write_pairs(root, out, ["001"])[0]["skipped"] and planes["sharp"].path.stat().st_mtime_ns == before
    assert not p4.write_pairs(root, out, ["001"], overwrite=True)[0]["skipped"]
    r = CliRunner().invoke(app, ["align", "--pixel4", str(root), "-o", str(tmp_path / "cli"), "--split", "val", "--json"])
    assert r.exit_code == 0, r.output
    assert [x["id"] for x in json.loads(r.stdout)["scenes"]] == ["000", "001"]
    assert (tmp_path / "cli/val_c/target/p4_000.png").is_file()
    r = CliRunner().invoke(app, ["align", "--pixel4", str(root), "--blur", str(root), "-o", str(tmp_path / "x")])
    assert r.exit_code == 2 and "--pixel4" in r.output
    r = CliRunner().invoke(app, ["align", "--pixel4", str(root), "--scenes", "005", "-o", str(tmp_path / "y")])
    assert r.exit_code == 1 and "no scene 005" in r.output
    r = CliRunner().invoke(app, ["align", "--pixel4", str(root), "--split", "../z", "-o", str(tmp_path / "z")])
    assert r.exit_code == 2 and "dpdd has splits" in r.output and not (tmp_path / "z").exists()


@pytest.mark.skipif(not SHARED.is_dir(), reason=PIXEL4_SKIP)
def test_shared_captures_load_with_the_protocol():
    ids = p4.scene_ids(SHARED)
    assert ids[:4] == ["001", "002", "003", "004"]
    s = p4.load_scene(SHARED, ids[0], p4.vignetting_gain(SHARED))
    assert s.left.shape == (1008, 1344)
    # after the white-sheet gain the views carry equal light (complementary vignetting removed)
    assert s.right.mean() / s.left.mean() == pytest.approx(1.0, abs=0.03)
    r = p4.score(s.combined, s.gt, deformed=False)
    assert 20 < r["psnr"] < 32  # a defocused capture against its focus stack


@pytest.mark.skipif(not SHARED.is_dir(), reason=PIXEL4_SKIP)
def test_shared_reference_alignment_is_the_stacks_shift_and_scale():
    s = p4.load_scene(SHARED, "001", p4.vignetting_gain(SHARED))
    target, fit = p4.aligned_reference(s)
    assert fit.converged and fit.cc > 0.9
    assert fit.matrix[1, 1] == pytest.approx(0.9955, abs=0.002)  # the focus stack's ~0.5% vertical scale
    assert abs(fit.displacement(672, 504)[1]) < 5  # a few pixels at the centre, no more
    ident = p4.score(s.combined, s.gt, deformed=False)["psnr"]
    assert p4.score(srgb_decode(target), s.gt, deformed=False)["psnr"] > ident + 1.5  # the ceiling row


def test_write_pairs_goes_on_past_a_bad_scene(root, tmp_path):
    """A scene whose reference is unreadable fails on its own (no file of it written); the other
    scenes are written and the command exits 1 with a JSON report naming the failure."""
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(root, bad)
    (bad / "gt_all_in_focus/000_gt.png").write_bytes(b"")
    recs = p4.write_pairs(bad, tmp_path / "p")
    assert [r["id"] for r in recs] == ["000", "001"]
    assert "000_gt.png: the file is empty" in recs[0]["error"] and "error" not in recs[1]
    written = sorted(p.name for p in (tmp_path / "p").rglob("*") if p.is_file())
    assert written == ["p4_001.png", "p4_001.png", "p4_001_L.png", "p4_001_R.png"]  # source, target, views
    r = CliRunner().invoke(app, ["align", "--pixel4", str(bad), "-o", str(tmp_path / "q"), "--json"])
    doc = json.loads(r.stdout)
    assert r.exit_code == 1 and doc["failed"] == 1 and "Traceback" not in r.output


def test_align_refuses_images_too_small_for_the_flow(tmp_path):
    from dpdeblur.io.images import write_image

    for d in ("b", "s"):
        write_image(tmp_path / d / "a.png", np.zeros((8, 8, 3), np.float32), 8)
    r = CliRunner().invoke(app, ["align", "--blur", str(tmp_path / "b"), "--sharp", str(tmp_path / "s"), "-o", str(tmp_path / "o")])
    assert r.exit_code == 1 and "8x8 pixels; optical flow needs images of at least 16x16" in r.stderr
