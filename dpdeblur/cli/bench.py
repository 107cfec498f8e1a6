"""``dpdeblur bench``: quality and speed reports, and comparison of two reports."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Tuple

import typer

from dpdeblur.choices import DEVICES, PRECISIONS, SSIM_WINDOWS
from dpdeblur.cli.app import app, comma_list, err_console, guarded, out_console, print_json, renamed
from dpdeblur.cli.choices import choice, datasets, models, splits

bench_app = typer.Typer(help="Quality (PSNR/SSIM/MAE) and speed (latency, throughput, memory) reports.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


def _sizes(values: List[str]) -> list[tuple[int, int]]:
    """``--size`` values as ``(width, height)``."""
    from dpdeblur.errors import UsageError

    sizes = []
    for s in comma_list(values):
        try:
            w, h = (int(t) for t in s.lower().split("x"))
        except ValueError:
            raise UsageError(f"--size {s!r}: expected WIDTHxHEIGHT, e.g. 1680x1120") from None
        sizes.append((w, h))
    if not sizes:
        raise UsageError(f"--size {' '.join(values)!r}: names no size; expected WIDTHxHEIGHT, e.g. 1680x1120")
    return sizes


def _print_table(table) -> None:
    """A table on stdout, never cut off (as wide as it needs when stdout is not a terminal)."""
    from dpdeblur.bench.report import print_table

    print_table(table, out_console())


def _overrides(values: List[str] | None) -> dict:
    from dpdeblur.models.registry import parse_model_config

    return parse_model_config(values)


@bench_app.command("speed")
@guarded
def speed_cmd(
    model: List[str] = typer.Option(..., "--model", "-m", help="Model name(s); repeat or comma-separate.", **choice(models, comma=True)),
    device: List[str] = typer.Option(["cpu"], "--device", help="Device(s); list allowed.", **choice(DEVICES, extra=("cuda:N",), comma=True)),
    precision: List[str] = typer.Option(["auto"], "--precision", help="Precision(s); list allowed.", **choice(PRECISIONS, comma=True)),
    tile: List[str] = typer.Option(["0"], "--tile", help="Tile size(s); 0 = whole image."),
    size: List[str] = typer.Option(["512x512"], "--size", help="Input size(s) WIDTHxHEIGHT."),
    overlap: int = typer.Option(64, help="Tile overlap in pixels."),
    tile_batch: int = typer.Option(1, help="Tiles per forward pass."),
    no_global_stats: bool = typer.Option(False, "--no-global-stats", help="Skip the image-statistics pass of tiled DMSSRM models."),
    warmup: int = typer.Option(1, help="Untimed runs first."),
    runs: int = typer.Option(3, help="Timed runs (median reported)."),
    max_seconds: float = typer.Option(60.0, help="Stop timing a configuration after this long (at least one run)."),
    model_config: Optional[List[str]] = typer.Option(None, "--model-config", help="Builder overrides KEY=VALUE[,KEY=VALUE] (e.g. tiny configs)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
    output: Optional[Path] = typer.Option(None, "--report", help="Also write the JSON report to this file (what `bench compare` reads)."),
    old_output: Optional[Path] = typer.Option(None, "--output", "-o", hidden=True),
    markdown: Optional[Path] = typer.Option(None, "--markdown", help="Write a Markdown table to this file."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write a PNG plot of throughput vs input size (needs matplotlib)."),
) -> None:
    """Latency, throughput (MP/s), achieved GFLOP/s as % of the best measured 3x3 convolution and of a large matmul, peak memory, tiling overhead."""
    from dpdeblur.bench.report import markdown_table, rich_table, save_report
    from dpdeblur.bench.speed import SpeedConfig, bench_speed, check_speed_outputs
    from dpdeblur.errors import UsageError

    output = renamed("--report", output, "--output/-o", old_output)
    try:
        tiles = [int(t) for t in comma_list(tile)]
    except ValueError:
        raise UsageError("--tile takes integers (0 = whole image)") from None
    if not tiles:
        raise UsageError("--tile names no tile size; pass integers (0 = whole image), e.g. --tile 0,512")
    ov = _overrides(model_config)
    names = comma_list(model)
    cfg = SpeedConfig(
        models=names, devices=comma_list(device), precisions=comma_list(precision), tiles=tiles, sizes=_sizes(size),
        overlap=overlap, tile_batch=tile_batch, global_stats=not no_global_stats, warmup=warmup, runs=runs, max_seconds=max_seconds,
        overrides={n: ov for n in names} if ov else {},
    )
    cfg.check()  # every usage error before the device is calibrated
    check_speed_outputs(cfg, {"report": output, "markdown": markdown, "plot": plot})
    if plot:
        from dpdeblur.bench.plot import check_plot_available

        check_plot_available()
    con = err_console()
    report = bench_speed(cfg, on_row=lambda r: con.print(
        f"{r['model']} {r['device']} {r['precision']} {r['size']} tile {r['tile']}: "
        f"{r['latency_ms']:.1f} ms, {r['mpix_per_s']:.3f} MP/s, {r['pct_of_conv_peak']:.0f}% of conv peak, "
        f"{r['pct_of_matmul_peak']:.0f}% of matmul peak", highlight=False))
    cols = ["model", "device", "precision", "size", "tile", "latency_ms", "mpix_per_s", "gflops", "pct_of_conv_peak", "pct_of_matmul_peak", "peak_mem_mb", "overlap_extra_area_pct", "tile_overhead_pct"]
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
        _print_table(rich_table(report["rows"], cols, title="dpdeblur bench speed"))
        peaks = ", ".join(f"{k}: conv3x3 {v['conv3x3_gflops']:.0f} GFLOP/s ({v['conv3x3_shape']}), "
                          f"matmul {v['matmul_gflops']:.0f} GFLOP/s ({v['matmul_size']}^2)"
                          for k, v in report["meta"]["peaks"].items())
        out_console().print(f"measured peaks: {peaks}. % of conv peak: of the best 3x3 convolution (the library may "
                            "use fewer multiplications, so it can exceed the FMA peak); % of matmul peak: of a large "
                            "matmul, close to the dense FMA peak", highlight=False, soft_wrap=True)


@bench_app.command("compare")
@guarded
def compare_cmd(
    a: Path = typer.Argument(..., help="Baseline report (JSON from bench --json or --report)."),
    b: Path = typer.Argument(..., help="Report to compare against the baseline."),
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
) -> None:
    """Side-by-side deltas of two reports of the same kind, so a change can be judged."""
    from dpdeblur.bench.report import compare_reports, compare_table, load_report

    cmp = compare_reports(load_report(a), load_report(b))
    if as_json:
        print_json(cmp)
        return
    _print_table(compare_table(cmp))
    if cmp["only_a"] or cmp["only_b"]:
        err_console().print(f"{len(cmp['only_a'])} rows only in {a}, {len(cmp['only_b'])} only in {b}")


@bench_app.command("quality")
@guarded
def quality_cmd(
    dataset: str = typer.Option(..., "--dataset", "-d", help="Data set layout (pixel4: real Pixel 4 captures, Xin et al.; folder: --blur/--sharp or --left/--right/--sharp).", **choice(lambda: datasets("bench quality"))),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="Folder holding the data set."),
    split: str = typer.Option("test", help="Split to score.", **choice(splits)),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model name; 'identity' scores the blurry input only. Default: the model a --weights file from `dpdeblur train` names, else identity.", show_default=False, **choice(lambda: ["identity", *models()])),
    weights: Optional[Path] = typer.Option(None, "--weights", "-w", help="Weights file (default: the model's own)."),
    model_config: Optional[List[str]] = typer.Option(None, "--model-config", help="Builder overrides KEY=VALUE[,KEY=VALUE]."),
    blur: Optional[Path] = typer.Option(None, "--blur", help="folder: blurry images."),
    sharp: Optional[Path] = typer.Option(None, "--sharp", help="folder: ground truth images."),
    left: Optional[Path] = typer.Option(None, "--left", help="folder: left dual-pixel views."),
    right: Optional[Path] = typer.Option(None, "--right", help="folder: right dual-pixel views."),
    tile: int = typer.Option(512, help="Tile size for inference (0 = whole image)."),
    overlap: int = typer.Option(64, help="Tile overlap in pixels."),
    device: str = typer.Option("auto", help="Device.", **choice(DEVICES, extra=("cuda:N",))),
    precision: str = typer.Option("auto", help="Precision (auto: bf16 on capable CUDA GPUs, else fp32).", **choice(PRECISIONS)),
    tta: bool = typer.Option(False, "--tta", help="Self-ensemble: average the model over four flips of each input (4x the time)."),
    ssim: str = typer.Option("wang", "--ssim", help="SSIM window: wang (11x11 Gaussian) or skimage-default (7x7 uniform).", **choice(SSIM_WINDOWS)),
    deformed_gt: Optional[bool] = typer.Option(None, "--deformed-gt/--no-deformed-gt", help="Also score against the GT warped onto the output (default: on for sdd)."),
    scene_list: Optional[Path] = typer.Option(None, "--scene-list", help="Lines '<id> indoor|outdoor' (default: <root>/indoor.txt, outdoor.txt)."),
    lpips_weights: Optional[Path] = typer.Option(None, "--lpips-weights", help="Local LPIPS AlexNet weights (never downloaded)."),
    limit: Optional[int] = typer.Option(None, help="Score only the first N images."),
    ids: Optional[str] = typer.Option(None, "--ids", help="Score only these ids, comma-separated (file stems; pixel4: scene numbers, e.g. 003,004)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
    output: Optional[Path] = typer.Option(None, "--report", help="Also write the JSON report to this file (what `bench compare` reads)."),
    old_output: Optional[Path] = typer.Option(None, "--output", "-o", hidden=True),
    csv: Optional[Path] = typer.Option(None, "--csv", help="Write per-image metrics to this CSV file."),
    markdown: Optional[Path] = typer.Option(None, "--markdown", help="Write the aggregate table as Markdown."),
    save_images: Tuple[int, str] = typer.Option((0, ""), "--save-images", help="K DIR: crops (input | output | truth) of the K worst and K best images, 8-bit PNG."),
    crop: int = typer.Option(256, help="Side of the --save-images crops in pixels (at least 1; a side larger than the image keeps the whole image)."),
) -> None:
    """PSNR / SSIM / MAE per image and per subset, beside the blurry input ("identity" row)."""
    from dpdeblur.bench.quality import (QualityConfig, bench_quality, check_quality_config, check_quality_outputs,
                                        per_image_csv, quality_markdown, save_crops, table_columns)
    from dpdeblur.bench.report import rich_table, save_report
    from dpdeblur.errors import UsageError
    from dpdeblur.utils.atomic import atomic_write_text

    output = renamed("--report", output, "--output/-o", old_output)
    k, img_dir = save_images[0], Path(save_images[1])
    if k < 0:
        raise UsageError("--save-images K DIR: K must be >= 0, e.g. --save-images 3 crops/")
    if crop < 1:
        raise UsageError(f"--crop {crop}: the side of the --save-images crops must be at least 1 pixel, e.g. --crop 256 "
                         "(a side larger than the image keeps the whole image)")
    if k and not save_images[1]:
        raise UsageError("--save-images K DIR: DIR is empty; name the folder for the crops, e.g. --save-images 3 crops/")
    cfg = QualityConfig(
        dataset=dataset, data_root=data_root, split=split, model=model if model or weights else "identity", weights=weights,
        model_config=_overrides(model_config), folders=dict(blur=blur, sharp=sharp, left=left, right=right),
        tile=tile, overlap=overlap, device=device, precision=precision, ssim=ssim, deformed_gt=deformed_gt,
        scene_list=scene_list, lpips_weights=lpips_weights, limit=limit, crops=crop if k else 0,
        ids=comma_list(ids) if ids is not None else None, tta=tta,
    )
    check_quality_config(cfg)  # before the progress bar starts
    check_quality_outputs(cfg, {"report": output, "csv": csv, "markdown": markdown}, img_dir if k else None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(TextColumn("[bold]quality[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                  console=err_console(), transient=True) as bar:
        task = bar.add_task("", total=None)
        report, crops = bench_quality(cfg, on_image=lambda i, n, name: bar.update(task, completed=i, total=n, description=name))
    if output:
        save_report(output, report)
    if csv:
        atomic_write_text(csv, per_image_csv(report))
    if markdown:
        atomic_write_text(markdown, quality_markdown(report))
    if k:
        files = save_crops(crops, report["per_image"], report["meta"]["model"], k, img_dir)
        err_console().print(f"wrote {len(files)} crops to {img_dir}", highlight=False)
    if as_json:
        print_json(report)
        return
    m = report["meta"]
    _print_table(rich_table(report["rows"], table_columns(report),
                            title=f"dpdeblur bench quality: {m['dataset']} {m['split']} ({m['n_images']} images)"))
    out_console().print(f"SSIM window: {m['ssim_window']}; LPIPS: {m['lpips']}", highlight=False)
