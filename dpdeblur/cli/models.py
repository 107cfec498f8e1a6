"""``dpdeblur models``: the registry as a table or JSON."""

from __future__ import annotations

import typer

from dpdeblur.cli.app import app, guarded, out_console, print_json
from dpdeblur.cli.choices import models


def _human(n: float | None, unit: str) -> str:
    if n is None:
        return "-"
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:.2f}{suffix}{unit}"
    return f"{n:.0f}{unit}"


@app.command("models")
@guarded
def models_cmd(
    as_json: bool = typer.Option(False, "--json", help="Print the model cards as JSON on stdout."),
    name: str = typer.Argument(None, help="Show one model's full card.", autocompletion=lambda incomplete: [n for n in models() if n.startswith(incomplete)]),
) -> None:
    """List registered models with their cards (input layout, view order, size, paper numbers)."""
    from rich.table import Table

    from dpdeblur.models import get_card, list_models, resolve_weights
    from dpdeblur.models.cards import DEFAULT_MODEL

    cards = [get_card(name)] if name else [get_card(n) for n in list_models()]
    if as_json:
        out = []
        for c in cards:
            d = c.to_dict()
            p = resolve_weights(c)
            d["weights_path"] = str(p) if p else None
            d["default"] = c.name == DEFAULT_MODEL  # what `deblur` runs without --model / --weights
            out.append(d)
        print_json(out[0] if name else out)
        return
    table = Table(title="dpdeblur models", title_justify="left")
    for col in ("name", "input", "multiple_of", "tiling", "params", "paper params", "MACs@1680x1120", "paper MACs", "paper PSNR/SSIM", "weights"):
        table.add_column(col, justify="left" if col in ("name", "input", "weights") else "right", no_wrap=True)
    for c in cards:
        layout = "dp " + "+".join(v[0].upper() for v in c.views) if c.layout == "dp" else "rgb"
        metric = "-"
        psnr = next((v for k, v in c.paper_metrics.items() if k.endswith("psnr")), None)
        ssim = next((v for k, v in c.paper_metrics.items() if k.endswith("ssim")), None)
        if psnr is not None:
            metric = f"{psnr:.2f}/{ssim:.3f}" if ssim is not None else f"{psnr:.2f}"
        w = resolve_weights(c)
        tiling = f"{c.tile} (align {c.tile_align})" if c.tile else "whole image"
        table.add_row(
            c.name, layout, str(c.multiple_of), tiling, _human(c.params, ""), _human(c.paper_params, ""),
            _human(c.macs, ""), _human(c.paper_macs, ""), metric,
            ("bundled" if w else ("missing" if c.weights else "none")) + (", default" if c.name == DEFAULT_MODEL else ""),
        )
    console = out_console()
    console.print(table)
    if name:
        console.print(f"[bold]paper:[/] {cards[0].paper}\n[bold]notes:[/] {cards[0].notes}")
    else:
        console.print("input: dp R+L = two dual-pixel views stacked right then left; rgb = one image. "
                      "tiling: deblur's default tile size (align: tile starts fall on multiples of it); "
                      "whole image: the model does not tile exactly. default: what `dpdeblur deblur` runs without --model.", soft_wrap=True)
