"""`dpdeblur bench`: outputs never overwrite inputs, bad options fail before any work, failures are
one line (no traceback), JSON is strict and tables are never cut off."""

import hashlib
import json
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from dpdeblur.cli import app
from dpdeblur.io.images import write_image
from dpdeblur.models.weights import save_weights


def cli(*args):
    return CliRunner().invoke(app, ["bench", *[str(a) for a in args]], catch_exceptions=False)


def one_line_error(r, code):
    assert r.exit_code == code, r.output
    assert "Traceback" not in r.output
    lines = [ln for ln in r.output.strip().splitlines() if ln.strip() and not ln.lstrip().startswith(("{", "}", '"'))]
    assert len(lines) == 1 and lines[0].startswith("error:"), r.output
    return lines[0]


def snapshot(root):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def make_dpdd(root, size=24, n=3, identical=False):
    rng = np.random.default_rng(0)
    for i in range(n):
        s = 0.1 + 0.8 * rng.random((size, size, 3))
        b = s if identical else np.clip(s + 0.05 * rng.standard_normal(s.shape), 0, 1)
        write_image(root / "test_c/target" / f"s{i}.png", s, 16)
        write_image(root / "test_c/source" / f"s{i}.png", b, 16)
        write_image(root / "test_l/source" / f"s{i}_L.png", b, 16)
        write_image(root / "test_r/source" / f"s{i}_R.png", b, 16)
    return root


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return make_dpdd(tmp_path_factory.mktemp("ds") / "ds")


@pytest.fixture(scope="module")
def weights(tmp_path_factory, tiny):
    p = tmp_path_factory.mktemp("w") / "w.safetensors"
    save_weights(tiny.model("dmtnet-t"), p)
    return p


@pytest.fixture
def no_measuring(monkeypatch):
    """Any calibration or timing fails the test: the command must stop before it."""
    import dpdeblur.bench.speed as speed

    def boom(*a, **k):
        raise AssertionError("measured before the options were checked")

    monkeypatch.setattr(speed, "device_peak", boom)
    monkeypatch.setattr(speed, "time_fn", boom)


def q(ds, *args):
    return cli("quality", "--dataset", "dpdd", "--data-root", ds, "--device", "cpu", *args)


def speed_args(tiny, *args):
    return ("speed", "-m", "dmtnet-t", "--model-config", tiny.flag("dmtnet"), "--runs", 1, "--warmup", 0, *args)


# ----------------------------------------------------------------------------- 1. outputs never overwrite inputs


def test_quality_outputs_on_data_set_files_refused(ds, tmp_path):
    before = snapshot(ds)
    for opt in ("--report", "--csv", "--markdown"):
        msg = one_line_error(q(ds, opt, ds / "test_c/source/s0.png"), 2)
        assert opt in msg and "s0.png" in msg
    # a new file in a folder of the set would join it (the next run: "unpaired files")
    msg = one_line_error(q(ds, "--markdown", ds / "test_c/target/new.png"), 2)
    assert "--markdown" in msg and "test_c/target" in msg
    msg = one_line_error(q(ds, "--save-images", 1, ds / "test_c/source"), 2)
    assert "--save-images" in msg
    msg = one_line_error(q(ds, "--save-images", 1, ds / "crops"), 2)
    assert "--save-images" in msg and str(ds) in msg
    assert snapshot(ds) == before
    # elsewhere is fine, and the data set still scores
    r = q(ds, "--report", tmp_path / "r.json", "--save-images", 1, tmp_path / "crops", "--crop", 8)
    assert r.exit_code == 0, r.output
    assert snapshot(ds) == before and len(list((tmp_path / "crops").iterdir())) == 2


def test_quality_outputs_on_weights_refused(ds, weights, tiny, tmp_path):
    w0 = weights.read_bytes()
    msg = one_line_error(q(ds, "--model", "dmtnet-t", "--model-config", tiny.flag("dmtnet"), "--weights", weights,
                           "--csv", weights), 2)
    assert "--csv" in msg and "--weights" in msg
    # the LPIPS weights (a real weights file, so their own checks pass)
    msg = one_line_error(q(ds, "--lpips-weights", weights, "--report", weights), 2)
    assert "--report" in msg and "--lpips-weights" in msg
    assert weights.read_bytes() == w0


def test_folder_layout_crops_inside_input_folder_refused(ds, tmp_path):
    before = snapshot(ds)
    r = cli("quality", "--dataset", "folder", "--blur", ds / "test_c/source", "--sharp", ds / "test_c/target",
            "--save-images", 1, ds / "test_c/source/crops")
    assert "--save-images" in one_line_error(r, 2)
    assert snapshot(ds) == before


def test_output_paths_checked_before_work(ds, tmp_path):
    (tmp_path / "adir").mkdir()
    assert "--report" in one_line_error(q(ds, "--report", tmp_path / "adir"), 2)
    msg = one_line_error(q(ds, "--report", tmp_path / "x.json", "--csv", tmp_path / "x.json"), 2)
    assert "--csv" in msg and "--report" in msg
    (tmp_path / "afile").write_text("x")
    assert "--save-images" in one_line_error(q(ds, "--save-images", 1, tmp_path / "afile"), 2)
    assert not (tmp_path / "x.json").exists()


def test_speed_outputs_checked_before_measuring(tiny, tmp_path, no_measuring, monkeypatch):
    (tmp_path / "adir").mkdir()
    assert "--report" in one_line_error(cli(*speed_args(tiny, "--size", "32x32", "--report", tmp_path / "adir")), 2)
    msg = one_line_error(cli(*speed_args(tiny, "--report", tmp_path / "a.json", "--markdown", tmp_path / "a.json")), 2)
    assert "--markdown" in msg
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # not installed
    msg = one_line_error(cli(*speed_args(tiny, "--size", "32x32", "--plot", tmp_path / "p.png")), 2)
    assert "--plot" in msg and "matplotlib" in msg


def test_speed_outputs_on_weights_refused(tiny, tmp_path):
    from dpdeblur.bench.speed import SpeedConfig, check_speed_outputs
    from dpdeblur.errors import UsageError

    w = tmp_path / "w.safetensors"
    save_weights(tiny.model("dmtnet-t"), w)
    cfg = SpeedConfig(models=["dmtnet-t"], weights={"dmtnet-t": str(w)})
    for name in ("report", "plot", "markdown"):
        with pytest.raises(UsageError, match=f"^{name} .*w.safetensors"):
            check_speed_outputs(cfg, {name: w})


# ----------------------------------------------------------------------------- 2. images too small for SSIM


def test_images_under_ssim_window_fail_in_one_line(tmp_path):
    small = make_dpdd(tmp_path / "ds8", size=8, n=2)
    msg = one_line_error(q(small, "--report", tmp_path / "r.json"), 1)
    assert "ds8" in msg and "s0.png" in msg and "11x11" in msg and "8x8" in msg and "--ssim" in msg
    assert not (tmp_path / "r.json").exists()
    # 7x7 fits the skimage-default window
    r = q(small, "--ssim", "skimage-default", "--json")
    assert r.exit_code == 0, r.output
    tiny = make_dpdd(tmp_path / "ds5", size=5, n=1)
    msg = one_line_error(q(tiny, "--ssim", "skimage-default"), 1)
    assert "7x7" in msg and "s0.png" in msg


def test_images_under_lpips_size_fail_in_one_line(tmp_path, weights):
    from dpdeblur.bench.quality import LPIPS_MIN_SIZE, _check_size
    from dpdeblur.data.sets import Sample
    from dpdeblur.errors import DataError

    s = Sample("a", tmp_path / "a.png")
    with pytest.raises(DataError, match=f"a.png: 24x24 is smaller than {LPIPS_MIN_SIZE}x{LPIPS_MIN_SIZE}.*lpips_weights"):
        _check_size(s, np.zeros((24, 24, 3)), "wang", lpips=True)
    _check_size(s, np.zeros((24, 24, 3)), "wang", lpips=False)


# ----------------------------------------------------------------------------- 3. --crop


@pytest.mark.parametrize("crop", [0, -5])
def test_bad_crop_is_a_usage_error(ds, tmp_path, crop):
    msg = one_line_error(q(ds, "--save-images", 1, tmp_path / "crops", "--crop", crop), 2)
    assert f"--crop {crop}" in msg
    assert not (tmp_path / "crops").exists()


def test_crop_larger_than_image_keeps_whole_image(ds, tmp_path):
    from dpdeblur.io.images import read_image

    r = q(ds, "--save-images", 1, tmp_path / "crops", "--crop", 10_000)
    assert r.exit_code == 0, r.output
    f = next((tmp_path / "crops").iterdir())
    assert read_image(f).rgb.shape == (24, 3 * 24 + 8, 3)


# ----------------------------------------------------------------------------- 4. out of memory


def test_speed_size_beyond_memory_fails_before_measuring(tiny, no_measuring):
    msg = one_line_error(cli(*speed_args(tiny, "--size", "100000x100000")), 1)
    assert "--size 100000x100000" in msg and "memory" in msg and "smaller" in msg


def test_speed_out_of_memory_mid_run_is_one_line(tiny, monkeypatch):
    import dpdeblur.bench.speed as speed

    monkeypatch.setattr(speed, "device_peak", lambda dev, dtype: {"conv3x3_gflops": 1.0, "matmul_gflops": 1.0})

    def oom(*a, **k):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough memory: "
                           "you tried to allocate 1234 bytes.")

    monkeypatch.setattr(speed, "time_fn", oom)
    msg = one_line_error(cli(*speed_args(tiny, "--size", "64x32", "--tile", "32", "--overlap", "8")), 1)
    assert "out of memory" in msg and "--size 64x32" in msg and "--tile" in msg

    def other(*a, **k):  # not a memory error: not disguised as one
        raise RuntimeError("something else")

    monkeypatch.setattr(speed, "time_fn", other)
    with pytest.raises(RuntimeError, match="something else"):
        cli(*speed_args(tiny, "--size", "64x32"))


# ----------------------------------------------------------------------------- 5. report structure


@pytest.mark.parametrize("doc", [
    {"kind": "quality", "rows": [1, 2]},
    {"kind": "quality", "rows": [{"model": "a", "dataset": "d", "subset": "combined", "psnr": "high"}]},
    {"kind": "speed", "meta": [], "rows": []},
    [1, 2],
])
def test_compare_malformed_report_one_line(tmp_path, doc):
    good = {"kind": doc["kind"] if isinstance(doc, dict) else "quality", "meta": {}, "rows": []}
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    (tmp_path / "good.json").write_text(json.dumps(good))
    for args in (("bad.json", "good.json"), ("good.json", "bad.json")):
        msg = one_line_error(cli("compare", *(tmp_path / a for a in args)), 1)
        assert "bad.json" in msg and "not a dpdeblur bench report" in msg


# ----------------------------------------------------------------------------- 6. strict JSON


def strict(text):
    def refuse(name):
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def test_infinite_psnr_is_null_in_strict_json(tmp_path):
    same = make_dpdd(tmp_path / "same", n=1, identical=True)
    r = q(same, "--json", "--report", tmp_path / "r.json")
    assert r.exit_code == 0, r.output
    out, saved = strict(r.stdout), strict((tmp_path / "r.json").read_text())
    assert out["rows"][0]["psnr"] is None and saved["per_image"][0]["psnr"] is None
    assert saved["rows"][0]["ssim"] == pytest.approx(1.0)
    # readers take null (and old reports' Infinity): compare prints strict JSON, never NaN
    old = dict(saved, rows=[dict(saved["rows"][0], psnr=float("inf"))])
    (tmp_path / "old.json").write_text(json.dumps(old))
    r = cli("compare", tmp_path / "old.json", tmp_path / "old.json", "--json")
    assert r.exit_code == 0, r.output
    row = strict(r.stdout)["rows"][0]
    assert row["psnr"]["delta"] == 0 and row["psnr"]["better"] is None and row["psnr"]["a"] is None
    finite = dict(saved, rows=[dict(saved["rows"][0], psnr=30.0)])
    (tmp_path / "finite.json").write_text(json.dumps(finite))
    r = cli("compare", tmp_path / "old.json", tmp_path / "finite.json", "--json")
    assert r.exit_code == 0, r.output
    row = strict(r.stdout)["rows"][0]
    assert row["psnr"]["delta"] is None and row["psnr"]["pct"] is None and row["psnr"]["better"] is False
    r = cli("compare", tmp_path / "r.json", tmp_path / "old.json")
    assert r.exit_code == 0, r.output


def test_save_report_is_strict(tmp_path):
    from dpdeblur.bench.report import load_report, save_report

    save_report(tmp_path / "a.json", {"kind": "speed", "meta": {"x": float("nan")}, "rows": [{"latency_ms": float("-inf")}]})
    doc = strict((tmp_path / "a.json").read_text())
    assert doc["meta"]["x"] is None and doc["rows"][0]["latency_ms"] is None
    assert load_report(tmp_path / "a.json")["rows"][0]["latency_ms"] is None


# ----------------------------------------------------------------------------- 7, 8. --size


def test_speed_size_is_width_by_height(tiny, monkeypatch):
    import dpdeblur.bench.speed as speed
    import dpdeblur.inference.tiling as tiling

    monkeypatch.setattr(speed, "device_peak", lambda dev, dtype: {"conv3x3_gflops": 1.0, "matmul_gflops": 1.0})
    seen, real = [], tiling.tiled_forward

    def spy(model, x, *a, **k):
        seen.append(tuple(x.shape[-2:]))
        return real(model, x, *a, **k)

    monkeypatch.setattr(tiling, "tiled_forward", spy)
    r = cli(*speed_args(tiny, "--size", "65x33", "--json"))
    assert r.exit_code == 0, r.output
    (row,) = strict(r.stdout)["rows"]
    assert row["size"] == "65x33" and set(seen) == {(33, 65)}  # 65 wide, 33 high


@pytest.mark.parametrize("size", ["", ",", " , "])
def test_speed_empty_size_is_a_usage_error(tiny, no_measuring, size):
    assert "--size" in one_line_error(cli(*speed_args(tiny, "--size", size)), 2)


def test_speed_empty_lists_are_usage_errors(tiny, no_measuring):
    assert "--tile" in one_line_error(cli(*speed_args(tiny, "--tile", "")), 2)
    assert "--device" in one_line_error(cli(*speed_args(tiny, "--device", ",")), 2)


# ----------------------------------------------------------------------------- 10. ignored options


def test_identity_with_weights_is_a_usage_error(ds, weights, tmp_path):
    msg = one_line_error(q(ds, "--model", "identity", "--weights", weights, "--report", tmp_path / "r.json"), 2)
    assert "--weights" in msg and "--model identity" in msg
    msg = one_line_error(q(ds, "--model", "identity", "--model-config", "dim=8"), 2)
    assert "--model-config" in msg
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("ids", ["", ",", " , "])
def test_empty_ids_is_a_usage_error(ds, ids):
    assert "--ids" in one_line_error(q(ds, "--ids", ids), 2)


def test_empty_ids_in_the_library():
    from dpdeblur.bench.quality import QualityConfig, check_quality_config
    from dpdeblur.errors import UsageError

    with pytest.raises(UsageError, match="^ids names no image"):
        check_quality_config(QualityConfig("dpdd", "x", ids=[]))


# ----------------------------------------------------------------------------- 11. --lpips-weights


def test_lpips_weights_errors_name_the_option(ds, tmp_path, weights):
    msg = one_line_error(q(ds, "--lpips-weights", tmp_path / "nope.pth"), 1)
    assert "nope.pth" in msg and "--lpips-weights" in msg and "--weights" not in msg.replace("--lpips-weights", "")
    (tmp_path / "junk.pth").write_text("not weights")
    msg = one_line_error(q(ds, "--lpips-weights", tmp_path / "junk.pth"), 1)
    assert "junk.pth" in msg and "--lpips-weights" in msg and "dpdeblur train" not in msg and "LPIPS" in msg
    msg = one_line_error(q(ds, "--lpips-weights", weights), 1)  # a weights file, not LPIPS
    assert "--lpips-weights" in msg and "not LPIPS-alex weights" in msg


# ----------------------------------------------------------------------------- 12. tables on a pipe


def test_tables_on_a_pipe_are_not_cut_off(tmp_path):
    from dpdeblur.bench.report import save_report

    def row(model, lat):
        return {"model": model, "device": "cuda:0 (NVIDIA H200 with a long name)", "precision": "bf16",
                "size": "1680x1120", "tile": 512, "latency_ms": lat, "mpix_per_s": 1000 / lat, "gflops": 1.5 * lat,
                "pct_of_conv_peak": 0.5 * lat, "pct_of_matmul_peak": 0.25 * lat, "peak_mem_mb": 3 * lat,
                "tile_overhead_pct": lat / 7}

    names = ["dmtnet-t-with-a-rather-long-variant-name", "unet-another-long-model-name"]
    save_report(tmp_path / "a.json", {"kind": "speed", "meta": {}, "rows": [row(n, 123.456) for n in names]})
    save_report(tmp_path / "b.json", {"kind": "speed", "meta": {}, "rows": [row(n, 111.111) for n in names]})
    r = cli("compare", tmp_path / "a.json", tmp_path / "b.json")
    assert r.exit_code == 0, r.output
    assert "…" not in r.stdout
    lines = r.stdout.splitlines()
    for n in names:  # each row whole on one line
        (line,) = [ln for ln in lines if n in ln]
        assert "NVIDIA H200 with a long name" in line and "123.46 -> " in line and "(-10.0%)" in line
