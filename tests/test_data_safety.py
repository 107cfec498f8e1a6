"""Nothing lost: file modes, temp names, EXIF of raw inputs, view folders, interrupted training,
and errors in our own words (issue 13)."""

import json
import os
import stat

import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from typer.testing import CliRunner

import rawfixtures as rf
from dpdeblur.cli import app
from dpdeblur.errors import InputError, WeightsError
from dpdeblur.io.images import read_image, write_image
from dpdeblur.models.weights import read_state_dict, save_weights
from dpdeblur.utils.atomic import atomic_write_bytes


@pytest.fixture(scope="module")
def weights(tmp_path_factory, tiny):
    p = tmp_path_factory.mktemp("w") / "dp.safetensors"
    save_weights(tiny.model("dmtnet-t"), p)  # records the tiny config: no --model-config needed
    return p


def deblur(weights, *args):
    return CliRunner().invoke(app, ["deblur", "--model", "dmtnet-t", "--weights", str(weights),
                                    "--tile", "0", *[str(a) for a in args]])


def rnd(h=24, w=32, c=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, c)).astype(np.uint8)


@pytest.fixture()
def umask():
    old = os.umask(0o027)
    yield 0o027
    os.umask(old)


def mode(p):
    return stat.S_IMODE(os.stat(p).st_mode)


def test_atomic_writes_follow_the_umask_and_keep_a_replaced_files_mode(tmp_path, umask):
    atomic_write_bytes(tmp_path / "new.bin", b"x")
    assert mode(tmp_path / "new.bin") == 0o640  # 0666 & ~027, as open() would give; not mkstemp's 0600
    p = tmp_path / "shared.bin"
    p.write_bytes(b"old")
    os.chmod(p, 0o664)
    atomic_write_bytes(p, b"new")
    assert p.read_bytes() == b"new" and mode(p) == 0o664  # replacing keeps the file's mode
    write_image(tmp_path / "img.png", rnd(), 8)
    assert mode(tmp_path / "img.png") == 0o640


def test_deblur_overwrite_keeps_the_outputs_mode(tmp_path, weights, umask):
    for v, s in (("L", 1), ("R", 2)):
        write_image(tmp_path / f"in/a_{v}.png", rnd(seed=s), 8)
    assert deblur(weights, tmp_path / "in", "-o", tmp_path / "out").exit_code == 0
    out = tmp_path / "out/a_deblurred.png"
    assert mode(out) == 0o640
    os.chmod(out, 0o644)
    assert deblur(weights, tmp_path / "in", "-o", tmp_path / "out", "--overwrite").exit_code == 0
    assert mode(out) == 0o644
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a_deblurred.png"]  # no temp files left


def test_long_output_stem_is_not_refused_because_of_the_temp_name(tmp_path):
    name = "x" * 251 + ".png"  # 255 bytes: the longest legal name
    write_image(tmp_path / name, rnd(), 8)
    assert read_image(tmp_path / name).rgb.shape == (24, 32, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize("ext", ["png", "jpg", "tif"])
def test_raw_input_exif_says_upright_in_every_format(tmp_path, weights, ext):
    f0, f1, _, _ = rf.frames(seed=3)
    src = rf.write_two_ifd(tmp_path / "photo.dng", f0, f1, rf.dng_tags(orientation=6),
                           rf.dng_tags(black=(256,) * 4, orientation=6))
    r = deblur(weights, src, "-o", tmp_path / "out", "--ext", ext)
    assert r.exit_code == 0, r.output
    out = tmp_path / f"out/photo_deblurred.{ext}"
    with PILImage.open(out) as im:
        exif = im.getexif()
        assert im.height > im.width  # pixels turned upright (orientation 6 = 90 degrees)
        assert exif.get(0x0112, 1) == 1  # ... so viewers must not rotate them again
        if ext != "tif":  # PNG eXIf / JPEG APP1 carry the camera's EXIF (TIFF keeps descriptive tags)
            assert exif.get(0x010F) == "Canon"
            raw = im.info.get("exif", b"")
            assert not raw.startswith(b"Exif\x00\x00Exif") and b"Exif\x00\x00" not in raw[6:]


def test_left_right_folders_pair_by_id_and_list_the_unmatched(tmp_path, weights):
    for i in ("a", "b"):
        write_image(tmp_path / f"L/{i}_L.png", rnd(seed=1), 8)
        write_image(tmp_path / f"R/{i}_R.png", rnd(seed=2), 8)
    write_image(tmp_path / "L/only_L.png", rnd(seed=3), 8)
    write_image(tmp_path / "R/c.png", rnd(seed=4), 8)  # equal stems pair too
    write_image(tmp_path / "L/c.png", rnd(seed=5), 8)
    r = deblur(weights, "--left", tmp_path / "L", "--right", tmp_path / "R", "-o", tmp_path / "out", "--json")
    assert r.exit_code == 1, r.output  # partial failure
    rep = json.loads(r.stdout[r.stdout.index("{"):])
    assert (rep["ok"], rep["failed"]) == (3, 1)
    bad = next(i for i in rep["items"] if i["status"] == "failed")
    assert "only_L.png" in bad["name"] and "no only_R" in bad["error"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_deblurred.png", "b_deblurred.png", "c_deblurred.png"]


def test_dpdd_root_with_a_missing_view_folder_lists_every_id(tmp_path, weights):
    for i in ("001", "002"):
        write_image(tmp_path / f"d/test_l/source/{i}_L.png", rnd(), 8)
    r = deblur(weights, tmp_path / "d", "-o", tmp_path / "out", "--json")
    assert r.exit_code == 1
    rep = json.loads(r.stdout[r.stdout.index("{"):])
    assert rep["failed"] == 2 and all("test_r" in i["error"] for i in rep["items"])


def test_pairs_keep_alpha_and_the_same_file_twice_is_warned(tmp_path, weights):
    rgba = rnd(c=4, seed=7)
    write_image(tmp_path / "v.png", rgba[..., :3], 8, alpha=rgba[..., 3])
    r = deblur(weights, "--left", tmp_path / "v.png", "--right", tmp_path / "v.png", "-o", tmp_path / "out")
    assert r.exit_code == 0, r.output
    assert "warning:" in r.stderr and "same file" in r.stderr
    im = read_image(tmp_path / "out/v_deblurred.png")
    assert im.alpha is not None and np.array_equal(np.rint(im.alpha * 255).astype(np.uint8), rgba[..., 3])
    r = deblur(weights, "--left", tmp_path / "v.png", "--right", tmp_path / "v.png", "-o", tmp_path / "out", "--overwrite",
               "--json")
    assert json.loads(r.stdout)["items"][0]["info"]["channels"] == 4  # the report counts the alpha it wrote


def test_ctrl_c_in_train_says_where_the_checkpoint_is(tmp_path, monkeypatch, tiny):
    import dpdeblur.train as train
    from _train_data import make_dpdd

    data = make_dpdd(tmp_path / "d", n=(1, 0, 0), h=32, w=32)
    args = ["train", "--dataset", "dpdd", "--data-root", str(data), "--model", "dmtnet-t", "--model-config", tiny.flag("dmtnet"),
            "--patch", "16", "--batch-size", "1", "--max-steps", "2", "-q", "--out", str(tmp_path / "run")]
    assert CliRunner().invoke(app, args).exit_code == 0
    real = train.fit

    def interrupted(cfg, resume=False):
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "fit", interrupted)
    r = CliRunner().invoke(app, args[:-2] + ["--max-steps", "4", "--out", str(tmp_path / "run"), "--resume"])
    assert r.exit_code == 130
    line = r.stderr.strip()
    assert line.count("\n") == 0 and "interrupted" in line
    assert str(tmp_path / "run" / "last.state.pt") in line and "(step 2)" in line and "--resume" in line
    monkeypatch.setattr(train, "fit", real)


def test_decoder_noise_stays_off_the_terminal(tmp_path, capfd):
    good = tmp_path / "good.png"
    write_image(good, rnd(), 8)
    data = good.read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cut.png"):
        read_image(tmp_path / "cut.png")
    err = capfd.readouterr().err
    assert "WARN" not in err and "libpng" not in err


def test_refused_pickle_is_said_in_our_words(tmp_path):
    torch.save({"w": np.zeros(3)}, tmp_path / "pickled.pt")  # not loadable with weights_only=True
    with pytest.raises(WeightsError) as e:
        read_state_dict(tmp_path / "pickled.pt")
    msg = str(e.value)
    assert "refused" in msg and "weights_only" not in msg and "\n" not in msg
    (tmp_path / "w.safetensors").write_text("these are notes, not weights")
    with pytest.raises(WeightsError, match="not a weights file"):
        read_state_dict(tmp_path / "w.safetensors")


def test_synth_report_counts_what_was_written(tmp_path):
    import cv2

    (tmp_path / "img").mkdir()
    cv2.imwrite(str(tmp_path / "img/a.png"), np.random.default_rng(0).integers(0, 256, (64, 64, 3)).astype(np.uint8))
    (tmp_path / "img/b.png").write_text("not an image")
    r = CliRunner().invoke(app, ["synth", "-o", str(tmp_path / "out"), "--images", str(tmp_path / "img"),
                                 "--split", "train=2,val=1,test=1", "--size", "32x32"])
    assert r.exit_code == 1  # some sets failed
    manifest = json.loads((tmp_path / "out/synth.json").read_text())
    n = {s: sum(1 for i in manifest["items"] if i["split"] == s) for s in ("train", "val", "test")}
    assert 0 < sum(n.values()) == manifest["ok"] < 4
    assert f"wrote {manifest['ok']} image sets (train {n['train']}, val {n['val']}, test {n['test']})" in " ".join(r.stderr.split())
    written = {p.stem for p in (tmp_path / "out").glob("*_c/target/*.png")}
    assert written == {i["id"] for i in manifest["items"]}


def test_resume_accepts_the_runs_own_settings_given_again(tmp_path, tiny):
    from _train_data import make_dpdd

    data = make_dpdd(tmp_path / "d", n=(1, 0, 0), h=32, w=32)
    cfgs = tiny.flag("dmtnet") + ",scales=(1,2)"
    args = ["train", "--dataset", "dpdd", "--data-root", str(data), "--model", "dmtnet-t", "--model-config", cfgs,
            "--patch", "16", "--batch-size", "1", "-q", "--out", str(tmp_path / "run")]
    assert CliRunner().invoke(app, [*args, "--max-steps", "1"]).exit_code == 0
    r = CliRunner().invoke(app, [*args, "--max-steps", "2", "--resume"])  # same model config (a tuple) again
    assert r.exit_code == 0, r.output
    before = (tmp_path / "run/config.json").read_bytes()
    r = CliRunner().invoke(app, [*args[:-3], "--out", str(tmp_path / "run"), "--resume", "--max-steps", "3",
                                 "--model-config", tiny.flag("dmtnet")])  # a different one: refused, nothing written
    assert r.exit_code == 2 and "model_config" in r.stderr
    assert (tmp_path / "run/config.json").read_bytes() == before
