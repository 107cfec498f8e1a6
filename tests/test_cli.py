"""CLI basics: instant help without torch, models table and JSON, exit codes."""

import json
import os
import subprocess
import sys
import time

import pytest

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}


def run(*args, **kw):
    return subprocess.run([sys.executable, "-m", "dpdeblur", *args], capture_output=True, text=True, env=ENV, **kw)


def test_help_does_not_import_torch_or_numpy():
    """What keeps --help and completion instant. Not timed here (a unit test on a busy machine
    times the machine): `python -X importtime -m dpdeblur --help` shows the cost."""
    code = (
        "import sys, time; t=time.perf_counter();"
        "from dpdeblur.cli import app;"
        "import typer.testing as tt; r=tt.CliRunner().invoke(app, ['--help']);"
        "r2=tt.CliRunner().invoke(app, ['models','--help']);"
        "assert r.exit_code==0 and r2.exit_code==0, (r.output, r2.output);"
        "print(time.perf_counter()-t, 'torch' in sys.modules, 'numpy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, check=True).stdout.split()
    assert out[1] == "False", "torch imported by --help"
    assert out[2] == "False", "numpy imported by --help"


@pytest.mark.parametrize("cmd", [[], ["models"]])
def test_subcommand_help_no_torch(cmd):
    code = (
        "import sys; from dpdeblur.cli import app; import typer.testing as tt;"
        f"r=tt.CliRunner().invoke(app, {cmd + ['--help']!r}); assert r.exit_code==0;"
        "print('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, check=True).stdout.strip() == "False"


def test_models_json_lists_cards():
    r = run("models", "--json")
    assert r.returncode == 0, r.stderr
    cards = json.loads(r.stdout)
    by = {c["name"]: c for c in cards}
    assert by["dmtnet-h"]["params"] == 48267690
    assert by["dmtnet-t"]["views"] == ["right", "left"]
    assert by["dmtnet-b"]["paper_macs"] == 1294410000000


def test_models_table_shows_both_columns():
    r = run("models")
    assert r.returncode == 0
    assert "dmtnet-h" in r.stdout and "paper params" in r.stdout and "48.24M" in r.stdout and "48.27M" in r.stdout


def test_unknown_model_exit_2_one_line():
    r = run("models", "dmtnet-zz")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "unknown model" in r.stderr


def test_readme_test_command_is_what_ci_runs():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text().splitlines()
    first = [l for l in readme if l.startswith("python3 -m venv")]
    assert len(first) >= 2, "README must open with the two set-up commands"
    test_cmd = first[1].split("&&")[-1].strip()
    ci = (root / ".ci" / "run").read_text()
    assert test_cmd in ci
    assert "torch==2.13.0" in first[0] and "torch==2.13.0" in first[1]


@pytest.mark.parametrize("cmd, old", [
    (["deblur", "{d}/in.png", "--model", "dmtnet-t"], ["--output-dir"]),
    (["split-dp", "{d}/in.dng"], ["--outdir"]),
    (["synth", "--count", "1"], []),  # the old positional OUT
])
def test_old_output_folder_spellings_still_work_with_a_note(tmp_path, cmd, old):
    """`--out`/`-o` is the output folder everywhere; the old spellings are hidden aliases that still
    reach the same checks (here: a file where a folder belongs) and print a one-line deprecation note."""
    from typer.testing import CliRunner

    from dpdeblur.cli import app

    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    args = [a.replace("{d}", str(tmp_path)) for a in cmd] + old + [str(afile)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2 and "afile" in r.output and "is a file" in r.output, r.output
    assert "deprecated:" in r.output and "is now --out" in r.output
    assert "--output-dir" not in CliRunner().invoke(app, [cmd[0], "--help"]).output  # hidden
    r = CliRunner().invoke(app, [a.replace("{d}", str(tmp_path)) for a in cmd] + ["-o", str(tmp_path / "other")] + old + [str(afile)])
    assert r.exit_code == 2 and "disagree" in r.output, r.output


def test_synth_positional_out_still_writes_the_data_set(tmp_path):
    from typer.testing import CliRunner

    from dpdeblur.cli import app

    r = CliRunner().invoke(app, ["synth", str(tmp_path / "ds"), "--count", "1", "--size", "32x24", "--json"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "ds" / "synth.json").is_file() and "deprecated:" in r.stderr


def test_bench_report_file_is_report_and_old_output_is_an_alias(tmp_path):
    from typer.testing import CliRunner

    from dpdeblur.cli import app

    for sub in ("speed", "quality"):
        help_text = CliRunner().invoke(app, ["bench", sub, "--help"]).output
        assert "--report" in help_text and "--output" not in help_text
    r = CliRunner().invoke(app, ["bench", "speed", "-m", "dmtnet-t", "--report", str(tmp_path / "a.json"), "-o", str(tmp_path / "b.json")])
    assert r.exit_code == 2 and "disagree" in r.output and "--report" in r.output, r.output


def test_library_never_imports_the_cli():
    """Layering: only dpdeblur/cli/ (and __main__) import dpdeblur.cli; the library takes a console."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "dpdeblur"
    bad = []
    for f in root.rglob("*.py"):
        if f.parent.name == "cli" or f.name == "__main__.py":
            continue
        for node in ast.walk(ast.parse(f.read_text())):
            mods = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in getattr(node, "names", [])] if isinstance(node, ast.Import) else []
            bad += [f"{f.relative_to(root)}: {m}" for m in mods if m == "dpdeblur.cli" or m.startswith("dpdeblur.cli.")]
    assert not bad, bad


def test_library_errors_name_settings_and_the_cli_spells_them_as_its_flags(tmp_path):
    """Library messages name settings, never flags; the CLI turns each into the running command's flag."""
    from dpdeblur.cli.app import with_flags
    from dpdeblur.data.sets import find_pairs
    from dpdeblur.data.synth import SynthParams, parse_range, parse_split
    from dpdeblur.errors import DataError, UsageError
    from dpdeblur.inference.pipeline import check_deblur_options, check_output_options
    from dpdeblur.io.dpsplit import check_split_options

    cases = [
        (lambda: SynthParams(noise=3.0).check(), "noise 3.0: use 0 to 0.5", {"--noise"}, "--noise 3.0: use"),
        (lambda: parse_split("train=x", 10), "split 'train=x'", {"--split"}, "--split 'train=x'"),
        (lambda: parse_range("1", "exposure"), "exposure '1'", {"--exposure"}, "--exposure '1'"),
        (lambda: check_split_options(black_level=5000, white_level=10), "black_level 5000 must be below white_level 10",
         {"--black-level", "--white-level"}, "--black-level 5000 must be below --white-level 10"),
        (lambda: check_deblur_options(stored_view="up"), "stored_view 'up': choose left or right", {"--stored-view"},
         "--stored-view 'up'"),
        (lambda: check_output_options(suffix="a/b"), "choose another folder with out_dir DIR", {"--suffix", "--out"},
         "--suffix 'a/b': no path separators; choose another folder with --out DIR"),
        (lambda: find_pairs("sdd"), "dataset sdd needs data_root DIR", {"--dataset", "--data-root"},
         "--dataset sdd needs --data-root DIR"),
        (lambda: find_pairs("sdd", tmp_path), "check data_root", {"--data-root"}, "check --data-root"),
    ]
    for call, lib, known, cli in cases:
        with pytest.raises((UsageError, DataError)) as e:
            call()
        msg = str(e.value)
        assert lib in msg and "--" not in msg, msg
        assert cli in with_flags(e.value, known)
        assert with_flags(e.value, set()) == msg  # a setting the command has no flag for keeps its name
