"""Data sets: layouts, checks before training, patches, flips, cache, resumable sampler."""

import numpy as np
import pytest
import torch

from _train_data import make_dpdd
from dpdeblur.data import FullImageDataset, ImageSource, PatchDataset, ResumableSampler, check_fit, check_readable, find_pairs
from dpdeblur.data.patches import slide_positions
from dpdeblur.errors import DataError, UsageError
from dpdeblur.io.images import write_image
from dpdeblur.models import get_card


@pytest.fixture(scope="module")
def dpdd(tmp_path_factory):
    return make_dpdd(tmp_path_factory.mktemp("dpdd"), n=(2, 1, 1), h=48, w=64)


def test_dpdd_layout_and_fit(dpdd):
    s = find_pairs("dpdd", dpdd, "train")
    assert len(s) == 2 and s.has_views
    assert s.samples[0].left.name == "001_L.png" and s.samples[0].right.name == "001_R.png"
    assert s.samples[0].blur.parent.name == "source" and s.samples[0].sharp.parent.name == "target"
    check_fit(s, get_card("dmtnet-t"))
    assert check_readable(s, 32).sizes == [(48, 64), (48, 64)]
    with pytest.raises(DataError, match="smaller than the 64px patch"):
        check_readable(s, 64)


def test_rgb_sets_and_mismatch(tmp_path):
    img = np.full((8, 8, 3), 0.5, np.float32)
    for split, (b, g) in {"train_patches": ("blur", "gt"), "test": ("blur", "gt")}.items():
        for n in ("a", "b"):
            write_image(tmp_path / "sdd" / split / b / f"{n}.png", img)
            write_image(tmp_path / "sdd" / split / g / f"{n}.png", img)
    s = find_pairs("sdd", tmp_path / "sdd", "train")
    assert len(s) == 2 and not s.has_views
    with pytest.raises(DataError, match="takes dual-pixel views"):
        check_fit(s, get_card("dmtnet-b"))
    # gopro: MPRNet names, blur/sharp names, and GoPro's scene folders
    for layout in (("input", "target"), ("blur", "sharp")):
        root = tmp_path / f"gopro-{layout[0]}"
        for d in layout:
            write_image(root / "train" / d / "x.png", img)
        assert len(find_pairs("gopro", root, "train")) == 1
    root = tmp_path / "gopro-scenes"
    for scene in ("GOPR1", "GOPR2"):
        for d in ("blur", "sharp"):
            write_image(root / "train" / scene / d / "0001.png", img)
    assert [x.id for x in find_pairs("gopro", root, "train").samples] == ["GOPR1/0001", "GOPR2/0001"]
    with pytest.raises(UsageError, match="test-only"):
        find_pairs("hide", tmp_path, "train")
    with pytest.raises(UsageError, match="unknown data set"):
        find_pairs("nope", tmp_path)


def test_errors_list_offending_files(tmp_path):
    img = np.zeros((8, 8, 3), np.float32)
    for n in ("1", "2", "3"):
        write_image(tmp_path / "b" / f"{n}.png", img)
    write_image(tmp_path / "s" / "1.png", img)
    write_image(tmp_path / "s" / "2.png", np.zeros((9, 8, 3)))
    (tmp_path / "s" / "3.png").write_bytes(b"not a png")
    write_image(tmp_path / "b" / "4.png", img)
    with pytest.raises(DataError, match=r"unpaired files: .*4\.png \(no sharp image\)"):
        find_pairs("folder", blur=tmp_path / "b", sharp=tmp_path / "s")
    (tmp_path / "b" / "4.png").unlink()
    s = find_pairs("folder", blur=tmp_path / "b", sharp=tmp_path / "s")
    with pytest.raises(DataError) as e:
        check_readable(s)
    msg = str(e.value)
    assert "unreadable files" in msg and "s/3.png" in msg and "different sizes: 2 " in msg and "1.png" not in msg
    with pytest.raises(DataError, match="folder not found"):
        find_pairs("dpdd", tmp_path, "train")


def test_slide_windows_flips_and_views(dpdd):
    assert slide_positions(1120, 512, 0.6) == [0, 205, 410, 608]
    assert slide_positions(1680, 512, 0.6)[-1] == 1168 and len(slide_positions(1680, 512, 0.6)) == 7
    src = ImageSource(check_readable(find_pairs("dpdd", dpdd, "train")))
    ds = PatchDataset(src, ("right", "left"), patch=32, overlap=0.5)
    assert len(ds) == 2 * 2 * 3  # rows 0,16 x columns 0,16,32 per image
    plain = ds[0]
    assert plain["input"].shape == (6, 32, 32) and plain["sharp"].shape == (3, 32, 32)
    full = FullImageDataset(src, ("right", "left"))[0]
    assert torch.equal(plain["input"], full["input"][:, :32, :32])
    left = src.get(0)[..., 0:3].astype(np.float32) / 65535
    assert torch.allclose(full["input"][3:], torch.from_numpy(left).permute(2, 0, 1))
    # a horizontal flip mirrors and swaps the views; keys are deterministic
    seen = set()
    for seed in range(8):
        a = ds[(0, 0, seed)]
        assert torch.equal(a["input"], ds[(0, 0, seed)]["input"])
        hflip = torch.equal(a["sharp"], plain["sharp"].flip(-1)) or torch.equal(a["sharp"], plain["sharp"].flip(-1, -2))
        if hflip:
            assert torch.equal(a["input"][:3], plain["input"][3:].flip(-1) if torch.equal(a["sharp"], plain["sharp"].flip(-1)) else plain["input"][3:].flip(-1, -2))
        seen.add(hflip)
    assert seen == {True, False}
    drop = PatchDataset(src, ("right", "left"), patch=32, overlap=0.5, drop_flat=0.3)
    assert len(drop) == 12 - int(12 * 0.3)
    crops = PatchDataset(src, (), patch=16, mode="crop", crops_per_image=3)
    assert len(crops) == 6 and crops[(4, 1, 0)]["input"].shape == (3, 16, 16)


def test_cache_matches_and_invalidates(dpdd, tmp_path):
    imgs = check_readable(find_pairs("dpdd", dpdd, "train"))
    cached = ImageSource(imgs, tmp_path / "c")
    assert cached.cache_valid() and len(list((tmp_path / "c").glob("img_*.npy"))) == 2
    np.testing.assert_array_equal(cached.get(1), ImageSource(imgs).get(1))
    mtime = (tmp_path / "c" / "img_000000.npy").stat().st_mtime_ns
    ImageSource(imgs, tmp_path / "c")  # reused
    assert (tmp_path / "c" / "img_000000.npy").stat().st_mtime_ns == mtime
    write_image(imgs.samples[0].sharp, np.zeros((48, 64, 3)), 16)  # the data set changed
    again = ImageSource(check_readable(find_pairs("dpdd", dpdd, "train")), tmp_path / "c")
    assert again.get(0)[..., 9:].max() == 0


def test_sampler_resumes_mid_epoch_and_shards():
    ds = list(range(10))
    s = ResumableSampler(ds, seed=3)
    s.set_position(2)
    full = list(s)
    s.set_position(2, start=4)
    assert list(s) == full[4:] and len(s) == 6
    assert all(k[1:] == (2, 3) for k in full)
    s.set_position(1)
    assert [k[0] for k in s] != [k[0] for k in full]
    r0, r1 = ResumableSampler(ds, 0, 2, seed=3), ResumableSampler(ds, 1, 2, seed=3)
    r0.set_position(0)
    r1.set_position(0)
    assert sorted(k[0] for k in [*r0, *r1]) == list(range(10))


def test_views_side_by_side_in_one_folder(tmp_path):
    """--left and --right may name one folder holding <id>_L and <id>_R (as assets/samples)."""
    import numpy as np

    from dpdeblur.data import find_pairs
    from dpdeblur.errors import DataError
    from dpdeblur.io.images import write_image

    d, s = tmp_path / "views", tmp_path / "sharp"
    for i in ("a", "b"):
        write_image(d / f"{i}_L.png", np.zeros((8, 8, 3)), 8)
        write_image(d / f"{i}_R.png", np.ones((8, 8, 3)), 8)
        write_image(s / f"{i}.png", np.ones((8, 8, 3)), 8)
    imgs = find_pairs("folder", None, "train", left=d, right=d, sharp=s)
    assert [(x.left.name, x.right.name) for x in imgs.samples] == [("a_L.png", "a_R.png"), ("b_L.png", "b_R.png")]
    write_image(s / "a.jpg", np.ones((8, 8, 3)), 8)
    with pytest.raises(DataError, match="same image"):
        find_pairs("folder", None, "train", left=d, right=d, sharp=s)


def test_resize_mode_is_the_whole_image_at_patch_size(dpdd, tmp_path):
    """FCN's recipe: every training image resized (not cropped) to patch x patch, one item per image."""
    import cv2

    from dpdeblur.flow.align import save_flow

    src = ImageSource(check_readable(find_pairs("dpdd", dpdd, "train")))
    ds = PatchDataset(src, ("right", "left"), patch=16, mode="resize", crops_per_image=3)
    assert len(ds) == 2  # one per image, whatever crops_per_image says
    item = ds[1]
    assert item["input"].shape == (6, 16, 16) and item["sharp"].shape == (3, 16, 16)
    # 48x64 -> 16x16 by area averaging: 3x4 blocks, aspect ratio not kept
    sharp = src.get(1)[..., 9:12].astype(np.float64) / 65535
    ref = sharp.reshape(16, 3, 16, 4, 3).mean(axis=(1, 3))
    assert np.allclose(item["sharp"].permute(1, 2, 0).numpy(), ref, atol=2 / 65535)
    left = src.get(1)[..., 0:3]  # the views are resized like the rest (input = right, left)
    assert np.allclose(item["input"][3:].permute(1, 2, 0).numpy(),
                       cv2.resize(left, (16, 16), interpolation=cv2.INTER_AREA) / 65535, atol=1e-6)
    # flips still apply (and swap the views)
    assert {torch.equal(ds[(1, e, 3)]["sharp"], item["sharp"]) for e in range(8)} == {True, False}
    # a cached flow is resampled with the image and its components scaled (x by 16/64, y by 16/48)
    imgs = find_pairs("dpdd", dpdd, "train")
    for s in imgs.samples:
        flow = np.zeros((2, 48, 64), np.float32)
        flow[0], flow[1] = 4.0, 3.0
        save_flow(tmp_path / "al" / "flow" / f"{s.id}.npy", flow)
    fl = PatchDataset(ImageSource(imgs), ("right", "left"), patch=16, mode="resize", flips=False, flow_dir=tmp_path / "al")
    f = fl[0]["flow_init"].numpy()
    assert f.shape == (2, 16, 16) and np.allclose(f[0], 1.0) and np.allclose(f[1], 1.0)
    with pytest.raises(UsageError, match="patch_mode"):
        from dpdeblur.train.config import resolve_config

        resolve_config({"model": "fcn", "patch_mode": "scale"})
