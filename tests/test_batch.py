"""Shared batch machinery: input expansion and failure isolation."""

import pytest

from dpdeblur.errors import InputError
from dpdeblur.utils.atomic import atomic_path, atomic_write_text
from dpdeblur.utils.batch import ItemResult, expand_inputs, run_batch


def test_expand_files_folders_globs(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "sub").mkdir()
    for p in ["a/1.png", "a/2.JPG", "a/x.txt", "a/sub/3.png", "b.png", "a/.hidden.png"]:
        (tmp_path / p).write_bytes(b"x")
    exts = [".png", ".jpg"]
    got = expand_inputs([tmp_path / "a"], exts)
    assert [p.name for p in got] == ["1.png", "2.JPG"]
    got = expand_inputs([tmp_path / "a"], exts, recursive=True)
    assert sorted(p.name for p in got) == ["1.png", "2.JPG", "3.png"]
    got = expand_inputs([str(tmp_path / "*.png"), tmp_path / "b.png"], exts)
    assert [p.name for p in got] == ["b.png"]  # de-duplicated
    # an explicit file is kept whatever its extension (reported later, not dropped)
    assert expand_inputs([tmp_path / "a" / "x.txt"], exts)[0].name == "x.txt"
    with pytest.raises(InputError, match="no such file"):
        expand_inputs([tmp_path / "missing.png"], exts)
    with pytest.raises(InputError, match="matches no"):
        expand_inputs([str(tmp_path / "*.tif")], exts)


def test_run_batch_isolates_failures():
    def fn(i):
        if i == 2:
            raise InputError("bad 2")
        if i == 3:
            raise ValueError("boom\nsecond line")
        if i == 4:
            return ItemResult(str(i), status="skipped")
        return [f"out{i}"]

    rep = run_batch([1, 2, 3, 4, 5], fn, label="t", progress=False)
    assert [i.status for i in rep.items] == ["ok", "failed", "failed", "skipped", "ok"]
    assert rep.items[1].error == "bad 2"
    assert rep.items[2].error == "ValueError: boom"
    assert rep.exit_code == 1
    d = rep.to_dict()
    assert (d["ok"], d["skipped"], d["failed"]) == (2, 1, 2)
    assert run_batch([1], fn, label="t", progress=False).exit_code == 0


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
