"""Shell completion scripts for ``dpdeblur`` (bash, zsh, fish).

The scripts call back into ``dpdeblur`` (Typer/Click dynamic completion), so they
stay valid as commands and options change; ``completions/`` holds the generated
copies and ``tests/test_completions.py`` fails when they are stale. Regenerate
with ``python -m dpdeblur.cli.completions completions/``.
"""

from __future__ import annotations

import sys
from pathlib import Path

SHELLS = {"bash": "dpdeblur.bash", "zsh": "_dpdeblur", "fish": "dpdeblur.fish"}
PROG = "dpdeblur"
COMPLETE_VAR = "_DPDEBLUR_COMPLETE"


def completion_script(shell: str) -> str:
    # a private typer API: pyproject.toml bounds typer to the versions that have it
    from typer._completion_shared import get_completion_script

    return get_completion_script(prog_name=PROG, complete_var=COMPLETE_VAR, shell=shell).rstrip("\n") + "\n"


def write_completions(out_dir: str | Path) -> list[Path]:
    from dpdeblur.utils.atomic import atomic_write_text

    out = []
    for shell, name in SHELLS.items():
        p = Path(out_dir) / name
        atomic_write_text(p, completion_script(shell))
        out.append(p)
    return out


if __name__ == "__main__":
    for p in write_completions(sys.argv[1] if len(sys.argv) > 1 else "completions"):
        print(p)
