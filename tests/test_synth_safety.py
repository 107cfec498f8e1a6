"""dpdeblur synth never loses or half-writes data: failed runs leave OUT as it was, --overwrite
replaces only synth's own data set and only once the new one is written, and bad options or a
bad PSF bank are refused up front with one line naming the file or the option."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from dpdeblur.data.synth import make_dataset, parse_split
from dpdeblur.errors import UsageError

TINY = ["--size", "32x32"]


def run(*args):
    from typer.testing import CliRunner

    from dpdeblur.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def one_error(r) -> str:
    """The run's single ``error:`` line (and no traceback)."""
    text = r.stderr + r.stdout
    assert "Traceback" not in text, text
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, r.stderr
    return lines[0]


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def hidden(root: Path) -> list[str]:
    return [p.name for p in root.iterdir() if p.name.startswith(".")]


def make_set(out: Path, *extra) -> dict[str, bytes]:
    r = run("synth", "-o", out, "--count", "2", *TINY, *extra)
    assert r.exit_code == 0, r.output
    return snapshot(out)


def save_bank(folder: Path, left, right=None, meta=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "blur_kernels_left.npy", left)
    np.save(folder / "blur_kernels_right.npy", left if right is None else right)
    if meta is not None:
        (folder / "psf_bank.json").write_text(meta if isinstance(meta, str) else json.dumps(meta))
    return folder


def good_kernels(n=6, k=7):
    ys, xs = np.mgrid[0:k, 0:k] - k // 2
    disc = (xs**2 + ys**2 <= (k // 2) ** 2).astype(np.float32)
    return np.stack([disc * (xs <= 0)] * n) + 1e-3, np.stack([disc * (xs >= 0)] * n) + 1e-3


def image_folder(root: Path, good: int = 1, bad: int = 0) -> Path:
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(good):
        cv2.imwrite(str(root / f"good{i}.png"), rng.integers(0, 256, (40, 40, 3)).astype(np.uint8))
    for i in range(bad):
        (root / f"bad{i}.png").write_text("not an image")
    return root


# ----------------------------------------------------------------------------- 1. no synth.json for nothing


def test_run_that_writes_nothing_leaves_no_manifest_nor_folder(tmp_path):
    imgs = image_folder(tmp_path / "img", good=0, bad=1)
    out = tmp_path / "new" / "syn"
    r = run("synth", "-o", out, "--images", imgs, "--count", "2", *TINY)
    assert r.exit_code == 1
    line = one_error(r)
    assert "nothing written" in line and "bad0.png" in line
    assert "skipped" not in r.stderr
    assert not (tmp_path / "new").exists()  # neither OUT nor the parent it made
    # an existing empty OUT stays (empty), and a later good run needs no --overwrite
    out.mkdir(parents=True)
    r = run("synth", "-o", out, "--images", imgs, "--count", "2", *TINY, "--json")
    assert r.exit_code == 1 and json.loads(r.stdout)["exit_code"] == 1
    assert out.is_dir() and list(out.iterdir()) == []
    r = run("synth", "-o", out, "--count", "1", *TINY)
    assert r.exit_code == 0, r.output
    assert (out / "synth.json").is_file()


def test_partly_failed_run_counts_only_what_it_wrote(tmp_path):
    imgs = image_folder(tmp_path / "img", good=1, bad=1)
    out = tmp_path / "o"
    r = run("synth", "-o", out, "--images", imgs, "--split", "train=2", *TINY)
    assert r.exit_code == 1
    j = json.loads((out / "synth.json").read_text())
    written = sorted(p.stem for p in out.glob("train_c/source/*.png"))
    assert j["ok"] == 1 == len(j["items"]) == len(written) and len(j["failed"]) == 1
    assert written == [j["items"][0]["id"]]
    for folder in ("train_c/target", "train_l/source", "train_r/source"):
        assert len(list((out / folder).iterdir())) == 1  # the failed set left no file behind
    # 6. the summary says what synth did: written and failed, never "skipped"
    text = " ".join(r.stderr.split())
    assert "1 written, 1 failed in" in text and "skipped" not in text
    assert hidden(out) == []


# ----------------------------------------------------------------------------- 2. --overwrite keeps the old set on failure


def test_failed_overwrite_keeps_the_previous_set(tmp_path):
    out = tmp_path / "syn"
    before = make_set(out)
    bank = save_bank(tmp_path / "bank", np.ones((48, 1, 1), np.float32))
    r = run("synth", "-o", out, "--count", "2", *TINY, "--psf-bank", bank, "--overwrite")
    assert r.exit_code == 1 and "blur_kernels_left.npy" in one_error(r)
    assert snapshot(out) == before
    # items that all fail while rendering: nothing replaces the previous set either
    imgs = image_folder(tmp_path / "img", good=0, bad=1)
    r = run("synth", "-o", out, "--images", imgs, "--count", "2", *TINY, "--overwrite")
    assert r.exit_code == 1 and "nothing written" in one_error(r)
    assert snapshot(out) == before and hidden(out) == []
    # a usage error found before any work: nothing touched
    r = run("synth", "-o", out, "--split", "train=1,train=2", *TINY, "--overwrite")
    assert r.exit_code == 2 and snapshot(out) == before


def test_overwrite_replaces_the_whole_previous_set(tmp_path):
    out = tmp_path / "syn"
    make_set(out, "--split", "train=1,val=1,test=1")
    (out / "notes.txt").write_text("mine")  # not synth's: kept
    r = run("synth", "-o", out, "--split", "train=1", *TINY, "--overwrite", "--seed", "3")
    assert r.exit_code == 0, r.output
    j = json.loads((out / "synth.json").read_text())
    assert j["seed"] == 3 and j["ok"] == 1
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "synth.json", "train_c", "train_l", "train_r"]
    assert [p.name for p in (out / "train_c/source").iterdir()] == ["train00000.png"]


def test_library_overwrite_checks_before_touching_anything(tmp_path):
    out = tmp_path / "syn"
    make_dataset(out, size=(32, 32), split={"train": 1, "val": 0, "test": 0})
    before = snapshot(out)
    with pytest.raises(UsageError, match="overwrite"):
        make_dataset(out, size=(32, 32), split={"train": 1, "val": 0, "test": 0})
    with pytest.raises(UsageError, match="split"):
        make_dataset(out, size=(32, 32), split={"train": -1, "val": 0, "test": 0}, overwrite=True)
    assert snapshot(out) == before


# ----------------------------------------------------------------------------- 3. never replace data synth did not make


@pytest.mark.parametrize("overwrite", [True, False])
def test_a_real_dpdd_folder_is_never_replaced(tmp_path, overwrite):
    real = tmp_path / "dpdd"
    for rel in ("train_c/source/a.png", "train_c/target/a.png", "test_l/source/a_L.png"):
        (real / rel).parent.mkdir(parents=True, exist_ok=True)
        (real / rel).write_bytes(b"real data " + rel.encode())
    before = snapshot(real)
    r = run("synth", "-o", real, "--count", "1", *TINY, *(["--overwrite"] if overwrite else []))
    assert r.exit_code == 2
    line = one_error(r)
    assert "--out" in line and str(real) in line and "not a data set made by synth" in line
    assert "choose an empty or new folder" in line
    assert snapshot(real) == before and hidden(real) == []


def test_a_foreign_synth_json_is_not_synths(tmp_path):
    out = tmp_path / "o"
    (out / "train_c").mkdir(parents=True)
    (out / "synth.json").write_text('{"tool": "someone else"}')
    before = snapshot(out)
    r = run("synth", "-o", out, "--count", "1", *TINY, "--overwrite")
    assert r.exit_code == 2 and "not a data set made by synth" in one_error(r)
    assert snapshot(out) == before and (out / "train_c").is_dir()


# ----------------------------------------------------------------------------- 4. PSF bank checked up front


def _bad_banks():
    L, R = good_kernels()
    return {
        "string-dtype": (dict(left=np.array([["a", "b"], ["c", "d"]] * 3).reshape(3, 2, 2)), 1, "blur_kernels_left.npy", "dtype"),
        "grid-not-a-pair": (dict(left=L, right=R, meta={"grid": "x"}), 1, "psf_bank.json", "grid"),
        "no-kernels": (dict(left=np.zeros((0, 11, 11), np.float32)), 1, "blur_kernels_left.npy", "empty"),
        "one-pixel": (dict(left=np.ones((48, 1, 1), np.float32)), 1, "blur_kernels_left.npy", "at least 3x3"),
        "four-dims": (dict(left=np.ones((6, 8, 1, 1), np.float32)), 1, "blur_kernels_left.npy", "(N, k, k)"),
        "even-size": (dict(left=np.ones((6, 4, 4), np.float32)), 1, "blur_kernels_left.npy", "odd"),
        "nan": (dict(left=np.where(L > 0.5, np.nan, L), right=R), 1, "blur_kernels_left.npy", "NaN"),
        "negative": (dict(left=L, right=-R), 1, "blur_kernels_right.npy", "negative"),
        "no-blur": (dict(left=np.pad(np.ones((6, 1, 1), np.float32), ((0, 0), (2, 2), (2, 2)))), 1, "bank", "no blur"),
        "bad-json": (dict(left=L, right=R, meta="{bad"), 1, "psf_bank.json", "JSON"),
        "json-list": (dict(left=L, right=R, meta="[1, 2]"), 1, "psf_bank.json", "object"),
        "negative-cell": (dict(left=L, right=R, meta={"grid": [2, 3], "cell": -1}), 1, "psf_bank.json", "cell"),
        "zero-ref-radius": (dict(left=L, right=R, meta={"ref_radius": 0}), 1, "psf_bank.json", "ref_radius"),
        "grid-mismatch": (dict(left=L, right=R, meta={"grid": [5, 5]}), 1, "psf_bank.json", "25 kernels"),
    }


@pytest.mark.parametrize("case", sorted(_bad_banks()))
def test_bad_psf_banks_are_refused_up_front(tmp_path, case):
    spec, code, names, says = _bad_banks()[case]
    bank = save_bank(tmp_path / "bank", **spec)
    out = tmp_path / "out"
    r = run("synth", "-o", out, "--count", "1", *TINY, "--psf-bank", bank)
    assert r.exit_code == code, r.output
    line = one_error(r)
    assert names in line and says in line, line
    assert not out.exists()


def test_psf_bank_given_as_a_file(tmp_path):
    L, R = good_kernels()
    bank = save_bank(tmp_path / "bank", L, R)
    np.save(bank / "mine.npy", L)
    r = run("synth", "-o", tmp_path / "out", "--count", "1", *TINY, "--psf-bank", bank / "mine.npy")
    assert r.exit_code == 2
    line = one_error(r)
    assert "mine.npy" in line and "--psf-bank takes the folder holding blur_kernels_left.npy" in line
    assert not (tmp_path / "out").exists()
    # a good bank renders (and one of its own files stands for its folder)
    r = run("synth", "-o", tmp_path / "ok", "--count", "1", *TINY, "--psf-bank", bank / "blur_kernels_left.npy", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["items"][0]["psf"] == "bank"


def test_a_rewritten_bank_is_read_again(tmp_path):
    from dpdeblur.data.synth import SynthParams

    L, R = good_kernels()
    bank = save_bank(tmp_path / "bank", L, R)
    SynthParams(psf_bank=str(bank)).check()
    np.save(bank / "blur_kernels_left.npy", np.ones((6, 1, 1), np.float32))
    with pytest.raises(Exception, match="3x3"):
        SynthParams(psf_bank=str(bank)).check()


# ----------------------------------------------------------------------------- 5. output folder that cannot be made


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_output_folder_that_cannot_be_created(tmp_path):
    r = run("synth", "-o", "/proc/x", "--count", "1", *TINY)
    assert r.exit_code == 2
    line = one_error(r)
    assert "--out" in line and "/proc/x" in line


def test_library_output_under_a_file_is_a_usage_error(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(UsageError, match="afile"):
        make_dataset(tmp_path / "afile" / "sub", size=(32, 32), split={"train": 1, "val": 0, "test": 0})
    assert (tmp_path / "afile").read_text() == "x"


# ----------------------------------------------------------------------------- 7. a split named twice


def test_split_named_twice_is_a_usage_error(tmp_path):
    r = run("synth", "-o", tmp_path / "unused", "--split", "train=1,train=2", *TINY)
    assert r.exit_code == 2
    line = one_error(r)
    assert "--split" in line and "twice" in line
    assert not (tmp_path / "unused").exists()
    with pytest.raises(UsageError, match="twice"):
        parse_split("val=1,test=1,val=1", 0)
    assert parse_split("train=1, val=2", 0) == {"train": 1, "val": 2, "test": 0}


# ----------------------------------------------------------------------------- 8. a depth map with no valid value


def test_all_nan_depth_map_is_named(tmp_path):
    imgs = image_folder(tmp_path / "img", good=1)
    dep = tmp_path / "dep"
    dep.mkdir()
    np.save(dep / "good0.npy", np.full((40, 40), np.nan, np.float32))
    out = tmp_path / "out"
    r = run("synth", "-o", out, "--images", imgs, "--depth", dep, "--count", "1", *TINY)
    assert r.exit_code == 1
    line = one_error(r)
    assert "good0.npy" in line and "no valid value" in line
    assert not out.exists()
    np.save(dep / "good0.npy", np.zeros((0, 40), np.float32))  # empty: named too, no ZeroDivisionError
    r = run("synth", "-o", out, "--images", imgs, "--depth", dep, "--count", "1", *TINY)
    assert r.exit_code == 1 and "good0.npy" in one_error(r) and "ZeroDivision" not in r.stderr


def test_small_user_images_are_named_once_when_enlarged(tmp_path):
    """An image that must be enlarged to cover --size gives a soft 'sharp' target: said once per image."""
    import warnings

    from dpdeblur.io.images import write_image

    rng = np.random.default_rng(0)
    write_image(tmp_path / "img/tiny.png", rng.random((12, 16, 3)).astype(np.float32), 8)
    write_image(tmp_path / "img/big.png", rng.random((60, 80, 3)).astype(np.float32), 8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make_dataset(tmp_path / "o", images=tmp_path / "img", size=(64, 48), split={"train": 3, "val": 0, "test": 0})
    msgs = [str(w.message) for w in caught if "enlarged" in str(w.message)]
    assert len(msgs) == 1 and "tiny.png: 16x12 is smaller than the size 64x48; enlarged 4.0x" in msgs[0]
    assert (tmp_path / "o/train_c/target").is_dir()
    with warnings.catch_warnings(record=True) as again:  # a new run says it again
        warnings.simplefilter("always")
        make_dataset(tmp_path / "o2", images=tmp_path / "img", size=(64, 48), split={"train": 2, "val": 0, "test": 0})
    assert [w for w in again if "tiny.png" in str(w.message)]


def test_folders_left_by_a_killed_run_are_named(tmp_path):
    import warnings

    (tmp_path / "o/.synth-new-abc123").mkdir(parents=True)  # as a SIGKILLed run leaves them
    (tmp_path / "o/.synth-old-def456").mkdir()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make_dataset(tmp_path / "o", size=(64, 48), split={"train": 1, "val": 0, "test": 0})
    msgs = [str(w.message) for w in caught if "interrupted" in str(w.message)]
    assert len(msgs) == 1 and ".synth-new-abc123, .synth-old-def456 left by an interrupted synth run" in msgs[0]
    assert (tmp_path / "o/.synth-new-abc123").is_dir() and (tmp_path / "o/train_c/target").is_dir()  # kept; the set written
