"""Bench reports: one JSON format for speed and quality, rich / Markdown tables,
and ``compare`` (side-by-side deltas of two reports, joined on their key columns).

A report is ``{"kind": "speed" | "quality", "meta": {...}, "rows": [{...}, ...]}``.
Each kind declares its key columns (which identify a row) and its metric columns
with the direction that is better.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

from dpdeblur.errors import InputError, UsageError
from dpdeblur.utils.atomic import check_creatable
from dpdeblur.utils.jsonsafe import json_safe

__all__ = ["KINDS", "load_report", "save_report", "compare_reports", "compare_table", "markdown_table", "rich_table",
           "print_table", "json_safe", "dumps_strict", "check_output_files"]

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


def dumps_strict(obj: Any) -> str:
    """Strict JSON text of ``obj`` (see :func:`json_safe`; never ``Infinity`` / ``NaN``)."""
    return json.dumps(json_safe(obj), indent=2, allow_nan=False)


def save_report(path: str | Path, report: dict[str, Any]) -> None:
    from dpdeblur.utils.atomic import atomic_write_text

    atomic_write_text(path, dumps_strict(report) + "\n")


def _same(a: str | Path, b: str | Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def _within(path: str | Path, folder: str | Path) -> bool:
    """``path`` is ``folder`` or lies under it (symbolic links resolved)."""
    p, f = Path(os.path.realpath(path)), Path(os.path.realpath(folder))
    return p == f or f in p.parents


def check_output_files(outputs: dict[str, str | Path | None], inputs: dict[str, str | Path | None] | None = None,
                       input_files: Iterable[str | Path] = (), data_folders: Iterable[str | Path] = (),
                       what: str = "data set") -> None:
    """Usage errors, before any work, for output files (setting -> path) that cannot be written
    or would destroy an input: a folder in the way, a file where a folder must be, no write
    permission, two outputs on one file, an output on one of ``inputs`` (setting -> path, e.g.
    the weights) or ``input_files`` (the files of the ``what``), or in one of ``data_folders``
    (it would join the data set)."""
    inputs = {k: v for k, v in (inputs or {}).items() if v is not None}
    files = {os.path.realpath(f) for f in input_files}
    folders = [Path(os.path.realpath(f)) for f in data_folders]
    seen: dict[str, str] = {}
    for name, path in outputs.items():
        if path is None:
            continue
        p = Path(path)
        if str(path) == "":
            raise UsageError(f"{name} '': empty path; name a file", settings=(name,))
        if p.is_dir():
            raise UsageError(f"{name} {p}: is a folder; name a file to write", settings=(name,))
        check_creatable(p, name)
        real = os.path.realpath(p)
        for other, q in inputs.items():
            if _same(p, q):
                raise UsageError(f"{name} {p}: is the {other} file this run reads; writing there would destroy it, "
                                 "write elsewhere", settings=(name, other))
        if real in files:
            raise UsageError(f"{name} {p}: is a file of the {what} this run reads; writing there would destroy it, "
                             "write elsewhere", settings=(name,))
        parent = Path(real).parent
        if parent in folders:
            raise UsageError(f"{name} {p}: lies in {parent}, a folder of the {what} this run reads; the file would "
                             "join the data set, write elsewhere", settings=(name,))
        if real in seen:
            raise UsageError(f"{name} {p}: is also the {seen[real]} file; give each output its own file",
                             settings=(name, seen[real]))
        seen[real] = name


_NOT_REPORT = "pass a file written by `dpdeblur bench ... --report` or `--json`"


def _check_report(path: Path, rep: Any) -> None:
    """A one-line :class:`InputError` naming ``path`` for a document that is not a bench report."""
    if not isinstance(rep, dict) or rep.get("kind") not in KINDS or not isinstance(rep.get("rows"), list):
        raise InputError(f"{path}: not a dpdeblur bench report (needs 'kind' speed|quality and 'rows'); {_NOT_REPORT}")
    if rep.get("meta") is not None and not isinstance(rep["meta"], dict):
        raise InputError(f"{path}: not a dpdeblur bench report ('meta' is {_show(rep['meta'])}, not an object); "
                         f"{_NOT_REPORT}")
    keys, metrics = KINDS[rep["kind"]]
    for i, row in enumerate(rep["rows"]):
        if not isinstance(row, dict):
            raise InputError(f"{path}: not a dpdeblur bench report (row {i + 1} of 'rows' is {_show(row)}, not an "
                             f"object with {', '.join(keys)}); {_NOT_REPORT}")
        for m in metrics:
            v = row.get(m)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise InputError(f"{path}: not a dpdeblur bench report (row {i + 1}: {m} is {_show(v)}, not a number "
                                 f"or null); {_NOT_REPORT}")


def _show(v: Any) -> str:
    text = json.dumps(v, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def load_report(path: str | Path) -> dict[str, Any]:
    """A bench report from a JSON file; a file that is not one fails with one line naming it.
    Non-finite numbers may be null (as :func:`save_report` writes them) or, from older
    reports, ``Infinity`` / ``NaN``."""
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
    except RecursionError:
        raise InputError(f"{path}: not a bench report (nested too deeply); {_NOT_REPORT}") from None
    _check_report(path, rep)
    return rep


def _key(row: dict, keys: tuple[str, ...]) -> tuple:
    return tuple(str(row.get(k)) for k in keys)


def compare_reports(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Join two reports of the same kind on their key columns.

    A metric missing or null (a non-finite number in strict JSON) on either side is left out
    of that row. Returns ``{"kind", "keys", "metrics", "rows": [{key..., metric: {"a", "b", "delta", "pct", "better"}}],
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
            d = 0.0 if va == vb else vb - va  # two equal infinities (identical images) do not differ
            row[m] = {
                "a": va,
                "b": vb,
                "delta": d,
                "pct": (100.0 * d / abs(va)) if va else None,
                "better": None if d == 0 or d != d else (d * sign > 0),
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
    """Rich table of ``rows``; a cell too wide for the console folds onto more lines, never cut off
    (print it with :func:`print_table` to get one line per row on a pipe)."""
    from rich.table import Table

    t = Table(title=title or None, title_justify="left")
    for c in columns:
        t.add_column(c, justify="left" if not rows or isinstance(rows[0].get(c), str) else "right", overflow="fold")
    for r in rows:
        t.add_row(*(_fmt(r.get(c)) for c in columns))
    return t


def compare_table(cmp: dict[str, Any]):
    """Rich table of a :func:`compare_reports` result: ``a -> b (delta%)``, green when better."""
    from rich.table import Table

    t = Table(title=f"{cmp['kind']} comparison (A -> B)", title_justify="left")
    for c in cmp["keys"]:
        t.add_column(c, overflow="fold")
    for m in cmp["metrics"]:
        t.add_column(m, justify="right", overflow="fold")
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


def print_table(table, console=None) -> None:
    """Print a rich table whole: on a terminal its cells fold to the window's width; elsewhere
    (a pipe, a file) the console is made as wide as the table, so every row stays on one line."""
    from rich.console import Console

    console = console or Console()
    if not console.is_terminal:
        width = Console(width=100_000).measure(table).maximum
        console = Console(file=console.file, width=max(80, width))
    console.print(table)
