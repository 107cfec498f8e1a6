"""``dpdeblur align``: deform ground truth onto blurry inputs, write masks, flow caches, stats."""

from __future__ import annotations

from pathlib import Path

import typer

from dpdeblur.choices import DIS_PRESETS
from dpdeblur.cli.app import app, err_console, guarded, print_json
from dpdeblur.cli.choices import choice


@app.command("align")
@guarded
def align_cmd(
    blur: Path = typer.Option(..., "--blur", help="Folder of blurry images."),
    sharp: Path = typer.Option(..., "--sharp", help="Folder of sharp images with the same file names."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: gt/, mask/, flow/, summary.json."),
    preset: str = typer.Option("medium", "--preset", help="OpenCV DIS optical-flow preset.", **choice(DIS_PRESETS)),
    sharp_sigma: float = typer.Option(2.0, "--sharp-sigma", min=0.0, help="Gaussian sigma (px) on the sharp image before matching it to the blurry one."),
    lam: float = typer.Option(0.35, "--lambda", min=0.0, max=1.0, help="Calibration mask tolerance (JDRL Eq. 4)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo pairs whose outputs exist."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Estimate the flow from each sharp image to its blurry input; write the aligned (deformed)
    ground truth, the calibration mask, a float16 flow cache (JDRL warm-up) and per-pair statistics."""
    from dpdeblur.flow.align import align_pairs, paired_folders
    from dpdeblur.flow.estimators import DISFlow
    from dpdeblur.utils.atomic import check_output_folder

    check_output_folder(out)
    estimator = DISFlow(preset)  # options before any work
    pairs = paired_folders(blur, sharp)
    report, summary = align_pairs(pairs, out, estimator, sharp_sigma=sharp_sigma, lam=lam,
                                  overwrite=overwrite, progress=not as_json)
    if as_json:
        print_json(summary)
    else:
        report.print_summary(err_console())
        for it in report.items:
            if it.status == "ok":
                typer.echo(f"{it.name}\tmean_flow={it.info['mean_flow']:.3f}px\tmasked={it.info['masked_fraction']:.3f}")
        err_console().print(f"summary: {out / 'summary.json'}", highlight=False)
    raise typer.Exit(report.exit_code)
