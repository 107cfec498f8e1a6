"""Choices on the command line: ``--help`` lists them and the shell completes them.

The names come from the library (:mod:`dpdeblur.choices`, the model registry, the data-set
layouts); the library also checks them, so the CLI only lists and translates. Nothing here
imports torch or numpy at import time: names that live in heavier modules are read only when
the shell asks to complete them.
"""

from __future__ import annotations

from typing import Callable, Sequence

Names = Sequence[str] | Callable[[], Sequence[str]]


def _names(source: Names) -> list[str]:
    return list(source() if callable(source) else source)


def choice(source: Names, *, listed: bool = True, extra: Sequence[str] = (), comma: bool = False) -> dict:
    """Keyword arguments for ``typer.Option``: a ``[a|b|c]`` metavar in ``--help`` (when
    ``listed``; ``source`` must then be cheap) and shell completion of the names (``extra``:
    forms shown but not completed, e.g. ``cuda:N``; ``comma``: a comma-separated list)."""

    def complete(incomplete: str) -> list[str]:
        head, _, last = incomplete.rpartition(",") if comma else ("", "", incomplete)
        prefix = head + "," if head else ""
        return [prefix + n for n in _names(source) if n.startswith(last)]

    kw: dict = {"autocompletion": complete}
    if listed:
        names = _names(source) + list(extra)
        kw["metavar"] = "[" + "|".join(names) + "]" + ("[,...]" if comma else "")
    return kw


def models() -> list[str]:
    """Registered model names (the registry imports no torch until a model is built)."""
    from dpdeblur.models import list_models

    return list_models()


def datasets(command: str) -> list[str]:
    """The data sets ``command`` takes as ``--dataset`` (the layout registry, torch- and numpy-free)."""
    from dpdeblur.data.layouts import list_layouts

    return list_layouts(command, datasets=True)


def split_layouts() -> list[str]:
    """``split-dp --layout`` values (the layout registry)."""
    from dpdeblur.data.layouts import list_layouts

    return list_layouts("split-dp")


def splits() -> Sequence[str]:
    """DPDD's splits (the layout registry)."""
    from dpdeblur.data.layouts import DPDD

    return DPDD.splits


def losses() -> list[str]:
    """Registered criteria (imports torch: completion only)."""
    from dpdeblur.losses.criteria import list_criteria

    return list_criteria()


def recipes() -> list[str]:
    """``paper`` (the model family's), ``none`` and the named recipes (imports torch: completion only)."""
    from dpdeblur.train.config import RECIPES

    return ["paper", "none", *RECIPES]


def patch_modes() -> Sequence[str]:
    from dpdeblur.data.patches import PATCH_MODES

    return PATCH_MODES
