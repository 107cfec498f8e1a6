"""``dpdeblur split-dp``: left / right / combined views from dual-pixel raw files."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Tuple

import typer

from dpdeblur.choices import VIEWS, WIGGLE_FORMATS
from dpdeblur.cli.app import app, err_console, guarded, print_json, renamed, require
from dpdeblur.cli.choices import choice, split_layouts, splits


@app.command("split-dp")
@guarded
def split_dp_cmd(
    inputs: List[Path] = typer.Argument(..., help="Dual Pixel RAW files (.CR2/.CR3/.DNG), <id>_left/_right .png/.pgm pairs, folders or globs."),
    outdir: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (required).", show_default=False),
    old_outdir: Optional[Path] = typer.Option(None, "--outdir", hidden=True),
    layout: str = typer.Option("flat", "--layout", help="flat: <id>_L/_R/_C.png; dpdd: <split>_{l,r,c}/source/ like the DPDD data set.", **choice(split_layouts)),
    split: str = typer.Option("test", "--split", help="Split folder of the dpdd layout.", **choice(splits)),
    stored_view: str = typer.Option("right", "--stored-view", help="Which photodiode a raw file's second frame holds (Canon does not document it).", **choice(VIEWS)),
    flat_field: Optional[Tuple[Path, Path]] = typer.Option(None, "--flat-field", metavar="WHITE_L WHITE_R", help="White-sheet left and right views (pair PNG/PGM or split-dp sRGB PNGs) correcting the complementary vignetting.", show_default=False),
    scale: float = typer.Option(1.0, "--scale", help="Area down-sampling in (0, 1]; 0.25 turns a 5D Mark IV frame into DPDD's 1680x1120."),
    black_level: Optional[int] = typer.Option(None, "--black-level", help="Override the black level (view pairs: default 1024)."),
    white_level: Optional[int] = typer.Option(None, "--white-level", help="Override the white level (view pairs: default 16383)."),
    mask: bool = typer.Option(False, "--mask", help="Also write the saturation mask (8-bit, 255 = A+B clipped)."),
    wiggle: Optional[str] = typer.Option(None, "--wiggle", help="Also write a looping left/right animation showing the disparity (<id>_wiggle.gif|webp; dpdd: <split>_c/wiggle/).", **choice(WIGGLE_FORMATS)),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo items whose outputs exist."),
    recursive: bool = typer.Option(False, "-r", "--recursive", help="Descend into sub-folders."),
    as_json: bool = typer.Option(False, "--json", help="Print the batch report as JSON on stdout."),
) -> None:
    """Split dual-pixel files into left, right and combined 16-bit sRGB PNGs (+ JSON sidecar)."""
    from dpdeblur.io.dpsplit import check_pair_levels, check_split_options, dual_pixel_inputs, split_dual_pixel
    from dpdeblur.utils.batch import run_batch

    from dpdeblur.utils.atomic import check_output_folder

    outdir = require(renamed("--out", outdir, "--outdir", old_outdir), "--out", "the output folder")
    check_split_options(layout, split, stored_view, scale, black_level, white_level, wiggle)  # before any work
    check_output_folder(outdir)
    items = dual_pixel_inputs(inputs, recursive)
    check_pair_levels(items, black_level, white_level)
    ff = None
    if flat_field and flat_field[0] is not None:
        from dpdeblur.io.raw import load_flat_field

        ff = load_flat_field(flat_field, black_level, white_level)

    def one(path):
        return split_dual_pixel(path, outdir, layout, split, overwrite, mask, wiggle, stored_view=stored_view,
                                flat_field=ff, scale=scale, black_level=black_level, white_level=white_level)

    report = run_batch(items, one, label="split-dp", progress=not as_json, console=err_console())
    if as_json:
        print_json(report.to_dict())
    else:
        report.print_summary(err_console())
    raise typer.Exit(report.exit_code)
