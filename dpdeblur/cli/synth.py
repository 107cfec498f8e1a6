"""``dpdeblur synth``: synthetic dual-pixel training data in the DPDD layout."""

from __future__ import annotations

from pathlib import Path

import typer

from dpdeblur.cli.app import app, err_console, guarded, print_json


@app.command("synth")
@guarded
def synth_cmd(
    out: Path = typer.Argument(..., help="Output folder (DPDD layout: {train,val,test}_{c,l,r}/... and synth.json)."),
    images: Path = typer.Option(None, "--images", help="Folder of sharp images (default: scikit-image photos + procedural textures)."),
    depth: Path = typer.Option(None, "--depth", help="Folder of depth maps named like the images (.npy/.npz/.pfm/16-bit PNG) (default: layered random planes)."),
    depth_kind: str = typer.Option("depth", "--depth-kind", help="The --depth maps hold 'depth' or 'disparity' (inverse depth)."),
    count: int = typer.Option(100, "--count", help="Number of images, split 80/10/10 into train/val/test."),
    size: str = typer.Option("512x384", "--size", help="Image size WIDTHxHEIGHT."),
    split: str = typer.Option(None, "--split", help="Explicit counts, e.g. train=80,val=10,test=10 (overrides --count)."),
    max_radius: float = typer.Option(8.0, "--max-radius", help="Largest defocus disc radius in pixels (per image peak in [R/2, R])."),
    focus: float = typer.Option(None, "--focus", help="Focus distance in depth-map units (metres for layered planes) (default: random per image)."),
    noise: float = typer.Option(0.01, "--noise", help="Largest shot+read noise level (fraction of full scale); 0 = none."),
    vignetting: float = typer.Option(0.1, "--vignetting", help="Largest complementary vignetting strength; 0 = none."),
    seed: int = typer.Option(0, "--seed", help="Random seed; same seed and options give identical files."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a data set already in OUT (only its own folders)."),
    as_json: bool = typer.Option(False, "--json", help="Print the parameters and per-image values as JSON on stdout."),
) -> None:
    """Make dual-pixel training data (left, right, combined, sharp) from sharp images, with no camera."""
    from dpdeblur.data.synth import SynthParams, make_dataset, parse_size, parse_split

    params = SynthParams(max_radius=max_radius, focus=focus, depth_kind=depth_kind, noise=noise, vignetting=vignetting)
    manifest, report = make_dataset(
        out, images=images, depth=depth, size=parse_size(size), split=parse_split(split, count),
        params=params, seed=seed, overwrite=overwrite, progress=not as_json,
    )
    if as_json:
        print_json(manifest)
    else:
        if report.count("failed"):
            report.print_summary()
        # what was written (the planned counts are in manifest["counts"]; failed sets are not counted)
        c = {s: sum(1 for r in manifest["items"] if r["split"] == s) for s in ("train", "val", "test")}
        err_console().print(
            f"wrote {manifest['ok']} image sets (train {c['train']}, val {c['val']}, test {c['test']}) "
            f"to {out} in {report.seconds:.1f}s; parameters in {out / 'synth.json'}",
            highlight=False,
        )
    raise typer.Exit(report.exit_code)
