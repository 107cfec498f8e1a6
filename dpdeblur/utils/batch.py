"""Batch processing shared by every command that works on many files
(``deblur``, ``split-dp``, ``align``...): input expansion, per-item isolation of
failures, progress on stderr, a summary table, a JSON report and exit codes.

Usage::

    items = expand_inputs(["photos/", "*.png"], exts=IMAGE_EXTS, recursive=True)
    report = run_batch(items, process_one, label="deblur")
    report.print_summary(); sys.exit(report.exit_code)

``process_one(item)`` returns an :class:`ItemResult` (or a list of output paths);
raising :class:`~dpdeblur.errors.DpdeblurError` marks the item failed with that
one-line message, any other exception too (with its type), and the batch goes on.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from dpdeblur.errors import InputError

__all__ = ["ItemResult", "BatchReport", "expand_inputs", "run_batch", "stderr_console"]


def stderr_console():
    """A rich console on stderr: the default for progress and summaries when the caller passes
    none (the CLI passes its own; this library never imports the CLI)."""
    from rich.console import Console

    return Console(stderr=True)


@dataclass
class ItemResult:
    """Outcome of one item: ``status`` is ``ok``, ``skipped`` or ``failed``."""

    name: str
    status: str = "ok"
    outputs: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class BatchReport:
    label: str
    items: list[ItemResult]
    seconds: float

    def count(self, status: str) -> int:
        return sum(1 for i in self.items if i.status == status)

    @property
    def exit_code(self) -> int:
        """0 when nothing failed, 1 when any item failed (partial failure included)."""
        return 1 if self.count("failed") else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": self.label,
            "ok": self.count("ok"),
            "skipped": self.count("skipped"),
            "failed": self.count("failed"),
            "seconds": round(self.seconds, 3),
            "items": [asdict(i) for i in self.items],
        }

    def print_summary(self, console=None, max_rows: int = 50, done: str = "done", failed_only: bool = False) -> None:
        """Rich summary on stderr: one row per item (failures first; ``failed_only``: those alone),
        then totals (``N {done}``, skipped ones when there are any, failures)."""
        from rich.markup import escape
        from rich.table import Table

        console = console or stderr_console()
        rows = sorted(self.items, key=lambda i: {"failed": 0, "ok": 1, "skipped": 2}[i.status])
        if failed_only:
            rows = [i for i in rows if i.status == "failed"]
        if rows:
            table = Table(title=f"{self.label}: {'failed' if failed_only else 'summary'}", title_justify="left")
            table.add_column("input", overflow="fold")
            table.add_column("status")
            table.add_column("output / error", overflow="fold")
            table.add_column("s", justify="right")
            colour = {"ok": "green", "skipped": "yellow", "failed": "red"}
            for it in rows[:max_rows]:
                detail = it.error if it.status == "failed" else ", ".join(it.outputs)
                table.add_row(escape(it.name), f"[{colour[it.status]}]{it.status}[/]", escape(detail or ""),
                              f"{it.seconds:.2f}")
            if len(rows) > max_rows:
                table.add_row(f"... {len(rows) - max_rows} more", "", "", "")
            console.print(table)
        skipped = self.count("skipped")
        console.print(
            f"{self.count('ok')} {done}" + (f", {skipped} skipped (exist; --overwrite to redo)" if skipped else "")
            + f", {self.count('failed')} failed in {self.seconds:.1f}s",
            highlight=False,
        )


def expand_inputs(
    inputs: Iterable[str | Path],
    exts: Sequence[str],
    recursive: bool = False,
    exclude: Callable[[Path], bool] | None = None,
) -> list[Path]:
    """Files, folders and globs -> sorted, de-duplicated files with one of ``exts``.

    Explicit files are kept whatever their extension (so a bad file is reported,
    not silently dropped); folders and globs contribute matching files only, never
    hidden ones (``.name``: temporary files of an interrupted write) nor those
    ``exclude`` names (e.g. a command's own earlier outputs, so that a re-run does not
    take them for inputs). Recursion (``recursive``; ``**`` in a glob) does not follow
    symbolic links to folders, so a link loop cannot hang it.
    A path that matches nothing raises :class:`InputError`.
    """
    exts = tuple(e.lower() for e in exts)

    def wanted(f: Path) -> bool:
        return (f.suffix.lower() in exts and not f.name.startswith(".") and f.is_file()
                and not (exclude is not None and exclude(f)))

    out: list[Path] = []
    for raw in inputs:
        s = str(raw)
        p = Path(s)
        if p.is_file():
            out.append(p)
        elif p.is_dir():
            it = p.rglob("*") if recursive else p.iterdir()
            out.extend(sorted(f for f in it if wanted(f)))
        elif any(ch in s for ch in "*?["):
            hits = [h for h in _glob(s, recursive) if h.suffix.lower() in exts and h.is_file()]
            if not hits:
                raise InputError(f"{s}: the pattern matches no {'/'.join(exts)} file")
            out.extend(sorted(h for h in hits if wanted(h)))
        else:
            raise InputError(f"{s}: no such file or folder")
    seen: set[Path] = set()
    uniq = []
    for f in out:
        r = f.resolve()
        if r not in seen:
            seen.add(r)
            uniq.append(f)
    return uniq


def _glob(pattern: str, recursive: bool) -> list[Path]:
    """Shell-style ``pattern`` -> matching paths, through :meth:`pathlib.Path.glob` (which, unlike
    :func:`glob.glob`, does not follow symbolic links to folders under ``**``). Without
    ``recursive``, ``**`` matches one path component like ``*``, as in :func:`glob.glob`."""
    parts = Path(pattern).parts
    i = next(k for k, part in enumerate(parts) if any(ch in part for ch in "*?["))
    root = Path(*parts[:i]) if i else Path(".")
    rest = "/".join(parts[i:])
    if not recursive:
        rest = rest.replace("**", "*")
    if not root.is_dir():
        return []
    return sorted(root.glob(rest))


def run_batch(
    items: Sequence[Any],
    fn: Callable[[Any], ItemResult | list[str] | None],
    label: str,
    name: Callable[[Any], str] = str,
    console=None,
    progress: bool = True,
) -> BatchReport:
    """Run ``fn`` on each item, isolating failures; progress bar on stderr."""
    from dpdeblur.errors import DpdeblurError, message

    console = console or stderr_console()
    results: list[ItemResult] = []
    t0 = time.perf_counter()

    def one(item) -> ItemResult:
        t = time.perf_counter()
        try:
            r = fn(item)
            if not isinstance(r, ItemResult):
                r = ItemResult(name(item), outputs=[str(o) for o in (r or [])])
        except DpdeblurError as e:
            r = ItemResult(name(item), status="failed", error=message(e))
        except MemoryError:
            r = ItemResult(name(item), status="failed", error="out of memory; use a smaller --tile")
        except Exception as e:  # noqa: BLE001 - a batch goes on past any bad item
            msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
            r = ItemResult(name(item), status="failed", error=f"{type(e).__name__}: {msg}")
        r.seconds = time.perf_counter() - t
        if r.status == "failed":
            console.print(f"[red]failed[/] {r.name}: {r.error}", highlight=False, soft_wrap=True)
        return r

    if progress and len(items) > 0:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        with Progress(
            TextColumn(f"[bold]{label}[/]"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.description}"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=console, transient=False,
        ) as bar:
            task = bar.add_task("", total=len(items))
            for item in items:
                bar.update(task, description=name(item))
                results.append(one(item))
                bar.advance(task)
    else:
        results = [one(item) for item in items]
    return BatchReport(label, results, time.perf_counter() - t0)
