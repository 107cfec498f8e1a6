"""Shell completions: the committed scripts are current and completion works without torch."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dpdeblur.cli.completions import SHELLS, completion_script

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("shell", sorted(SHELLS))
def test_committed_completion_scripts_are_current(shell):
    committed = (ROOT / "completions" / SHELLS[shell]).read_text()
    assert committed == completion_script(shell), (
        f"completions/{SHELLS[shell]} is stale: run `python -m dpdeblur.cli.completions completions/`"
    )


def test_bash_completion_lists_commands_and_skips_torch():
    code = (
        "import sys, os;"
        "os.environ.update({'_DPDEBLUR_COMPLETE': 'complete_bash', 'COMP_WORDS': 'dpdeblur mo', 'COMP_CWORD': '1'});"
        "from dpdeblur.cli import app;"
        "import contextlib, io;\n"
        "try:\n app(prog_name='dpdeblur')\n"
        "except SystemExit:\n pass\n"
        "print('TORCH', 'torch' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env).stdout
    assert "models" in out.split()
    assert "TORCH False" in out
