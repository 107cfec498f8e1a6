"""`train` with every family's criterion: FCN's ratio loss by default, `--jdrl` on any model,
and the JDRL warm-up fed from `dpdeblur align`'s flow cache."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from _train_data import dp_scene, make_dpdd
from dpdeblur.cli import app
from dpdeblur.io.images import write_image



def make_paired(root, layout, n_train=2, n_test=1, shift=2, size=48, depth=8):
    """Single-image pairs; the ground truth is shifted by ``shift`` px (misaligned, as in SDD)."""
    blur_name, sharp_name, train_dir = {"sdd": ("blur", "gt", "train_patches"), "gopro": ("input", "target", "train")}[layout]
    for split, n in ((train_dir, n_train), ("test", n_test)):
        for i in range(n):
            sharp, _, _, comb = dp_scene(size, size, seed=10 + i)
            write_image(root / split / blur_name / f"{i:03d}.png", comb, depth)
            write_image(root / split / sharp_name / f"{i:03d}.png", np.roll(sharp, shift, axis=1), depth)
    return root


def records(run):
    return [json.loads(l) for l in (run / "log.jsonl").read_text().splitlines()]


def train(*args):
    r = CliRunner().invoke(app, ["train", "--patch", "32", "--batch-size", "2", "--max-steps", "3", "--log-every", "1", "-q", *args])
    assert r.exit_code == 0, r.output
    return r


def test_jdrl_unet_on_sdd_tree(tmp_path, tiny):
    root = make_paired(tmp_path / "sdd", "sdd")
    run = tmp_path / "run"
    train("--dataset", "sdd", "--data-root", str(root), "--model", "unet", "--model-config", tiny.flag("unet"), "--jdrl", "--out", str(run))
    recs = [r for r in records(run) if r["event"] == "train"]
    assert recs and all("L_d" in r and "L_r" in r for r in recs)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["jdrl"] is True and cfg["lr"] == 2e-5  # the JDRL recipe
    from safetensors import safe_open

    crit = next(run.glob("*.criterion.safetensors"))
    with safe_open(str(crit), "pt") as f:
        assert any("reblur" in k for k in f.keys())  # ReblurNet trained and saved beside the model


def test_jdrl_works_for_a_dual_pixel_model(tmp_path, tiny):
    root = make_dpdd(tmp_path / "dpdd")
    run = tmp_path / "run"
    train("--dataset", "dpdd", "--data-root", str(root), "--model", "dmtnet-t", "--model-config", tiny.flag("dmtnet"), "--jdrl", "--out", str(run))
    recs = [r for r in records(run) if r["event"] == "train"]
    assert all(np.isfinite(r["L_r"]) for r in recs)


def test_fcn_trains_with_its_ratio_loss_by_default(tmp_path, tiny):
    root = make_paired(tmp_path / "gopro", "gopro", shift=0)
    run = tmp_path / "run"
    train("--dataset", "gopro", "--data-root", str(root), "--model", "fcn", "--model-config", tiny.flag("fcn"), "--out", str(run))
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["lr"] == 2e-4 and cfg["step_epochs"] == 200  # the FCN paper recipe
    recs = [r for r in records(run) if r["event"] == "train"]
    ratios = [recs[-1][f"r{s}"] for s in range(4)]
    assert sum(ratios) == pytest.approx(1.0, abs=1e-5) and all(0 < r < 1 for r in ratios)


def test_flow_cache_from_align_feeds_jdrl_warmup(tmp_path, tiny):
    root = make_paired(tmp_path / "sdd", "sdd")
    al = tmp_path / "aligned"
    r = CliRunner().invoke(app, ["align", "--blur", str(root / "train_patches/blur"), "--sharp", str(root / "train_patches/gt"), "--out", str(al)])
    assert r.exit_code == 0, r.output
    run = tmp_path / "run"
    train("--dataset", "sdd", "--data-root", str(root), "--model", "unet", "--model-config", tiny.flag("unet"), "--jdrl",
          "--flow-cache", str(al), "--out", str(run))
    # a missing flow is a data error before training
    (al / "flow" / "000.npy").unlink()
    r = CliRunner().invoke(app, ["train", "--dataset", "sdd", "--data-root", str(root), "--model", "unet", "--model-config", tiny.flag("unet"),
                                 "--jdrl", "--flow-cache", str(al), "--patch", "32", "--out", str(tmp_path / "r2"), "-q"])
    assert r.exit_code == 1 and "align" in r.output


def test_flow_crops_and_flips_with_the_images(tmp_path):
    from dpdeblur.data import ImageSource, find_pairs
    from dpdeblur.data.patches import PatchDataset
    from dpdeblur.flow.align import save_flow

    root = make_paired(tmp_path / "sdd", "sdd", n_train=1, size=40)
    imgs = find_pairs("sdd", root, "train")
    flow = np.zeros((2, 40, 40), np.float32)
    flow[0] = np.arange(40)[None, :] / 10.0  # x component varies along x
    flow[1] = 2.0
    save_flow(tmp_path / "al" / "flow" / "000.npy", flow)
    ds = PatchDataset(ImageSource(imgs), patch=16, mode="crop", flow_dir=tmp_path / "al")
    item = ds[0]  # no augmentation: centre crop
    assert np.allclose(item["flow_init"].numpy(), flow[:, 12:28, 12:28], atol=1e-2)
    seen = set()
    for key in [(0, e, 1) for e in range(12)]:
        f = ds[key]["flow_init"].numpy()
        hflip, vflip = bool(f[0].mean() < 0), bool(f[1].mean() < 0)
        seen.add((hflip, vflip))
        # a vertical flip negates the y component; a horizontal one negates x and mirrors the field
        assert np.allclose(f[1], -2.0 if vflip else 2.0, atol=1e-2)
        fx = -f[0][:, ::-1] if hflip else f[0]
        assert (fx >= 0).all() and (np.diff(fx, axis=1) > 0).all()
        assert np.allclose(fx, fx[0:1], atol=1e-3)  # rows equal (flipping rows changes nothing in x)
    assert len(seen) >= 3  # the augmentations really happened
