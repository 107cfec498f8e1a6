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


def _complete(words: str) -> tuple[list[str], bool]:
    """What bash completion offers for the last word of ``words``, and whether torch got imported."""
    code = (
        "import sys, os;"
        f"os.environ.update({{'_DPDEBLUR_COMPLETE': 'complete_bash', 'COMP_WORDS': {words!r}, 'COMP_CWORD': '{len(words.split(' ')) - 1}'}});"
        "from dpdeblur.cli import app;\n"
        "try:\n app(prog_name='dpdeblur')\n"
        "except SystemExit:\n pass\n"
        "print('TORCH', 'torch' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env).stdout.split()
    return [w for w in out if w not in ("TORCH", "True", "False") and not w.startswith("plain,")], "TORCH True" in " ".join(out)


@pytest.mark.parametrize("words, names", [
    ("dpdeblur deblur --blend ", {"hann", "linear", "crop"}),
    ("dpdeblur deblur --model dmtnet-", {"dmtnet-t", "dmtnet-s", "dmtnet-b", "dmtnet-l", "dmtnet-h"}),
    ("dpdeblur bench speed --precision fp32,b", {"fp32,bf16"}),
    ("dpdeblur synth --tone ", {"mixed", "srgb", "gamma", "none"}),
    ("dpdeblur train --dataset ", {"dpdd", "sdd", "gopro", "folder"}),
    ("dpdeblur split-dp --layout ", {"flat", "dpdd"}),
    ("dpdeblur bench quality --dataset p", {"pixel4"}),
    ("dpdeblur split-dp --wiggle ", {"gif", "webp"}),
    ("dpdeblur deblur --ext ", {"auto", "png", "tif", "jpg"}),
    ("dpdeblur models dmtnet-h", {"dmtnet-h"}),
])
def test_option_values_complete_from_the_library(words, names):
    """The shell completes choices from the library's own names, without torch where they are torch-free."""
    got, torch_imported = _complete(words)
    assert names <= set(got), got
    assert not torch_imported


def test_help_lists_the_library_choices_without_torch():
    code = (
        "import sys; from dpdeblur.cli import app; import typer.testing as tt;"
        "outs = [tt.CliRunner().invoke(app, c + ['--help'], terminal_width=250).output for c in "
        "(['deblur'], ['train'], ['synth'], ['align'], ['bench', 'speed'], ['bench', 'quality'], ['split-dp'])];"
        "print('\\n'.join(outs)); print('TORCH', 'torch' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "250"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env).stdout
    from dpdeblur import choices
    from dpdeblur.models import list_models

    for names in (choices.BLENDS, choices.PRECISIONS, choices.SCHEDULES, choices.TONES, choices.PSF_KINDS, choices.DIS_PRESETS,
                  choices.WARMUP_MODES, choices.MASK_NORMS, choices.OUTPUT_EXTS, choices.BIT_DEPTHS, choices.WIGGLE_FORMATS,
                  list_models()):
        assert "[" + "|".join(names) in out, names
    # data sets and layouts from the layout registry, each command its own
    from dpdeblur.data.layouts import list_layouts

    assert list_layouts("train", datasets=True) == ["dpdd", "sdd", "gopro", "folder"]
    for names in (list_layouts("train", datasets=True), list_layouts("bench quality", datasets=True),
                  list_layouts("split-dp"), ["train", "val", "test"]):
        assert "[" + "|".join(names) + "]" in out, names
    assert "|aligned" not in out and "|samples" not in out
    assert "TORCH False" in out
