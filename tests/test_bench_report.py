"""Bench reports: compare joins on keys and judges direction per metric."""

import json

import pytest

from dpdeblur.bench.report import compare_reports, load_report, markdown_table, save_report
from dpdeblur.errors import InputError


def speed(lat, mem, model="dmtnet-t"):
    return {"model": model, "device": "cpu", "precision": "fp32", "size": "512x512", "tile": 0,
            "latency_ms": lat, "mpix_per_s": 0.262144 / (lat / 1000), "peak_mem_mb": mem}


def test_compare_deltas_and_direction(tmp_path):
    a = {"kind": "speed", "meta": {}, "rows": [speed(100.0, 500.0), speed(50.0, 10.0, "dmtnet-s")]}
    b = {"kind": "speed", "meta": {}, "rows": [speed(80.0, 600.0), speed(50.0, 10.0, "unet")]}
    save_report(tmp_path / "a.json", a)
    save_report(tmp_path / "b.json", b)
    cmp = compare_reports(load_report(tmp_path / "a.json"), load_report(tmp_path / "b.json"))
    (row,) = cmp["rows"]
    assert row["model"] == "dmtnet-t"
    assert row["latency_ms"]["delta"] == pytest.approx(-20.0)
    assert row["latency_ms"]["pct"] == pytest.approx(-20.0)
    assert row["latency_ms"]["better"] is True  # lower latency is better
    assert row["mpix_per_s"]["better"] is True
    assert row["peak_mem_mb"]["better"] is False  # more memory is worse
    assert cmp["only_a"] == [{"model": "dmtnet-s", "device": "cpu", "precision": "fp32", "size": "512x512", "tile": "0"}]
    assert cmp["only_b"][0]["model"] == "unet"


def test_compare_refuses_mixed_kinds_and_bad_files(tmp_path):
    with pytest.raises(InputError, match="cannot compare"):
        compare_reports({"kind": "speed", "rows": []}, {"kind": "quality", "rows": []})
    p = tmp_path / "x.json"
    p.write_text("{not json")
    with pytest.raises(InputError, match="not a JSON bench report"):
        load_report(p)
    p.write_text(json.dumps({"rows": []}))
    with pytest.raises(InputError, match="not a dpdeblur bench report"):
        load_report(p)


def test_markdown_table():
    md = markdown_table([{"model": "a", "psnr": 25.123456}], ["model", "psnr"])
    assert md.splitlines() == ["| model | psnr |", "|---|---|", "| a | 25.12 |"]


def test_parse_model_config():
    from dpdeblur.models import parse_model_config
    from dpdeblur.errors import UsageError

    got = parse_model_config(["dim=12,blocks=1", "scales=(1, 2),image_residual=false,name=abc"])
    assert got == {"dim": 12, "blocks": 1, "scales": (1, 2), "image_residual": False, "name": "abc"}
    with pytest.raises(UsageError, match="KEY=VALUE"):
        parse_model_config(["dim"])


def test_bench_speed_rows_and_tiling_overhead(tiny):
    """Speed rows for whole and tiled runs of a tiny model: MACs, throughput, overlap area."""
    from dpdeblur.bench.speed import SpeedConfig, bench_speed

    rep = bench_speed(SpeedConfig(models=["dmtnet-t"], precisions=["fp32"], tiles=[0, 32], sizes=[(64, 96)],
                                  overlap=8, runs=1, warmup=0, overrides={"dmtnet-t": tiny.config("dmtnet")}))
    whole, tiled = rep["rows"]
    assert (whole["tile"], tiled["tile"]) == (0, 32)
    assert whole["size"] == "64x96" and whole["precision"] == "fp32"
    assert whole["mpix_per_s"] == pytest.approx(64 * 96 / 1e6 / (whole["latency_ms"] / 1000))
    assert whole["gflops"] == pytest.approx(2 * whole["gmacs"] / (whole["latency_ms"] / 1000))
    peak = next(iter(rep["meta"]["peaks"].values()))
    assert peak["matmul_size"] == 2048 and peak["conv3x3_gflops"] > 0 and peak["matmul_gflops"] > 0
    assert whole["pct_of_conv_peak"] == pytest.approx(100 * whole["gflops"] / peak["conv3x3_gflops"])
    assert whole["pct_of_matmul_peak"] == pytest.approx(100 * whole["gflops"] / peak["matmul_gflops"])
    assert tiled["overlap_extra_area_pct"] > 0 and "tile_overhead_pct" in tiled
