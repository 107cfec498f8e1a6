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


def test_recursive_glob_does_not_follow_link_loops(tmp_path):
    """``**`` with recursion does not follow symbolic links to folders (a loop would never end)."""
    sub = tmp_path / "a" / "sub"
    sub.mkdir(parents=True)
    (sub / "1.png").write_bytes(b"x")
    (tmp_path / "a" / "2.png").write_bytes(b"x")
    (sub / "up").symlink_to("..")
    (sub / "up2").symlink_to("../..")
    got = expand_inputs([str(tmp_path / "**" / "*.png")], [".png"], recursive=True)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in got) == ["a/2.png", "a/sub/1.png"]
    got = expand_inputs([str(tmp_path / "a" / "**" / "*.png")], [".png"], recursive=False)  # ** = * then
    assert [p.name for p in got] == ["1.png"]
    got = expand_inputs([str(tmp_path / "a" / "*.png")], [".png"], exclude=lambda p: p.stem == "2")
    assert got == []  # everything the pattern matched was excluded: no error, nothing to do


def test_atomic_group_writes_all_or_nothing(tmp_path):
    from dpdeblur.errors import OutputError
    from dpdeblur.utils.atomic import atomic_group

    paths = {k: tmp_path / f"{k}.txt" for k in "abc"}
    with atomic_group(paths) as tmp:
        for k, p in tmp.items():
            assert p.parent == tmp_path and p.suffix == ".txt" and not paths[k].exists()
            p.write_text(k)
    assert {k: p.read_text() for k, p in paths.items()} == {"a": "a", "b": "b", "c": "c"}
    with pytest.raises(RuntimeError):
        with atomic_group(paths) as tmp:
            tmp["a"].write_text("new")
            raise RuntimeError("the item failed half-way")
    assert paths["a"].read_text() == "a" and sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt", "c.txt"]
    (tmp_path / "d.txt").mkdir()  # a folder in the way: refused before anything is written
    with pytest.raises(OutputError, match="folder is in the way"):
        with atomic_group({"a": paths["a"], "d": tmp_path / "d.txt"}):
            pass
    assert paths["a"].read_text() == "a"
