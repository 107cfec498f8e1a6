"""The bad-input corpus: every command, realistic mistakes, one assertion set each.

For every case: the exit code (2 usage error, 1 failure; a missing path and an empty
folder are failures, 1, everywhere), one clear message (a single ``error:`` line, or
``failed`` lines for a batch, naming the file or the option), no traceback, and data
safety (the workspace - inputs, the training run folder - is byte- and mode-identical
afterwards, and no temporary, partial or new file or folder appeared).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from _train_data import make_dpdd
from dpdeblur.cli import app
from dpdeblur.io.images import write_image
from dpdeblur.models.weights import save_weights


def _img(h=32, w=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3)).astype(np.uint8)


def _big_header_png(path: Path) -> None:
    """A PNG whose IHDR declares 100000 x 100000 pixels (a valid CRC, so the decoder trusts it)."""
    import cv2

    b = bytearray(cv2.imencode(".png", _img(8, 8))[1].tobytes())
    b[16:24] = struct.pack(">II", 100000, 100000)
    b[29:33] = struct.pack(">I", zlib.crc32(bytes(b[12:29])) & 0xFFFFFFFF)
    path.write_bytes(bytes(b))


@pytest.fixture(scope="module")
def ws(tmp_path_factory, tiny):
    """A workspace of good and bad inputs and a trained (1 step) run folder."""
    root = tmp_path_factory.mktemp("corpus")
    (root / "in").mkdir()
    write_image(root / "in/a_L.png", _img(seed=1), 8)
    write_image(root / "in/a_R.png", _img(seed=2), 8)
    write_image(root / "views/foo.png", _img(seed=3), 8)  # views named freely (no _L/_R)
    write_image(root / "views/bar.png", _img(seed=4), 8)
    (root / "notes.txt").write_text("not an image, not weights\n")
    (root / "notes_L.png").write_text("a text file with an image name\n")
    (root / "afile").write_text("a file where a folder is expected\n")
    (root / "empty").mkdir()
    _big_header_png(root / "big_L.png")
    shutil.copy(root / "big_L.png", root / "big_R.png")
    good = (root / "in/a_L.png").read_bytes()
    (root / "trunc_L.png").write_bytes(good[: len(good) // 2])
    shutil.copy(root / "in/a_R.png", root / "trunc_R.png")
    import cv2

    nan = np.random.default_rng(5).random((32, 32, 3)).astype(np.float32)
    nan[5, 5, 0] = np.nan
    for side in "LR":
        cv2.imwrite(str(root / f"nan_{side}.tif"), nan)  # float TIFF views with one NaN sample
    sensor = (1024 + np.random.default_rng(6).random((32, 32)) * 15000).astype(np.uint16)
    for side in ("left", "right"):
        cv2.imwrite(str(root / f"s16_{side}.png"), sensor)  # a raw sensor pair (16-bit, one channel)
        cv2.imwrite(str(root / f"p8_{side}.pgm"), (sensor >> 8).astype(np.uint8))  # 8 bits: not sensor data
    (root / "zero.png").write_bytes(b"")
    (root / "blocked/a_deblurred.png").mkdir(parents=True)  # folders where output files would go
    (root / "blocked/s16_C.png").mkdir()
    write_image(root / "ab/blur/a.png", _img(seed=7), 8)  # align whose out/gt is the sharp folder
    write_image(root / "ab/gt/a.png", _img(seed=8), 8)
    save_weights(tiny.model("dmtnet-t"), root / "dp.safetensors")
    import torch

    torch.save(tiny.model("dmtnet-t").state_dict(), root / "dp_tiny.pt")  # no metadata: fits only the tiny config
    data = make_dpdd(root / "data", n=(2, 1, 0), h=48, w=48)
    # a DPDD root whose right views are missing
    shutil.copytree(data / "train_l", root / "dpdd_no_r/test_l")
    shutil.copytree(data / "train_c", root / "dpdd_no_r/test_c")
    r = CliRunner().invoke(app, ["train", "--dataset", "dpdd", "--data-root", str(data), "--model", "dmtnet-t",
                                 "--model-config", tiny.flag("dmtnet"), "--patch", "16", "--overlap", "0", "--batch-size", "2",
                                 "--max-steps", "1", "-q", "--out", str(root / "run")])
    assert r.exit_code == 0, r.output
    (root / "runbad").mkdir()
    (root / "runbad/config.json").write_text("{ not json")
    shutil.copy(root / "run/last.state.pt", root / "runbad/last.state.pt")
    return root


def _snapshot(root: Path) -> dict[str, tuple]:
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        if p.is_dir():
            out[str(p.relative_to(root))] = ("dir", st.st_mode)
        else:
            out[str(p.relative_to(root))] = (hashlib.sha256(p.read_bytes()).hexdigest(), st.st_mode)
    return out


W = "{ws}/dp.safetensors"
DEBLUR = ["deblur", "--model", "dmtnet-t", "--weights", W, "--model-config", "{tiny}"]
LR = ["--left", "{ws}/in/a_L.png", "--right", "{ws}/in/a_R.png", "-o", "{ws}/out", "--tile", "0"]
TRAIN = ["train", "--dataset", "dpdd", "--data-root", "{ws}/data", "--model", "dmtnet-t", "--model-config", "{tiny}",
         "--patch", "16", "--batch-size", "2", "--max-steps", "1", "-q"]
SPEED = ["bench", "speed", "-m", "dmtnet-t", "--model-config", "{tiny}", "--size", "32x32", "--runs", "1", "--warmup", "0"]
QUALITY = ["bench", "quality", "--dataset", "dpdd", "--data-root", "{ws}/data", "--split", "val", "--model", "identity"]

# (id, argv, exit code, text the message must contain)
CASES = [
    # deblur: data loss first
    ("deblur-output-is-input", [*DEBLUR, "--left", "{ws}/views/foo.png", "--right", "{ws}/views/bar.png", "--suffix", "",
                                "--overwrite", "--tile", "0"], 2, "foo.png"),
    ("deblur-output-is-other-input", [*DEBLUR, "{ws}/in", "--suffix", "_R", "--tile", "0"], 2, "a_R.png"),
    ("deblur-suffix-separator", [*DEBLUR, *LR, "--suffix", "/../../escape"], 2, "--suffix"),
    ("deblur-suffix-backslash", [*DEBLUR, *LR, "--suffix", "..\\x"], 2, "--suffix"),
    ("deblur-unknown-model-config-key", [*DEBLUR, *LR, "--model-config", "foo=bar"], 2, "valid keys"),
    ("deblur-invalid-model-config-value", [*DEBLUR, *LR, "--model-config", "dim=-4"], 2, "dim"),
    ("deblur-model-config-no-equals", [*DEBLUR, *LR, "--model-config", "dim"], 2, "KEY=VALUE"),
    ("deblur-tile-negative", [*DEBLUR, *LR, "--tile", "-1"], 2, "--tile"),
    ("deblur-overlap-ge-tile", [*DEBLUR, *LR, "--tile", "64", "--overlap", "64"], 2, "--overlap"),
    ("deblur-blend", [*DEBLUR, *LR, "--blend", "soft"], 2, "--blend"),
    ("deblur-tile-batch", [*DEBLUR, *LR, "--tile-batch", "0"], 2, "--tile-batch"),
    ("deblur-precision", [*DEBLUR, *LR, "--precision", "fp8"], 2, "--precision"),
    ("deblur-device", [*DEBLUR, *LR, "--device", "tpu"], 2, "--device"),
    ("deblur-ext", [*DEBLUR, *LR, "--ext", "gif"], 2, "--ext"),
    ("deblur-quality", [*DEBLUR, *LR, "--quality", "0"], 2, "--quality"),
    ("deblur-bit-depth", [*DEBLUR, *LR, "--bit-depth", "12"], 2, "--bit-depth"),
    ("deblur-stored-view", [*DEBLUR, *LR, "--stored-view", "top"], 2, "--stored-view"),
    ("deblur-unknown-model", ["deblur", "{ws}/in", "--model", "nosuch"], 2, "nosuch"),
    ("deblur-left-alone", [*DEBLUR, "--left", "{ws}/in/a_L.png"], 2, "--right"),
    ("deblur-left-file-right-folder", [*DEBLUR, "--left", "{ws}/in/a_L.png", "--right", "{ws}/empty"], 2, "--right"),
    ("deblur-no-inputs", [*DEBLUR], 2, "no inputs"),
    ("deblur-weights-text", ["deblur", *LR, "--model", "dmtnet-t", "--weights", "{ws}/notes.txt"], 1, "notes.txt"),
    ("deblur-weights-folder", ["deblur", *LR, "--model", "dmtnet-t", "--weights", "{ws}/empty"], 1, "is a folder"),
    # weights of another model are a usage error (2) whatever the format
    ("deblur-weights-pt-other-config", ["deblur", *LR, "--model", "dmtnet-t", "--weights", "{ws}/dp_tiny.pt"], 2, "do not fit"),
    ("deblur-weights-other-model", ["deblur", *LR, "--model", "dmtnet-s", "--weights", W], 2, "holds dmtnet-t weights"),
    ("train-grow-from-same-size", [*TRAIN, "--grow-from", W, "--out", "{ws}/newrun"], 2, "nothing to grow"),
    ("deblur-weights-missing", ["deblur", *LR, "--model", "dmtnet-t", "--weights", "{ws}/nope.safetensors"], 1, "nope.safetensors"),
    ("deblur-missing-input", [*DEBLUR, "{ws}/nope.png", "-o", "{ws}/out"], 1, "nope.png"),
    ("deblur-empty-folder", [*DEBLUR, "{ws}/empty", "-o", "{ws}/out"], 1, "no images"),
    ("deblur-left-missing", [*DEBLUR, "--left", "{ws}/nope_L.png", "--right", "{ws}/in/a_R.png"], 1, "nope_L.png"),
    ("deblur-text-as-image", [*DEBLUR, "--left", "{ws}/notes_L.png", "--right", "{ws}/in/a_R.png", "-o", "{ws}/out"], 1, "notes_L.png"),
    ("deblur-absurd-header", [*DEBLUR, "--left", "{ws}/big_L.png", "--right", "{ws}/big_R.png", "-o", "{ws}/out"], 1, "100000x100000"),
    ("deblur-truncated", [*DEBLUR, "--left", "{ws}/trunc_L.png", "--right", "{ws}/trunc_R.png", "-o", "{ws}/out"], 1, "trunc_L.png"),
    ("deblur-folder-as-view", [*DEBLUR, "--left", "{ws}/empty", "--right", "{ws}/empty", "-o", "{ws}/out"], 1, "no images"),
    ("deblur-dpdd-missing-right", [*DEBLUR, "{ws}/dpdd_no_r", "-o", "{ws}/out"], 1, "001_R"),
    ("deblur-output-dir-is-file", [*DEBLUR, *LR[:4], "-o", "{ws}/afile"], 2, "afile"),
    ("deblur-flat-field-text", [*DEBLUR, *LR, "--flat-field", "{ws}/notes.txt", "{ws}/notes.txt"], 1, "notes.txt"),
    ("deblur-flat-field-empty", [*DEBLUR, *LR, "--flat-field", "{ws}/zero.png", "{ws}/zero.png"], 1, "empty"),
    ("deblur-nan-samples", [*DEBLUR, "--left", "{ws}/nan_L.tif", "--right", "{ws}/nan_R.tif", "-o", "{ws}/out"], 1, "NaN"),
    ("deblur-output-dir-under-file", [*DEBLUR, *LR[:4], "-o", "{ws}/afile/sub"], 2, "afile"),
    ("deblur-output-is-a-folder", [*DEBLUR, *LR[:4], "-o", "{ws}/blocked", "--tile", "0"], 1, "is a folder"),
    ("deblur-tile-too-small", [*DEBLUR, *LR, "--tile", "8", "--overlap", "0"], 2, "--tile"),
    # split-dp
    ("split-missing", ["split-dp", "{ws}/nope.dng", "-o", "{ws}/out"], 1, "nope.dng"),
    ("split-empty-folder", ["split-dp", "{ws}/empty", "-o", "{ws}/out"], 1, "empty"),
    ("split-text-as-raw", ["split-dp", "{ws}/notes.txt", "-o", "{ws}/out"], 1, "notes.txt"),
    ("split-scale", ["split-dp", "{ws}/in", "-o", "{ws}/out", "--scale", "0"], 2, "--scale"),
    ("split-levels-contradict", ["split-dp", "{ws}/in", "-o", "{ws}/out", "--black-level", "5000", "--white-level", "100"], 2, "--black-level"),
    ("split-layout", ["split-dp", "{ws}/in", "-o", "{ws}/out", "--layout", "tree"], 2, "--layout"),
    ("split-outdir-is-file", ["split-dp", "{ws}/in", "-o", "{ws}/afile"], 2, "afile"),
    ("split-8bit-sensor-pair", ["split-dp", "{ws}/p8_left.pgm", "-o", "{ws}/out"], 1, "8-bit"),
    ("split-black-level-alone", ["split-dp", "{ws}/s16_left.png", "-o", "{ws}/out", "--black-level", "20000"], 2, "--white-level"),
    ("split-flat-field-empty", ["split-dp", "{ws}/s16_left.png", "-o", "{ws}/out", "--flat-field", "{ws}/zero.png",
                                "{ws}/zero.png"], 1, "zero.png: the file is empty"),
    ("split-output-is-a-folder", ["split-dp", "{ws}/s16_left.png", "-o", "{ws}/blocked"], 1, "s16_C.png"),  # no partial item
    # synth
    ("synth-size-zero", ["synth", "-o", "{ws}/out", "--size", "0x0", "--count", "3"], 2, "--size"),
    ("synth-count-zero", ["synth", "-o", "{ws}/out", "--count", "0"], 2, "--count"),
    ("synth-images-missing", ["synth", "-o", "{ws}/out", "--images", "{ws}/nope", "--count", "3"], 1, "nope"),
    ("synth-images-empty", ["synth", "-o", "{ws}/out", "--images", "{ws}/empty", "--count", "3"], 1, "empty"),
    ("synth-out-is-file", ["synth", "-o", "{ws}/afile", "--count", "3", "--size", "32x32"], 2, "afile"),
    ("synth-noise-negative", ["synth", "-o", "{ws}/out", "--noise", "-1", "--count", "3"], 2, "--noise"),
    # train: nothing written before every check passed
    ("train-lr-negative", [*TRAIN, "--lr", "-1", "--out", "{ws}/newrun"], 2, "--lr"),
    ("train-epochs-zero", [*TRAIN, "--epochs", "0", "--out", "{ws}/newrun"], 2, "--epochs"),
    ("train-model-config-key", [*TRAIN, "--model-config", "foo=1", "--out", "{ws}/newrun"], 2, "valid keys"),
    ("train-out-is-file", [*TRAIN, "--out", "{ws}/afile"], 2, "afile"),
    ("train-data-missing", [*TRAIN[:4], "{ws}/nope", *TRAIN[5:], "--out", "{ws}/newrun"], 1, "nope"),
    ("train-data-empty", [*TRAIN[:4], "{ws}/empty", *TRAIN[5:], "--out", "{ws}/newrun"], 1, "empty"),
    ("train-weights-text", [*TRAIN, "--weights", "{ws}/notes.txt", "--out", "{ws}/newrun"], 1, "notes.txt"),
    ("train-config-text", [*TRAIN, "--config", "{ws}/notes.txt", "--out", "{ws}/newrun"], 2, "notes.txt"),
    ("train-device", [*TRAIN, "--device", "tpu", "--out", "{ws}/newrun"], 2, "--device"),
    ("train-loss", [*TRAIN, "--loss", "l3", "--out", "{ws}/newrun"], 2, "--loss"),
    ("train-patch-mode", [*TRAIN, "--patch-mode", "tile", "--out", "{ws}/newrun"], 2, "--patch-mode"),
    ("train-existing-run", [*TRAIN, "--out", "{ws}/run"], 2, "--resume"),
    ("train-resume-other-model", ["train", "--out", "{ws}/run", "--resume", "--model", "fcn", "-q"], 2, "model"),
    ("train-resume-wrong-root", ["train", "--out", "{ws}/run", "--resume", "--data-root", "{ws}/nope", "-q"], 1, "nope"),
    ("train-resume-bad-config", ["train", "--out", "{ws}/runbad", "--resume", "-q"], 2, "config.json"),
    ("train-resume-no-run", ["train", "--out", "{ws}/newrun", "--resume", "-q"], 2, "newrun"),
    ("train-out-under-file", [*TRAIN, "--out", "{ws}/afile/run"], 2, "afile"),
    ("train-cache-is-file", [*TRAIN, "--cache", "{ws}/afile", "--out", "{ws}/newrun"], 2, "--cache"),
    ("train-val-crop-below-ssim", [*TRAIN, "--val-crop", "8", "--out", "{ws}/newrun"], 2, "--val-crop"),
    ("train-clip-negative", [*TRAIN, "--clip", "-1", "--out", "{ws}/newrun"], 2, "--clip -1"),
    ("train-model-config-heads", [*TRAIN, "--model-config", "heads=5", "--out", "{ws}/newrun"], 2, "multiple of heads"),
    ("train-grow-from-missing", [*TRAIN, "--grow-from", "{ws}/nope.safetensors", "--out", "{ws}/newrun"], 1, "--grow-from"),
    ("train-blur-with-dpdd", [*TRAIN, "--blur", "{ws}/in", "--out", "{ws}/newrun"], 2, "--blur"),
    ("train-config-folder", [*TRAIN, "--config", "{ws}/empty", "--out", "{ws}/newrun"], 2, "is a folder"),
    ("train-gpus-negative", [*TRAIN, "--gpus", "-1", "--out", "{ws}/newrun"], 2, "--gpus"),
    ("train-test-only-dataset", ["train", "--dataset", "hide", "--data-root", "{ws}/data", "--out", "{ws}/newrun", "-q"],
     2, "test-only"),
    # align
    ("align-missing", ["align", "--blur", "{ws}/nope", "--sharp", "{ws}/in", "-o", "{ws}/out"], 1, "nope"),
    ("align-empty", ["align", "--blur", "{ws}/empty", "--sharp", "{ws}/empty", "-o", "{ws}/out"], 1, "empty"),
    ("align-preset", ["align", "--blur", "{ws}/in", "--sharp", "{ws}/in", "-o", "{ws}/out", "--preset", "slow"], 2, "--preset"),
    ("align-out-is-file", ["align", "--blur", "{ws}/in", "--sharp", "{ws}/in", "-o", "{ws}/afile"], 2, "afile"),
    ("align-out-replaces-sharp", ["align", "--blur", "{ws}/ab/blur", "--sharp", "{ws}/ab/gt", "-o", "{ws}/ab"], 2, "gt/"),
    ("align-out-under-file", ["align", "--blur", "{ws}/ab/blur", "--sharp", "{ws}/ab/gt", "-o", "{ws}/afile/x"], 2, "afile"),
    # bench
    ("speed-size-zero", [*SPEED, "--size", "0x0"], 2, "--size"),
    ("speed-size-garbage", [*SPEED, "--size", "big"], 2, "--size"),
    ("speed-tile-negative", [*SPEED, "--tile", "-1"], 2, "--tile"),
    ("speed-overlap-ge-tile", [*SPEED, "--tile", "64", "--overlap", "64"], 2, "--overlap"),
    ("speed-runs-zero", [*SPEED, "--runs", "0"], 2, "--runs"),
    ("speed-model-config-key", [*SPEED, "--model-config", "foo=1"], 2, "valid keys"),
    ("speed-model-config-window", [*SPEED, "--model-config", "window=0"], 2, "window must be"),
    ("speed-unknown-model", ["bench", "speed", "-m", "nosuch"], 2, "nosuch"),
    ("speed-precision", [*SPEED, "--precision", "fp8"], 2, "--precision"),
    ("quality-root-missing", [*QUALITY[:5], "{ws}/nope", *QUALITY[6:]], 1, "nope"),
    ("quality-root-empty", [*QUALITY[:5], "{ws}/empty", *QUALITY[6:]], 1, "empty"),
    ("quality-dataset", ["bench", "quality", "--dataset", "imagenet", "--data-root", "{ws}/data"], 2, "imagenet"),
    ("quality-tile", [*QUALITY, "--tile", "-1"], 2, "--tile"),
    ("quality-ssim", [*QUALITY, "--ssim", "ms"], 2, "--ssim"),
    ("quality-limit", [*QUALITY, "--limit", "0"], 2, "--limit"),
    ("quality-identity-tta", [*QUALITY, "--tta"], 2, "--tta"),
    ("quality-weights-text", [*QUALITY[:-1], "dmtnet-t", "--weights", "{ws}/notes.txt"], 1, "notes.txt"),
    ("compare-missing", ["bench", "compare", "{ws}/nope.json", "{ws}/nope.json"], 1, "nope.json"),
    ("compare-text", ["bench", "compare", "{ws}/notes.txt", "{ws}/notes.txt"], 1, "notes.txt"),
    ("compare-folder", ["bench", "compare", "{ws}/empty", "{ws}/empty"], 1, "is a folder"),
    # models
    ("models-unknown", ["models", "nosuch"], 2, "nosuch"),
    ("models-unknown-json", ["models", "--json", "nosuch"], 2, "nosuch"),
]


def test_corpus_is_large_and_covers_every_command():
    assert len(CASES) >= 40
    assert len({c[0] for c in CASES}) == len(CASES)
    heads = {c[1][0] if c[1][0] != "bench" else f"bench {c[1][1]}" for c in CASES}
    assert heads >= {"deblur", "split-dp", "synth", "train", "align", "bench speed", "bench quality", "bench compare", "models"}


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(ws, case, tiny):
    _, argv, code, needle = case
    args = [a.replace("{ws}", str(ws)).replace("{tiny}", tiny.flag("dmtnet")) for a in argv]
    before = _snapshot(ws)
    r = CliRunner().invoke(app, args)
    text = r.stdout + r.stderr
    assert r.exception is None or isinstance(r.exception, SystemExit), f"uncaught {r.exception!r}"
    assert "Traceback" not in text, text
    assert r.exit_code == code, text
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    failed = [ln for ln in r.stderr.splitlines() if ln.startswith("failed ")]
    if code == 2 or not failed:
        assert len(errors) == 1, r.stderr  # one message, on one line
        msg = errors[0]
    else:
        msg = "\n".join(failed)  # a batch: one line per failed input
    assert needle.replace("{ws}", str(ws)) in msg, msg
    # data safety: nothing changed, nothing new (no temp or partial files, no run folder)
    after = _snapshot(ws)
    assert after == before, sorted(set(after.items()) ^ set(before.items()))
