"""``dpdeblur split-dp``: layouts, sidecars, masks, skip/overwrite, bad files, exit codes."""

import json

import cv2
import numpy as np
from rawfixtures import H, W, dng_tags, frames, write_pair, write_two_ifd
from typer.testing import CliRunner

from dpdeblur.cli import app
from dpdeblur.io.dpsplit import dual_pixel_inputs, output_paths


def invoke(*args):
    return CliRunner().invoke(app, ["split-dp", *map(str, args)])


def make_inputs(folder):
    folder.mkdir()
    f0, f1, _, _ = frames()
    write_two_ifd(folder / "IMG_1.dng", f0, f1, dng_tags(), dng_tags((256,) * 4))
    write_pair(folder, "s1")
    (folder / "bad.CR2").write_text("not a raw file")
    (folder / "notes.png").write_bytes(b"")  # a stray PNG in a folder is ignored
    return folder


def test_inputs_grouping(tmp_path):
    d = make_inputs(tmp_path / "in")
    assert sorted(p.name for p in dual_pixel_inputs([d])) == ["IMG_1.dng", "bad.CR2", "s1_left.png"]
    assert [p.name for p in dual_pixel_inputs([d / "s1_right.png", d / "s1_left.png"])] == ["s1_right.png"]


def test_flat_layout_batch_continues_past_bad_file(tmp_path):
    d = make_inputs(tmp_path / "in")
    out = tmp_path / "out"
    r = invoke(d, "-o", out, "--mask", "--json")
    assert r.exit_code == 1, r.output
    rep = json.loads(r.stdout)
    assert (rep["ok"], rep["failed"], rep["skipped"]) == (2, 1, 0)
    bad = next(i for i in rep["items"] if i["status"] == "failed")
    assert "bad.CR2: not a raw file (it holds text)" in bad["error"]
    assert sorted(p.name for p in out.iterdir()) == [
        "IMG_1.json", "IMG_1_C.png", "IMG_1_L.png", "IMG_1_M.png", "IMG_1_R.png",
        "s1.json", "s1_C.png", "s1_L.png", "s1_M.png", "s1_R.png"]
    img = cv2.imread(str(out / "IMG_1_L.png"), cv2.IMREAD_UNCHANGED)
    assert img.shape == (H, W, 3) and img.dtype == np.uint16
    mask = cv2.imread(str(out / "s1_M.png"), cv2.IMREAD_UNCHANGED)
    assert mask.dtype == np.uint8 and mask[0, 0] == 255 and mask.sum() == 255
    meta = json.loads((out / "IMG_1.json").read_text())
    assert meta["black_levels"] == [[512] * 4, [256] * 4] and meta["stored_view"] == "right"
    assert meta["orientation"] == 1 and meta["saturation"] == 0.0 and meta["camera"] == "Canon EOS 5D Mark IV"
    # second run: everything that exists is skipped; the bad file fails again
    rep = json.loads(invoke(d, "-o", out, "--mask", "--json").stdout)
    assert (rep["ok"], rep["failed"], rep["skipped"]) == (0, 1, 2)
    rep = json.loads(invoke(d / "IMG_1.dng", "-o", out, "--overwrite", "--json").stdout)
    assert rep["ok"] == 1 and invoke(d / "IMG_1.dng", "-o", out, "--json").exit_code == 0


def test_dpdd_layout_scale_and_usage_errors(tmp_path):
    d = make_inputs(tmp_path / "in")
    out = tmp_path / "dp"
    r = invoke(d / "IMG_1.dng", d / "s1_right.png", "-o", out, "--layout", "dpdd", "--split", "train",
               "--scale", "0.5", "--stored-view", "left")
    assert r.exit_code == 0, r.output
    for k, p in output_paths(d / "IMG_1.dng", out, "dpdd", "train").items():
        assert p.exists() == (k != "mask"), p
    assert (out / "train_l" / "source" / "s1_L.png").exists() and (out / "train_c" / "source" / "s1.png").exists()
    assert cv2.imread(str(out / "train_r" / "source" / "IMG_1_R.png"), cv2.IMREAD_UNCHANGED).shape == (H // 2, W // 2, 3)
    assert json.loads((out / "train_c" / "meta" / "IMG_1.json").read_text())["stored_view"] == "left"
    assert invoke(d, "-o", out, "--layout", "tiles").exit_code == 2
    assert invoke(d, "-o", out, "--scale", "3").exit_code == 2
    assert invoke(d, "-o", out, "--stored-view", "top").exit_code == 2
    assert invoke(tmp_path / "missing.dng", "-o", out).exit_code == 1


def test_help_does_not_import_torch():
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}

    code = ("import sys; from dpdeblur.cli import app; import typer.testing as tt;"
            "r = tt.CliRunner().invoke(app, ['split-dp', '--help']); assert r.exit_code == 0 and 'WHITE_L' in r.output;"
            "print('torch' in sys.modules, 'rawpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout.split()
    assert out == ["False", "False"]


def test_wiggle_preview_gif_and_webp(tmp_path):
    """`--wiggle gif|webp`: a looping two-frame left/right animation beside the views."""
    from PIL import Image, ImageSequence

    from dpdeblur.io.images import read_image

    d = make_inputs(tmp_path / "in")
    for fmt, layout, where in (("gif", "flat", "IMG_1_wiggle.gif"), ("webp", "dpdd", "test_c/wiggle/IMG_1.webp")):
        out = tmp_path / fmt
        r = invoke(d / "IMG_1.dng", "-o", out, "--layout", layout, "--wiggle", fmt, "--json")
        assert r.exit_code == 0, r.output
        p = out / where
        assert str(p) in json.loads(r.stdout)["items"][0]["outputs"]
        with Image.open(p) as im:
            assert im.format == fmt.upper() and im.info["loop"] == 0  # loops forever
            frames = np.stack([np.asarray(f.convert("RGB"), np.float32) / 255 for f in ImageSequence.Iterator(im)])
        assert frames.shape == (2, H, W, 3)
        paths = output_paths(d / "IMG_1.dng", out, layout, "test", fmt)
        assert paths["wiggle"] == p
        views = [read_image(paths[v]).rgb for v in ("left", "right")]
        err = [[np.abs(f - v).mean() for v in views] for f in frames]
        # left first, then right, up to the coding error (GIF palette; lossy WebP with 4:2:0 chroma on a noise fixture)
        tol = {"gif": 0.02, "webp": 0.08}[fmt]
        assert err[0][0] < tol and err[1][1] < tol
        assert err[0][0] < 0.6 * err[0][1] and err[1][1] < 0.6 * err[1][0]
        assert not [q for q in p.parent.iterdir() if q.name.startswith(".")]  # atomic: no temp files
    assert invoke(d, "-o", tmp_path / "x", "--wiggle", "mp4").exit_code == 2
