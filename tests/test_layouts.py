"""Data set layouts: one view-name matcher, one definition per layout, one registry."""

import ast
import re
from pathlib import Path

import numpy as np
import pytest

from dpdeblur.data import find_pairs
from dpdeblur.data.layouts import (
    ALIGNED, DATASETS, DPDD, FLAT, LONG, PIXEL4, SAMPLES, SHORT, get_layout, list_layouts, match_view, view_id,
    view_stem,
)
from dpdeblur.errors import DataError, UsageError
from dpdeblur.inference.pipeline import collect_items
from dpdeblur.io.dpsplit import LAYOUTS, SPLITS, output_paths
from dpdeblur.io.images import write_image
from dpdeblur.io.raw import is_pair_file, pair_paths

PKG = Path(__file__).resolve().parents[1] / "dpdeblur"


@pytest.mark.parametrize("stem, want", [
    ("IMG_1_L", ("IMG_1", "left", SHORT)), ("a_r", ("a", "right", SHORT)), ("x_left", ("x", "left", LONG)),
    ("x_RIGHT", ("x", "right", LONG)), ("x_Left", ("x", "left", LONG)), ("_L", None), ("IMG_1", None),
    ("a_C", None), ("a_lefty", None), ("L", None),
])
def test_match_view(stem, want):
    m = match_view(stem)
    assert (m and (m.id, m.side, m.style)) == want or (m is None and want is None)


def test_view_styles_and_names():
    assert match_view("x_left", (SHORT,)) is None and match_view("x_L", (LONG,)) is None
    assert view_id("x_left") == "x" and view_id("x_left", (SHORT,)) == "x_left" and view_id("plain") == "plain"
    assert view_stem("a", "left") == "a_L" and view_stem("a", "right", LONG) == "a_right"
    assert view_stem("a", "left", LONG, like="RIGHT") == "a_LEFT" and view_stem("a", "right", LONG, like="left") == "a_right"


def test_registry():
    assert DATASETS == ("dpdd", "sdd", "gopro", "hide", "realdof", "folder")
    assert LAYOUTS == ("flat", "dpdd") == tuple(list_layouts("split-dp")) and SPLITS == DPDD.splits
    assert list_layouts("bench quality") == ["dpdd", "sdd", "gopro", "hide", "realdof", "folder", "pixel4"]
    assert get_layout("DPDD") is DPDD and get_layout("sdd").val_split == "test" and DPDD.val_split == "val"
    assert get_layout("folder").val_split is None and get_layout("hide").test_only and not PIXEL4.pairs
    assert DPDD.bit_depth == 16 and get_layout("sdd").bit_depth == 8 and get_layout("sdd").deformed_gt
    with pytest.raises(UsageError, match="choose one of dpdd, sdd, gopro, hide, realdof, folder, pixel4"):
        get_layout("pixel5", "bench quality")
    with pytest.raises(UsageError, match="unknown data set 'flat'"):
        find_pairs("flat", ".")
    with pytest.raises(UsageError, match="dpdd has splits train, val, test"):
        find_pairs("dpdd", PKG, "dev")


def test_dpdd_writers_and_readers_agree(tmp_path):
    """What synth and split-dp write is what train / bench and deblur read."""
    img = np.full((8, 8, 3), 0.5, np.float32)
    for i in ("a", "b"):
        paths = DPDD.item_paths(tmp_path, "test", i)
        assert {k: paths[k] for k in ("left", "right", "combined", "meta", "mask")} == output_paths(f"{i}.dng", tmp_path, "dpdd", "test")
        for k in ("left", "right", "combined", "sharp"):
            write_image(paths[k], img)
    assert [p.relative_to(tmp_path).as_posix() for p in DPDD.item_paths(tmp_path, "test", "a").values()] == [
        "test_c/source/a.png", "test_c/target/a.png", "test_l/source/a_L.png", "test_r/source/a_R.png",
        "test_c/meta/a.json", "test_c/mask/a.png"]
    s = find_pairs("dpdd", tmp_path, "test")
    assert [x.id for x in s.samples] == ["a", "b"] and s.has_views
    assert DPDD.splits_in(tmp_path) == ["test"]
    views = collect_items([tmp_path], dual_pixel=True)
    assert [(it.name, it.kind, [p.name for p in it.paths]) for it in views] == [
        ("test/a", "pair", ["a_L.png", "a_R.png"]), ("test/b", "pair", ["b_L.png", "b_R.png"])]
    assert [it.paths[0].name for it in collect_items([tmp_path], dual_pixel=False)] == ["a.png", "b.png"]
    assert [p.name for p in DPDD.split_folders(tmp_path)][:3] == ["train_c", "train_l", "train_r"]


def test_flat_samples_aligned_and_pixel_pairs(tmp_path):
    assert [p.name for p in FLAT.item_paths(tmp_path, "x").values()] == ["x_L.png", "x_R.png", "x_C.png", "x.json", "x_M.png"]
    assert FLAT.item_paths(tmp_path, "x", "gif")["wiggle"].name == "x_wiggle.gif"
    assert DPDD.item_paths(tmp_path, "val", "x", "webp")["wiggle"].relative_to(tmp_path).as_posix() == "val_c/wiggle/x.webp"
    assert output_paths("x_left.png", tmp_path, "dpdd", "val", "webp")["wiggle"] == DPDD.item_paths(tmp_path, "val", "x", "webp")["wiggle"]
    assert [p.relative_to(tmp_path).as_posix() for p in SAMPLES.item_paths(tmp_path, "x").values()] == [
        "x_L.png", "x_R.png", "combined/x.png", "sharp/x.png"]
    assert [p.relative_to(tmp_path).as_posix() for p in ALIGNED.item_paths(tmp_path, "x").values()] == [
        "gt/x.png", "mask/x.png", "flow/x.npy"]
    for name in ("IMG_LEFT.pgm", "IMG_RIGHT.pgm"):
        (tmp_path / name).write_bytes(b"")
    assert is_pair_file(tmp_path / "IMG_RIGHT.pgm") and not is_pair_file(tmp_path / "IMG_L.png")
    assert pair_paths(tmp_path / "IMG_RIGHT.pgm") == (tmp_path / "IMG_LEFT.pgm", tmp_path / "IMG_RIGHT.pgm", "IMG")


def test_pixel4_root(tmp_path):
    a = np.full((4, 6), 2000, np.uint16)
    for i in ("s1", "s2"):
        write_image(PIXEL4.view_path(tmp_path, i, "left"), a, bit_depth=16)
    write_image(PIXEL4.view_path(tmp_path, "s1", "right"), a, bit_depth=16)
    write_image(PIXEL4.gt_path(tmp_path, "s1"), a, bit_depth=16)
    assert PIXEL4.gt_path(tmp_path, "s1").relative_to(tmp_path).as_posix() == "gt_all_in_focus/s1_gt.png"
    assert PIXEL4.scene_ids(tmp_path) == ["s1"]  # s2 lacks its right view and reference
    with pytest.raises(DataError, match="no scene with"):
        PIXEL4.scene_ids(tmp_path / "gt_all_in_focus")


def _literals(node):
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        return [v.value for v in node.values if isinstance(v, ast.Constant)]
    return []


def test_one_definition_of_folder_and_view_names():
    """Outside layouts.py no path is joined from a layout's folder names and no regex or glob
    matches view suffixes: the issue's "a grep for a layout's folder names finds one definition"."""
    folders = {"source", "target", "train_patches", "test", "train", "val", "gt", "blur", "input", "sharp",
               "gt_all_in_focus", "calibration", "flow", "mask", "meta", "combined"}
    viewish = re.compile(r"(_[LRlrc]|_left|_right|_gt|_C|_M)(\.png)?$|white_sheet")
    hits = []
    for f in sorted(PKG.rglob("*.py")):
        if f.name == "layouts.py":
            continue
        for n in ast.walk(ast.parse(f.read_text())):
            if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Div):
                hits += [f"{f.name}:{n.lineno} {s!r}" for side in (n.left, n.right) for s in _literals(side)
                         if s in folders or viewish.search(s)]
            if isinstance(n, ast.Call) and getattr(n.func, "attr", "") in ("compile", "match", "sub", "search", "glob"):
                hits += [f"{f.name}:{n.lineno} {s!r}" for a in n.args[:1] for s in _literals(a)
                         if re.search(r"left|right|\[LR|_L\b|_R\b|\[lrc\]", s)]
    assert not hits, hits
