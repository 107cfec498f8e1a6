"""``dpdeblur synth``: synthetic dual-pixel training data in the DPDD layout."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from dpdeblur.choices import DEPTH_KINDS, PSF_KINDS, TONES
from dpdeblur.cli.app import app, err_console, fail, guarded, print_json, renamed, require
from dpdeblur.cli.choices import choice


@app.command("synth")
@guarded
def synth_cmd(
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (required; DPDD layout: {train,val,test}_{c,l,r}/... and synth.json).", show_default=False),
    old_out: Optional[Path] = typer.Argument(None, hidden=True, metavar="OUT", show_default=False),  # deprecated positional
    images: Path = typer.Option(None, "--images", help="Folder of sharp images (default: scikit-image photos + procedural textures)."),
    depth: Path = typer.Option(None, "--depth", help="Folder of depth maps named like the images (.npy/.npz/.pfm/16-bit PNG) (default: layered random planes)."),
    depth_kind: str = typer.Option("depth", "--depth-kind", help="The --depth maps hold 'depth' or 'disparity' (inverse depth).", **choice(DEPTH_KINDS)),
    count: int = typer.Option(100, "--count", help="Number of images, split 80/10/10 into train/val/test."),
    size: str = typer.Option("512x384", "--size", help="Image size WIDTHxHEIGHT."),
    split: str = typer.Option(None, "--split", help="Explicit counts, e.g. train=80,val=10,test=10 (overrides --count)."),
    max_radius: float = typer.Option(24.0, "--max-radius", help="Largest defocus radius in pixels (per image peak in [R/6, R])."),
    psf: str = typer.Option("parametric", "--psf", help="PSF model without a bank: parametric (apodised, soft split, cat's eye) | disc (clean half-discs).", **choice(PSF_KINDS)),
    psf_bank: Path = typer.Option(None, "--psf-bank", help="Folder of measured kernels blur_kernels_{left,right}.npy (+ psf_bank.json): a calibrated camera's PSFs."),
    bank_share: float = typer.Option(1.0, "--bank-share", help="Share of images rendered with --psf-bank (the rest: --psf)."),
    tone: str = typer.Option("mixed", "--tone", help="Encoding of the written images: mixed (sRGB or gamma 1.8-2.4 per image) | srgb | gamma | none.", **choice(TONES)),
    exposure: str = typer.Option("0.2,1.0", "--exposure", help="Range LO,HI of the scene's linear 99th percentile ('none' = as the sources are)."),
    linear: bool = typer.Option(True, "--linear/--no-linear", help="Blur, vignetting and noise in linear light (sources sRGB-decoded)."),
    focus: float = typer.Option(None, "--focus", help="Focus distance in depth-map units (metres for layered planes) (default: random per image)."),
    noise: float = typer.Option(0.02, "--noise", help="Largest shot-noise level (linear, fraction of full scale; read noise 1/8 of it); 0 = none."),
    vignetting: float = typer.Option(0.1, "--vignetting", help="Largest complementary vignetting strength; 0 = none."),
    seed: int = typer.Option(0, "--seed", help="Random seed; same seed and options give identical files."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a data set synth made in OUT (its own folders and synth.json), once the new one is written."),
    as_json: bool = typer.Option(False, "--json", help="Print the parameters and per-image values as JSON on stdout."),
) -> None:
    """Make dual-pixel training data (left, right, combined, sharp) from sharp images, with no camera."""
    from dpdeblur.data.synth import SPLITS, SynthParams, make_dataset, parse_range, parse_size, parse_split

    from dpdeblur.utils.atomic import check_output_folder

    out = require(renamed("--out", out, "the positional OUT", old_out), "--out", "the output folder")
    check_output_folder(out)
    params = SynthParams(
        max_radius=max_radius, focus=focus, depth_kind=depth_kind, noise=noise, vignetting=vignetting, psf=psf,
        psf_bank=str(psf_bank) if psf_bank is not None else None, bank_share=bank_share, tone=tone,
        exposure=parse_range(exposure, "exposure"), linear=linear,
    )
    manifest, report = make_dataset(
        out, images=images, depth=depth, size=parse_size(size), split=parse_split(split, count),
        params=params, seed=seed, overwrite=overwrite, progress=not as_json,
    )
    console = err_console()
    failed = [it for it in report.items if it.status == "failed"]
    if not manifest["ok"]:  # nothing written: no synth.json, OUT as it was
        msg = (f"nothing written: all {len(failed)} image sets failed (first: {failed[0].name}: {failed[0].error}); "
               f"{out} is as it was")
        if as_json:
            print_json({"error": msg, "exit_code": 1, "failed": manifest["failed"]})
        else:
            report.print_summary(console, done="written", failed_only=True)
        fail(msg, 1)
    if as_json:
        print_json(manifest)
    else:
        if failed:
            report.print_summary(console, done="written", failed_only=True)
        # what was written (the planned counts are in manifest["counts"]; failed sets are not counted)
        c = {s: sum(1 for r in manifest["items"] if r["split"] == s) for s in SPLITS}
        console.print(
            f"wrote {manifest['ok']} image sets (train {c['train']}, val {c['val']}, test {c['test']}) "
            f"to {out} in {report.seconds:.1f}s; parameters in {out / 'synth.json'}",
            highlight=False,
        )
    raise typer.Exit(report.exit_code)

