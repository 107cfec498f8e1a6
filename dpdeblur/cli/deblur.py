"""``dpdeblur deblur``: deblur photos (files, folders, globs, view pairs) into files."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Tuple

import typer

from dpdeblur.choices import BIT_DEPTHS, BLENDS, DEVICES, OUTPUT_EXTS, PRECISIONS, VIEWS
from dpdeblur.cli.app import app, err_console, guarded, print_json, renamed
from dpdeblur.cli.choices import choice, models


@app.command("deblur")
@guarded
def deblur_cmd(
    inputs: Optional[List[str]] = typer.Argument(None, help="Images, folders, globs, raw files or DPDD-layout roots."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Registered model name (see `dpdeblur models`); default: the model a --weights file from `dpdeblur train` names, else the bundled dual-pixel model (marked default in `dpdeblur models`).", **choice(models)),
    output_dir: Optional[str] = typer.Option(None, "--out", "-o", help="Output folder (default: beside each input)."),
    old_output_dir: Optional[str] = typer.Option(None, "--output-dir", hidden=True),
    weights: Optional[str] = typer.Option(None, "--weights", "-w", help="Weights file (.safetensors/.pt); default: the model's bundled weights."),
    model_config: Optional[List[str]] = typer.Option(None, "--model-config", help="Builder override KEY=VALUE (repeatable); default: the config a --weights file from `dpdeblur train` records."),
    left: Optional[str] = typer.Option(None, "--left", help="Left dual-pixel view (with --right)."),
    right: Optional[str] = typer.Option(None, "--right", help="Right dual-pixel view (with --left)."),
    recursive: bool = typer.Option(False, "--recursive", "-r", help="Descend into sub-folders."),
    tile: Optional[int] = typer.Option(None, "--tile", help="Tile size in pixels; 0 = whole image at once. Default: the model card's (512; fcn: 0, it does not tile exactly).", show_default=False),
    overlap: int = typer.Option(64, "--overlap", help="Overlap between tiles in pixels."),
    blend: str = typer.Option("hann", "--blend", help="Tile blending window.", **choice(BLENDS)),
    tile_batch: int = typer.Option(1, "--tile-batch", help="Tiles per forward pass (GPU memory ~ tile batch)."),
    no_global_stats: bool = typer.Option(False, "--no-global-stats", help="Let tiles pool their own statistics (DMSSRM scale selection) instead of the image's."),
    device: str = typer.Option("auto", "--device", help="Device (auto: CUDA, then MPS, then CPU).", **choice(DEVICES, extra=("cuda:N",))),
    precision: str = typer.Option("auto", "--precision", help="Precision (auto: bf16 on capable CUDA GPUs, else fp32).", **choice(PRECISIONS)),
    compile: bool = typer.Option(False, "--compile", help="torch.compile the model (slow start, faster on big batches)."),
    channels_last: bool = typer.Option(False, "--channels-last", help="channels_last memory format."),
    tta: bool = typer.Option(False, "--tta", help="Self-ensemble: average the model over four flips of each input (dual-pixel views swapped when mirrored): a little sharper, 4x the time."),
    suffix: str = typer.Option("_deblurred", "--suffix", help="Appended to the output file stem."),
    ext: str = typer.Option("auto", "--ext", help="Output format (auto: as the input; raw files: 16-bit TIFF).", **choice(OUTPUT_EXTS)),
    bit_depth: str = typer.Option("auto", "--bit-depth", help="Output bit depth (auto: as the input; JPEG is always 8).", **choice(BIT_DEPTHS)),
    quality: int = typer.Option(95, "--quality", help="JPEG quality 1-100."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo outputs that already exist."),
    stored_view: str = typer.Option("right", "--stored-view", help="Raw files: which photodiode the second frame holds (Canon does not document it).", **choice(VIEWS)),
    scale: float = typer.Option(1.0, "--scale", help="Area down-sampling in (0, 1] before deblurring, written at that size: defocus shrinks with it. 0.25 brings a 5D Mark IV frame to DPDD's 1680x1120, the scale DPDD-trained models learned."),
    flat_field: Optional[Tuple[Path, Path]] = typer.Option(None, "--flat-field", metavar="WHITE_L WHITE_R", help="Raw files: white-sheet left and right views correcting the complementary vignetting.", show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON report on stdout."),
) -> None:
    """Deblur photos with a dual-pixel (view pairs, raw files) or single-image model.

    Outputs are written as {stem}{suffix}.{ext}; existing ones are skipped, and folders and globs
    leave files named like outputs out (a re-run does not deblur its own results). Exit code 0
    when everything succeeded, 1 when any input failed, 2 on a usage error.
    """
    from dpdeblur.errors import InputError, UsageError
    from dpdeblur.inference.pipeline import (Deblurrer, check_deblur_options, collect_items, deblur_files,
                                             default_model_name, plan_outputs, require_weights, results_where)
    from dpdeblur.models import parse_model_config, resolve_model
    from dpdeblur.models.registry import check_model_config

    output_dir = renamed("--out", output_dir, "--output-dir", old_output_dir)
    if not inputs and not (left or right):
        raise UsageError("no inputs: pass images, folders or globs, or --left L --right R")
    model = default_model_name(model, weights)
    # every option is checked before any work (the same rules as bench speed / quality)
    check_deblur_options(ext=ext, bit_depth=bit_depth, quality=quality, suffix=suffix, tile=tile, overlap=overlap,
                         blend=blend, tile_batch=tile_batch, device=device, precision=precision, stored_view=stored_view,
                         scale=scale)
    from dpdeblur.utils.atomic import check_output_folder

    check_output_folder(output_dir)
    # --model / --model-config default to what a self-describing weights file says
    card, overrides = resolve_model(model, weights, parse_model_config(model_config))
    check_model_config(card.name, overrides)
    require_weights(card.name, weights)
    raw_options: dict = {"stored_view": stored_view}
    if flat_field and flat_field[0] is not None:
        from dpdeblur.io.raw import load_flat_field

        raw_options["flat_field"] = load_flat_field(flat_field)
    console = err_console()
    warn = lambda m: console.print(f"[yellow]warning:[/] {m}", highlight=False, soft_wrap=True)  # noqa: E731
    items = collect_items(inputs or [], card.layout == "dp", left, right, recursive, warn=warn, suffix=suffix)
    if not items:
        raise InputError("the inputs contain no images; supported: " + ", ".join(("png", "tif", "jpg", "cr2", "cr3", "dng")))
    plan_outputs(items, output_dir, suffix=suffix, ext=ext)  # an output that is an input: refused before any work
    d = Deblurrer(
        card.name, weights, overrides, tile=tile, overlap=overlap, blend=blend, tile_batch=tile_batch,
        global_stats=not no_global_stats, device=device, precision=precision, compile=compile,
        channels_last=channels_last, tta=tta, warn=warn,
    )
    report = deblur_files(items, d, output_dir, suffix=suffix, ext=ext, bit_depth=bit_depth, quality=quality,
                          overwrite=overwrite, raw_options=raw_options, scale=scale, console=console)
    report.print_summary(console)
    if report.count("ok"):
        console.print(f"[bold]results:[/] {results_where(items, output_dir)} ({{stem}}{suffix}.{{ext}})",
                      highlight=False, soft_wrap=True)
    if as_json:
        print_json({**report.to_dict(), "model": card.name, "model_config": overrides, "weights": weights, "device": str(d.device),
                    "precision": str(d.dtype).replace("torch.", ""), "tile": d.settings.tile, "overlap": overlap, "blend": blend, "tta": tta})
    raise typer.Exit(report.exit_code)
