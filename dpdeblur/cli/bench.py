"""``dpdeblur bench``: quality and speed reports, and comparison of two reports."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from dpdeblur.cli.app import app, err_console, guarded, out_console, print_json

bench_app = typer.Typer(help="Quality (PSNR/SSIM/MAE) and speed (latency, throughput, memory) reports.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


def _split(values: List[str] | None) -> list[str]:
    out: list[str] = []
    for v in values or []:
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return out


def _sizes(values: List[str]) -> list[tuple[int, int]]:
    from dpdeblur.errors import UsageError

    sizes = []
    for s in _split(values):
        try:
            w, h = (int(t) for t in s.lower().split("x"))
        except ValueError:
            raise UsageError(f"--size {s!r}: expected WIDTHxHEIGHT, e.g. 1680x1120") from None
        sizes.append((h, w))
    return sizes


def _overrides(values: List[str] | None) -> dict:
    from dpdeblur.models.registry import parse_model_config

    return parse_model_config(values)


@bench_app.command("speed")
@guarded
def speed_cmd(
    model: List[str] = typer.Option(..., "--model", "-m", help="Model name(s); repeat or comma-separate."),
    device: List[str] = typer.Option(["cpu"], "--device", help="Device(s): cpu, cuda, cuda:N, mps, auto."),
    precision: List[str] = typer.Option(["auto"], "--precision", help="auto, fp32, bf16, fp16 (list allowed)."),
    tile: List[str] = typer.Option(["0"], "--tile", help="Tile size(s); 0 = whole image."),
    size: List[str] = typer.Option(["512x512"], "--size", help="Input size(s) WIDTHxHEIGHT."),
    overlap: int = typer.Option(64, help="Tile overlap in pixels."),
    tile_batch: int = typer.Option(1, help="Tiles per forward pass."),
    warmup: int = typer.Option(1, help="Untimed runs first."),
    runs: int = typer.Option(3, help="Timed runs (median reported)."),
    max_seconds: float = typer.Option(60.0, help="Stop timing a configuration after this long (at least one run)."),
    model_config: Optional[List[str]] = typer.Option(None, "--model-config", help="Builder overrides KEY=VALUE[,KEY=VALUE] (e.g. tiny configs)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Also write the JSON report to this file."),
    markdown: Optional[Path] = typer.Option(None, "--markdown", help="Write a Markdown table to this file."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write a PNG plot of throughput vs input size (needs matplotlib)."),
) -> None:
    """Latency, throughput (MP/s), achieved GFLOP/s vs measured device peak, peak memory, tiling overhead."""
    from dpdeblur.bench.report import markdown_table, rich_table, save_report
    from dpdeblur.bench.speed import SpeedConfig, bench_speed
    from dpdeblur.errors import UsageError

    try:
        tiles = [int(t) for t in _split(tile)]
    except ValueError:
        raise UsageError("--tile takes integers (0 = whole image)") from None
    ov = _overrides(model_config)
    names = _split(model)
    cfg = SpeedConfig(
        models=names, devices=_split(device), precisions=_split(precision), tiles=tiles, sizes=_sizes(size),
        overlap=overlap, tile_batch=tile_batch, warmup=warmup, runs=runs, max_seconds=max_seconds,
        overrides={n: ov for n in names} if ov else {},
    )
    con = err_console()
    report = bench_speed(cfg, on_row=lambda r: con.print(
        f"{r['model']} {r['device']} {r['precision']} {r['size']} tile {r['tile']}: "
        f"{r['latency_ms']:.1f} ms, {r['mpix_per_s']:.3f} MP/s, {r['pct_of_peak']:.0f}% of peak", highlight=False))
    cols = ["model", "device", "precision", "size", "tile", "latency_ms", "mpix_per_s", "gflops", "pct_of_peak", "peak_mem_mb", "overlap_extra_area_pct", "tile_overhead_pct"]
    if output:
        save_report(output, report)
    if markdown:
        from dpdeblur.utils.atomic import atomic_write_text

        atomic_write_text(markdown, markdown_table(report["rows"], cols))
    if plot:
        from dpdeblur.bench.plot import plot_speed

        plot_speed(report, plot)
    if as_json:
        print_json(report)
    else:
        out_console().print(rich_table(report["rows"], cols, title="dpdeblur bench speed"))
        peaks = ", ".join(f"{k}: conv {v['conv3x3_gflops']:.0f} GFLOP/s" for k, v in report["meta"]["peaks"].items())
        out_console().print(f"measured peaks: {peaks}", highlight=False)


@bench_app.command("compare")
@guarded
def compare_cmd(
    a: Path = typer.Argument(..., help="Baseline report (JSON from bench --json/--output)."),
    b: Path = typer.Argument(..., help="Report to compare against the baseline."),
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
) -> None:
    """Side-by-side deltas of two reports of the same kind, so a change can be judged."""
    from dpdeblur.bench.report import compare_reports, compare_table, load_report

    cmp = compare_reports(load_report(a), load_report(b))
    if as_json:
        print_json(cmp)
        return
    out_console().print(compare_table(cmp))
    if cmp["only_a"] or cmp["only_b"]:
        err_console().print(f"{len(cmp['only_a'])} rows only in {a}, {len(cmp['only_b'])} only in {b}")
