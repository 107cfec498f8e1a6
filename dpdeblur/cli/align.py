"""``dpdeblur align``: deform ground truth onto blurry inputs, write masks, flow caches, stats."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from dpdeblur.choices import DIS_PRESETS
from dpdeblur.cli.app import app, comma_list, err_console, guarded, print_json
from dpdeblur.cli.choices import choice, splits


@app.command("align")
@guarded
def align_cmd(
    blur: Optional[Path] = typer.Option(None, "--blur", help="Folder of blurry images."),
    sharp: Optional[Path] = typer.Option(None, "--sharp", help="Folder of sharp images with the same file names."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: gt/, mask/, flow/, summary.json (--pixel4: a DPDD-layout root)."),
    pixel4: Optional[Path] = typer.Option(None, "--pixel4", help="Instead of --blur/--sharp: real Pixel 4 captures (Xin et al.'s layout) -> a DPDD-layout training root, reference gain-fitted and affine-aligned onto each combined view."),
    scenes: Optional[str] = typer.Option(None, "--scenes", help="--pixel4: these scenes only, comma-separated (default all)."),
    split: str = typer.Option("train", "--split", help="--pixel4: split folder to write (<split>_c, <split>_l, <split>_r).", **choice(splits)),
    preset: str = typer.Option("medium", "--preset", help="OpenCV DIS optical-flow preset.", **choice(DIS_PRESETS)),
    sharp_sigma: float = typer.Option(2.0, "--sharp-sigma", min=0.0, help="Gaussian sigma (px) on the sharp image before matching it to the blurry one."),
    lam: float = typer.Option(0.35, "--lambda", min=0.0, max=1.0, help="Calibration mask tolerance (JDRL Eq. 4)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo pairs whose outputs exist."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Estimate the flow from each sharp image to its blurry input; write the aligned (deformed)
    ground truth, the calibration mask, a float16 flow cache (JDRL warm-up) and per-pair statistics.
    With --pixel4: real dual-pixel training pairs whose focus-stacked reference is aligned by an
    affine fit (what `bench quality --dataset pixel4` scores against)."""
    from dpdeblur.errors import UsageError
    from dpdeblur.flow.align import align_pairs, paired_folders
    from dpdeblur.flow.estimators import DISFlow
    from dpdeblur.utils.atomic import check_output_folder

    check_output_folder(out)
    if pixel4 is not None:
        if blur is not None or sharp is not None:
            raise UsageError("--pixel4 replaces --blur/--sharp: give one or the other")
        _pixel4_pairs(pixel4, out, scenes, split, overwrite, as_json)
        return
    if blur is None or sharp is None:
        raise UsageError("align needs --blur and --sharp folders (or --pixel4 ROOT)")
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


def _pixel4_pairs(root: Path, out: Path, scenes: Optional[str], split: str, overwrite: bool, as_json: bool) -> None:
    from rich.markup import escape

    from dpdeblur.data.pixel4 import write_pairs

    records = write_pairs(root, out, comma_list(scenes) or None, split, overwrite,
                          on_scene=None if as_json else lambda n, t, sid: err_console().print(f"scene {sid} ({n}/{t})", highlight=False))
    failed = [r for r in records if r.get("error")]
    if as_json:
        print_json({"root": str(root), "out": str(out), "split": split, "failed": len(failed), "scenes": records})
        raise typer.Exit(1 if failed else 0)
    for r in records:
        if r.get("error"):
            err_console().print(f"[red]failed[/] p4_{r['id']}: {escape(r['error'])}", highlight=False, soft_wrap=True)
            continue
        ecc = "n/a" if r.get("ecc") is None else f"{r['ecc']:.4f}"
        state = "kept (exists)" if r["skipped"] else f"ecc={ecc}\taffine={r['affine']}"
        typer.echo(f"p4_{r['id']}\t{state}")
    written = sum(not r["skipped"] and not r.get("error") for r in records)
    err_console().print(f"wrote {written} of {len(records)} scenes to {out}, {len(failed)} failed "
                        f"(train with: dpdeblur train --dataset dpdd --data-root {out})", highlight=False)
    raise typer.Exit(1 if failed else 0)
