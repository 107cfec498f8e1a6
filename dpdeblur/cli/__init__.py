"""Command-line interface (``dpdeblur``). Thin: parse, call the library, print."""

from __future__ import annotations

import importlib

from dpdeblur.cli.app import app

# One module per command; each registers itself on ``app`` when imported.
_COMMANDS = (
    "deblur",
    "split_dp",
    "align",
    "train",
    "bench",
    "synth",
    "models",
)

for _mod in _COMMANDS:
    importlib.import_module(f"dpdeblur.cli.{_mod}")


def main() -> None:
    app()


__all__ = ["app", "main"]
