"""Bench reports: one JSON format for speed and quality, rich / Markdown tables,
and ``compare`` (side-by-side deltas of two reports, joined on their key columns).

A report is ``{"kind": "speed" | "quality", "meta": {...}, "rows": [{...}, ...]}``.
Each kind declares its key columns (which identify a row) and its metric columns
with the direction that is better.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dpdeblur.errors import InputError

__all__ = ["KINDS", "load_report", "save_report", "compare_reports", "compare_table", "markdown_table", "rich_table"]

#: kind -> (key columns, {metric: +1 if higher is better else -1})
KINDS: dict[str, tuple[tuple[str, ...], dict[str, int]]] = {
    "speed": (
        ("model", "device", "precision", "size", "tile"),
        {"latency_ms": -1, "mpix_per_s": +1, "gflops": +1, "pct_of_conv_peak": +1, "pct_of_matmul_peak": +1, "peak_mem_mb": -1, "tile_overhead_pct": -1},
    ),
    "quality": (
        ("model", "dataset", "subset"),
        {"psnr": +1, "ssim": +1, "mae": -1, "lpips": -1, "psnr_deformed": +1, "ssim_deformed": +1, "mae_deformed": -1},
    ),
}


def save_report(path: str | Path, report: dict[str, Any]) -> None:
    from dpdeblur.utils.atomic import atomic_write_text

    atomic_write_text(path, json.dumps(report, indent=2, default=str) + "\n")


def load_report(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        rep = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder; pass a JSON report written by `dpdeblur bench ... --json`") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read the report ({e.strerror or e})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not a JSON bench report ({e.__class__.__name__}); pass a file written by `dpdeblur bench ... --json`") from None
    if not isinstance(rep, dict) or rep.get("kind") not in KINDS or not isinstance(rep.get("rows"), list):
        raise InputError(f"{path}: not a dpdeblur bench report (needs 'kind' speed|quality and 'rows')")
    return rep


def _key(row: dict, keys: tuple[str, ...]) -> tuple:
    return tuple(str(row.get(k)) for k in keys)


def compare_reports(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Join two reports of the same kind on their key columns.

    Returns ``{"kind", "keys", "metrics", "rows": [{key..., metric: {"a", "b", "delta", "pct", "better"}}],
    "only_a": [...], "only_b": [...]}``; ``better`` is True/False/None (None when equal or missing).
    """
    if a["kind"] != b["kind"]:
        raise InputError(f"cannot compare a {a['kind']} report with a {b['kind']} report")
    keys, metrics = KINDS[a["kind"]]
    ib = {_key(r, keys): r for r in b["rows"]}
    ia = {_key(r, keys): r for r in a["rows"]}
    rows = []
    for k, ra in ia.items():
        if k not in ib:
            continue
        rb = ib[k]
        row: dict[str, Any] = {c: ra.get(c) for c in keys}
        for m, sign in metrics.items():
            va, vb = ra.get(m), rb.get(m)
            if not isinstance(va, (int, float)) or not isinstance(vb, (int, float)):
                continue
            d = vb - va
            row[m] = {
                "a": va,
                "b": vb,
                "delta": d,
                "pct": (100.0 * d / abs(va)) if va else None,
                "better": None if d == 0 else (d * sign > 0),
            }
        rows.append(row)
    return {
        "kind": a["kind"],
        "keys": list(keys),
        "metrics": [m for m in metrics if any(m in r for r in rows)],
        "rows": rows,
        "only_a": [dict(zip(keys, k)) for k in ia if k not in ib],
        "only_b": [dict(zip(keys, k)) for k in ib if k not in ia],
    }


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 10 else f"{v:.2f}"
    return "-" if v is None else str(v)


def markdown_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A GitHub Markdown table of ``rows`` restricted to ``columns``."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(c)) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def rich_table(rows: list[dict[str, Any]], columns: list[str], title: str = ""):
    from rich.table import Table

    t = Table(title=title or None, title_justify="left")
    for c in columns:
        t.add_column(c, justify="left" if not rows or isinstance(rows[0].get(c), str) else "right", no_wrap=True)
    for r in rows:
        t.add_row(*(_fmt(r.get(c)) for c in columns))
    return t


def compare_table(cmp: dict[str, Any]):
    """Rich table of a :func:`compare_reports` result: ``a -> b (delta%)``, green when better."""
    from rich.table import Table

    t = Table(title=f"{cmp['kind']} comparison (A -> B)", title_justify="left")
    for c in cmp["keys"]:
        t.add_column(c, no_wrap=True)
    for m in cmp["metrics"]:
        t.add_column(m, justify="right", no_wrap=True)
    for r in cmp["rows"]:
        cells = [_fmt(r.get(c)) for c in cmp["keys"]]
        for m in cmp["metrics"]:
            v = r.get(m)
            if not v:
                cells.append("-")
                continue
            colour = {True: "green", False: "red", None: "white"}[v["better"]]
            pct = f" ({v['pct']:+.1f}%)" if v["pct"] is not None else ""
            cells.append(f"{_fmt(v['a'])} -> [{colour}]{_fmt(v['b'])}{pct}[/]")
        t.add_row(*cells)
    return t
