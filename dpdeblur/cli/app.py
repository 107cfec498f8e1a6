"""The Typer application and the helpers every command shares.

Commands live one per module in this package and stay thin: parse, call the
library, print. Nothing here imports torch.
"""

from __future__ import annotations

import functools
import json
import sys
from typing import Any, Callable

import typer

app = typer.Typer(
    name="dpdeblur",
    help="Dual-pixel defocus and motion deblurring: raw file to sharp image, data set to benchmarked model.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from dpdeblur import __version__

        typer.echo(f"dpdeblur {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Dual-pixel defocus and motion deblurring: raw file to sharp image, data set to benchmarked model."""


@functools.lru_cache(maxsize=None)
def err_console():
    """Rich console on stderr (progress, warnings, tables meant for people); one per process."""
    from dpdeblur.utils.batch import stderr_console

    return stderr_console()


def out_console():
    """Rich console on stdout for human-readable results; wide when piped."""
    from rich.console import Console

    c = Console()
    return c if c.is_terminal else Console(width=160)


def print_json(obj: Any) -> None:
    """Results for scripts: one strict JSON document on stdout (an infinite or NaN number is null)."""
    from dpdeblur.utils.jsonsafe import json_safe

    sys.stdout.write(json.dumps(json_safe(obj), indent=2, allow_nan=False) + "\n")
    sys.stdout.flush()


def fail(message: str, code: int = 1) -> None:
    """One-line error on stderr and exit with ``code``."""
    from rich.markup import escape

    err_console().print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def renamed(new: str, value: Any, old: str, old_value: Any) -> Any:
    """The value of an option that a command also takes under an old spelling (a hidden alias).

    Old scripts keep working: the old spelling gives its value with a one-line deprecation
    note on stderr; both spellings with different values are a usage error.
    """
    if old_value is None:
        return value
    err_console().print(f"[yellow]deprecated:[/] {old} is now {new}; the old spelling will be removed",
                        highlight=False, soft_wrap=True)
    if value is not None and value != old_value:
        from dpdeblur.errors import UsageError

        raise UsageError(f"{new} {value} and {old} {old_value} disagree; pass {new} only")
    return old_value


def comma_list(values: str | list[str] | None) -> list[str]:
    """``"a,b"`` or ``["a,b", "c"]`` (a repeated option) -> ``["a", "b", "c"]``; blanks dropped."""
    if isinstance(values, str):
        values = [values]
    return [x.strip() for v in values or [] for x in v.split(",") if x.strip()]


def require(value: Any, flag: str, what: str) -> Any:
    """Usage error (exit 2) when a required option, made optional to admit an old spelling, is missing."""
    if value is None:
        from dpdeblur.errors import UsageError

        raise UsageError(f"missing option {flag}: {what}")
    return value


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Python warnings (ours and the libraries') as one ``warning:`` line on stderr."""
    from rich.markup import escape

    text = " ".join(str(message).split())
    err_console().print(f"[yellow]warning:[/] {escape(text)}", highlight=False, soft_wrap=True)


#: Settings whose flag is not ``--`` + the name with dashes.
FLAGS = {"num_workers": "--workers", "out_dir": "--out"}


def flag(setting: str) -> str:
    """The command-line flag of a library setting: ``batch_size`` -> ``--batch-size``."""
    return FLAGS.get(setting, "--" + setting.replace("_", "-"))


def _flags_of(fn: Callable) -> set[str]:
    """The option spellings a command function declares (its ``typer.Option`` defaults)."""
    import inspect

    from typer.models import OptionInfo

    out: set[str] = set()
    for p in inspect.signature(fn).parameters.values():
        if isinstance(p.default, OptionInfo):  # no spelling given: typer's --name-with-dashes
            out.update(d for d in p.default.param_decls or ("--" + p.name.replace("_", "-"),) if d.startswith("-"))
    return out


def with_flags(e, known: set[str]) -> str:
    """A library usage error's message with the settings it names spelled as the command's flags
    (``known``); a setting the command has no flag for (e.g. a config-file key) keeps its name."""
    import re

    msg = str(e)
    for name in getattr(e, "settings", ()):
        if flag(name) in known:
            msg = re.sub(rf"(?<![\w-]){re.escape(name)}(?= )", flag(name), msg)
    return msg


def guarded(fn: Callable) -> Callable:
    """Turn library errors into one-line messages and exit codes (1, 2 for usage); a command run
    with ``--json`` also gets ``{"error": ..., "exit_code": ...}`` on stdout."""

    known = _flags_of(fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import warnings

        from dpdeblur.errors import DpdeblurError, UsageError, rendering

        def stop(message: str, code: int) -> None:
            if kwargs.get("as_json"):  # scripts reading --json get a document on failure too
                print_json({"error": message, "exit_code": code})
            fail(message, code)

        try:
            with warnings.catch_warnings(), rendering(lambda e: with_flags(e, known)):
                warnings.showwarning = _show_warning  # one line each, no source excerpt
                return fn(*args, **kwargs)
        except UsageError as e:
            stop(with_flags(e, known), 2)
        except DpdeblurError as e:
            stop(with_flags(e, known), 1)
        except KeyboardInterrupt:
            fail("interrupted", 130)

    return wrapper
