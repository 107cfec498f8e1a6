"""Data set layouts: the one place that knows folder names, file names and splits.

Every command that reads or writes a data set asks a :class:`Layout` from here (``train``,
``bench quality``, ``deblur`` on a DPDD root, ``split-dp --layout``, ``synth``); view file
names are matched by :func:`match_view` alone. Layouts (``<root>`` is ``--data-root``):

=========  ======================================================================
dpdd       ``{train,val,test}_c/{source,target}/<id>.png`` (combined blurry / sharp),
           ``{split}_l/source/<id>_L.png``, ``{split}_r/source/<id>_R.png`` (16-bit);
           ``split-dp --layout dpdd`` adds ``{split}_c/meta/<id>.json``, ``{split}_c/mask/<id>.png``,
           ``{split}_c/wiggle/<id>.{gif,webp}``
sdd        train: ``train_patches/{blur,gt}``; val/test: ``test/{blur,gt}`` (8-bit)
gopro      ``{train,test}/{input,target}`` or ``{blur,sharp}``, or GoPro's own
           ``{train,test}/<scene>/{blur,sharp}``; val = test
hide       test only: ``test/{input,target}`` (MPRNet layout) or ``{blur,sharp}``
realdof    test only: ``{source,target}`` or ``test/{source,target}`` (IFAN layout)
folder     ``--blur DIR --sharp DIR``, or ``--left DIR --right DIR --sharp DIR``
           (``--blur`` optional with views); files paired by name
pixel4     Google Pixel 4 captures (Xin et al., ICCV 2021, arXiv:2110.05655):
           ``<id>_left.png``, ``<id>_right.png``, ``gt_all_in_focus/<id>_gt.png``,
           ``calibration/white_sheet_{left,right}.png`` (16-bit, one channel)
flat       ``split-dp`` default: ``<id>_L.png``, ``<id>_R.png``, ``<id>_C.png``,
           ``<id>.json`` (+ ``<id>_M.png``, ``<id>_wiggle.{gif,webp}``)
samples    ``assets/samples``: ``<id>_L.png``, ``<id>_R.png``, ``combined/<id>.png``, ``sharp/<id>.png``
aligned    ``align --out`` (read by ``train --flow-cache``): ``gt/<id>.png``, ``mask/<id>.png``,
           ``flow/<id>.npy``
=========  ======================================================================

View names: ``<id>_L`` / ``<id>_R`` (short, DPDD and this project's outputs) and ``<id>_left`` /
``<id>_right`` (long, Google Pixel pairs), any case. Torch-free and cheap to import (the CLI
builds its help from it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from dpdeblur.errors import DataError, UsageError

__all__ = [
    "SHORT", "LONG", "ViewName", "match_view", "view_id", "view_stem",
    "Layout", "DPDD", "SDD", "GOPRO", "HIDE", "REALDOF", "FOLDER", "PIXEL4", "FLAT", "SAMPLES", "ALIGNED",
    "DATASETS", "get_layout", "list_layouts",
]

# ----------------------------------------------------------------------------- view names

SHORT, LONG = "short", "long"
#: The suffix each style writes for each view.
_SUFFIX = {SHORT: {"left": "L", "right": "R"}, LONG: {"left": "left", "right": "right"}}
_VIEW_NAME = re.compile(r"^(?P<id>.+)_(?P<view>[LR]|left|right)$", re.IGNORECASE)


@dataclass(frozen=True)
class ViewName:
    """A view file's stem taken apart: ``IMG_1_L`` -> ``ViewName("IMG_1", "left", "short", "L")``."""

    id: str
    side: str  # "left" | "right"
    style: str  # SHORT (_L/_R) | LONG (_left/_right)
    suffix: str  # as written ("L", "r", "LEFT"...)


def match_view(stem: str, styles: tuple[str, ...] = (SHORT, LONG)) -> ViewName | None:
    """The view a file stem names (any case), or None; ``styles`` limits the accepted suffixes."""
    m = _VIEW_NAME.match(stem)
    if m is None:
        return None
    v = m["view"]
    style = SHORT if len(v) == 1 else LONG
    if style not in styles:
        return None
    return ViewName(m["id"], "left" if v.lower() in ("l", "left") else "right", style, v)


def view_id(stem: str, styles: tuple[str, ...] = (SHORT, LONG)) -> str:
    """``IMG_1_L`` -> ``IMG_1`` (a view's id); other stems unchanged."""
    m = match_view(stem, styles)
    return m.id if m else stem


def view_stem(item_id: str, side: str, style: str = SHORT, like: str | None = None) -> str:
    """The stem a view of ``item_id`` is written with: ``<id>_L`` (short) or ``<id>_left`` (long);
    ``like``: a suffix as written whose case to follow (lower case stays lower, else upper)."""
    suffix = _SUFFIX[style][side]
    if like is not None:
        suffix = suffix.lower() if like.islower() else suffix.upper()
    return f"{item_id}_{suffix}"


# ----------------------------------------------------------------------------- layouts


@dataclass(frozen=True)
class Layout:
    """One data set layout.

    Attributes:
        name: registry name (``--dataset`` / ``--layout`` value).
        summary: its folders in one line (messages and help).
        splits: the splits it has (``()``: none, one folder of items).
        val_split: the split ``train`` validates on (None: no validation).
        views: it holds dual-pixel views. bit_depth: of its files (None: whatever they are).
        commands: the commands that read or write it.
        scene_labels: ``bench quality`` reports indoor / outdoor rows (DPDD's scene lists).
        deformed_gt: ``bench quality`` scores against the flow-warped truth by default (SDD).
        test_only: an evaluation set; ``train`` refuses it.
        pairs: a data set of blurry / sharp pairs, listed by :func:`dpdeblur.data.find_pairs`
            (the others are read or written file by file through their own methods).
        dataset: a ``--dataset`` value of the commands that read it (the others are written by
            a command and read back through their own options: ``split-dp --layout``,
            ``train --flow-cache``).
    """

    name: str
    summary: str
    splits: tuple[str, ...] = ("train", "val", "test")
    val_split: str | None = None
    views: bool = False
    bit_depth: int | None = 8
    commands: tuple[str, ...] = ("train", "bench quality")
    scene_labels: bool = False
    deformed_gt: bool = False
    test_only: bool = False
    pairs: bool = True
    dataset: bool = True

    def split_name(self, split: str) -> str:
        """The name the split's image set carries (RealDOF has only ``test``)."""
        return split

    def groups(self, root: Path, split: str) -> list[tuple[str, dict[str, Path]]]:
        """``(prefix, {role: folder})`` per group of files that pair by id (roles among
        ``blur`` / ``sharp`` / ``left`` / ``right``; prefix ``""`` or a scene folder)."""
        raise NotImplementedError(f"{self.name} is not a set of image pairs")


def _first_existing(root: Path, *options: tuple[str, str]) -> tuple[Path, Path]:
    for b, s in options:
        if (root / b).is_dir() and (root / s).is_dir():
            return root / b, root / s
    raise DataError(
        f"{root}: none of the expected folder pairs exists ({', '.join(f'{b} + {s}' for b, s in options)}); "
        "check data_root (the folder holding the data set)", settings=("data_root",)
    )


def _test_only(layout: Layout, split: str) -> None:
    if layout.test_only and split == "train":
        from dpdeblur.errors import UsageError

        raise UsageError(f"dataset {layout.name} is a test-only data set; train on another one and evaluate on it",
                         settings=("dataset",))


@dataclass(frozen=True)
class _DPDD(Layout):
    """DPDD (Abuolaim & Brown, ECCV 2020, arXiv:2005.00305) and everything written like it."""

    #: folder letter of each view: ``<split>_c`` combined, ``<split>_l`` left, ``<split>_r`` right
    FOLDER = {"combined": "c", "left": "l", "right": "r"}

    def folder(self, root: Path, split: str, view: str) -> Path:
        """``<root>/<split>_{c,l,r}``."""
        return Path(root) / f"{split}_{self.FOLDER[view]}"

    def source(self, root: Path, split: str, view: str) -> Path:
        """Where the blurry images of ``view`` (combined / left / right) lie."""
        return self.folder(root, split, view) / "source"

    def check_split(self, split: str) -> None:
        if split not in self.splits:
            raise UsageError(f"dpdd has splits {', '.join(self.splits)} (got {split!r})")

    def groups(self, root: Path, split: str) -> list[tuple[str, dict[str, Path]]]:
        self.check_split(split)
        return [("", {"blur": self.source(root, split, "combined"), "sharp": self.folder(root, split, "combined") / "target",
                      "left": self.source(root, split, "left"), "right": self.source(root, split, "right")})]

    def item_paths(self, root: Path, split: str, item_id: str, wiggle: str | None = None) -> dict[str, Path]:
        """Files of one item: ``combined``, ``sharp``, ``left``, ``right``, ``meta``, ``mask``
        (+ ``wiggle``, ``<split>_c/wiggle/<id>.<wiggle>``, when a wiggle format is given)."""
        c = self.folder(root, split, "combined")
        out = {"combined": c / "source" / f"{item_id}.png", "sharp": c / "target" / f"{item_id}.png",
               "left": self.source(root, split, "left") / f"{view_stem(item_id, 'left')}.png",
               "right": self.source(root, split, "right") / f"{view_stem(item_id, 'right')}.png",
               "meta": c / "meta" / f"{item_id}.json", "mask": c / "mask" / f"{item_id}.png"}
        if wiggle:
            out["wiggle"] = c / "wiggle" / f"{item_id}.{wiggle}"
        return out

    def split_folders(self, root: Path) -> list[Path]:
        """Every folder of the layout under ``root`` (what a writer owns and may replace)."""
        return [self.folder(root, s, v) for s in self.splits for v in ("combined", "left", "right")]

    def splits_in(self, folder: Path) -> list[str]:
        """Split names (``test``...) of a DPDD-layout root: any ``<split>_{l,r,c}/source`` folder."""
        letters = "".join(sorted(self.FOLDER.values()))
        return sorted({d.name[:-2] for d in Path(folder).glob(f"*_[{letters}]") if (d / "source").is_dir()})


@dataclass(frozen=True)
class _SDD(Layout):
    """SDD (Li et al., JDRL, CVPR 2023, arXiv:2303.07567): misaligned pairs, so scored against a deformed truth."""

    def groups(self, root: Path, split: str) -> list[tuple[str, dict[str, Path]]]:
        base = Path(root) / ("train_patches" if split == "train" else "test")
        return [("", {"blur": base / "blur", "sharp": base / "gt"})]


@dataclass(frozen=True)
class _Folders(Layout):
    """GoPro / HIDE: ``{train,test}/{input,target}`` or ``{blur,sharp}``; GoPro also per scene."""

    scenes: bool = False

    def groups(self, root: Path, split: str) -> list[tuple[str, dict[str, Path]]]:
        _test_only(self, split)
        sub = Path(root) / ("train" if split == "train" else "test")
        if self.scenes and sub.is_dir() and not any((sub / d).is_dir() for d in ("input", "blur")):
            scenes = sorted(d for d in sub.iterdir() if (d / "blur").is_dir())
            if scenes:
                return [(d.name, {"blur": d / "blur", "sharp": d / "sharp"}) for d in scenes]
        b, s = _first_existing(sub, ("input", "target"), ("blur", "sharp"))
        return [("", {"blur": b, "sharp": s})]


@dataclass(frozen=True)
class _RealDOF(Layout):
    def split_name(self, split: str) -> str:
        return "test"

    def groups(self, root: Path, split: str) -> list[tuple[str, dict[str, Path]]]:
        _test_only(self, split)
        b, s = _first_existing(Path(root), ("source", "target"), ("test/source", "test/target"))
        return [("", {"blur": b, "sharp": s})]


@dataclass(frozen=True)
class _UserFolders(Layout):
    """``--blur`` / ``--sharp`` / ``--left`` / ``--right`` folders given one by one."""

    def folders(self, blur=None, sharp=None, left=None, right=None) -> dict[str, Path]:
        if sharp is None or (blur is None and (left is None or right is None)):
            raise UsageError("dataset folder needs sharp DIR and blur DIR, or left DIR right DIR (views)",
                             settings=("dataset", "sharp", "blur", "left", "right"))
        if (left is None) != (right is None):
            raise UsageError("left and right go together", settings=("left", "right"))
        out = {"sharp": Path(sharp)}
        if blur is not None:
            out["blur"] = Path(blur)
        if left is not None:
            out.update(left=Path(left), right=Path(right))
        return out


@dataclass(frozen=True)
class _Pixel4(Layout):
    """Real Pixel 4 captures in Xin et al.'s layout (scored by :mod:`dpdeblur.data.pixel4`)."""

    GT_DIR, CALIB_DIR = "gt_all_in_focus", "calibration"

    def view_path(self, root: Path, scene: str, side: str) -> Path:
        return Path(root) / f"{view_stem(scene, side, LONG)}.png"

    def gt_path(self, root: Path, scene: str) -> Path:
        return Path(root) / self.GT_DIR / f"{scene}_gt.png"

    def white_sheet(self, root: Path, side: str) -> Path:
        return Path(root) / self.CALIB_DIR / f"white_sheet_{side}.png"

    def scene_ids(self, root: str | Path) -> list[str]:
        """Ids of the scenes that have both views and a reference (sorted)."""
        root = Path(root)
        if not root.is_dir():
            what = "is a file, not a folder" if root.exists() else "folder not found"
            raise DataError(f"{root}: {what}; give the root folder of a Pixel 4 data set ({self.summary})")
        tail = f"{view_stem('', 'left', LONG)}.png"  # "_left.png"
        ids = sorted(p.name[: -len(tail)] for p in root.glob(f"*{tail}"))
        ok = [i for i in ids if self.view_path(root, i, "right").is_file() and self.gt_path(root, i).is_file()]
        if not ok:
            raise DataError(f"{root}: no scene with <id>_left.png, <id>_right.png and {self.GT_DIR}/<id>_gt.png")
        return ok


@dataclass(frozen=True)
class _Flat(Layout):
    """One folder, the views beside each other (``split-dp --layout flat``, ``assets/samples``)."""

    #: sub-folders for the combined image and the truth (``None``: ``<id>_C.png`` beside the views)
    combined_dir: str | None = None

    def item_paths(self, root: Path, item_id: str, wiggle: str | None = None) -> dict[str, Path]:
        """Files of one item: ``left``, ``right``, ``combined`` and ``meta``/``mask`` or ``sharp``
        (+ ``wiggle``, ``<id>_wiggle.<wiggle>``, when a wiggle format is given)."""
        o = Path(root)
        views = {s: o / f"{view_stem(item_id, s)}.png" for s in ("left", "right")}
        if self.combined_dir is None:
            out = {**views, "combined": o / f"{item_id}_C.png", "meta": o / f"{item_id}.json", "mask": o / f"{item_id}_M.png"}
        else:
            out = {**views, "combined": o / self.combined_dir / f"{item_id}.png", "sharp": o / "sharp" / f"{item_id}.png"}
        if wiggle:
            out["wiggle"] = o / f"{item_id}_wiggle.{wiggle}"
        return out


@dataclass(frozen=True)
class _Aligned(Layout):
    """``dpdeblur align --out``: per pair the truth warped onto the input, its valid mask and the flow."""

    def item_paths(self, root: Path, item_id: str) -> dict[str, Path]:
        """Files of one pair: ``gt`` (PNG), ``mask`` (8-bit PNG), ``flow`` (``.npy``)."""
        o = Path(root)
        return {"gt": o / "gt" / f"{item_id}.png", "mask": o / "mask" / f"{item_id}.png", "flow": o / "flow" / f"{item_id}.npy"}


DPDD = _DPDD("dpdd", "{split}_c/{source,target}/<id>.png, {split}_l/source/<id>_L.png, {split}_r/source/<id>_R.png",
             val_split="val", views=True, bit_depth=16, scene_labels=True,
             commands=("train", "bench quality", "deblur", "split-dp", "synth"))
SDD = _SDD("sdd", "train_patches/{blur,gt}, test/{blur,gt}", splits=("train", "test"), val_split="test", deformed_gt=True)
GOPRO = _Folders("gopro", "{train,test}/{input,target} or {blur,sharp} or {train,test}/<scene>/{blur,sharp}",
                 splits=("train", "test"), val_split="test", scenes=True)
HIDE = _Folders("hide", "test/{input,target} or test/{blur,sharp}", splits=("test",), commands=("bench quality",),
               test_only=True)
REALDOF = _RealDOF("realdof", "{source,target} or test/{source,target}", splits=("test",), commands=("bench quality",),
                   test_only=True)
FOLDER = _UserFolders("folder", "--blur DIR --sharp DIR, or --left DIR --right DIR --sharp DIR", splits=(),
                      bit_depth=None)
PIXEL4 = _Pixel4("pixel4", "<id>_left.png/<id>_right.png + gt_all_in_focus/", splits=(), pairs=False, views=True, bit_depth=16,
                 commands=("bench quality",))
FLAT = _Flat("flat", "<id>_L.png, <id>_R.png, <id>_C.png, <id>.json", splits=(), pairs=False, views=True, bit_depth=16,
             commands=("split-dp",), dataset=False)
SAMPLES = _Flat("samples", "<id>_L.png, <id>_R.png, combined/<id>.png, sharp/<id>.png", splits=(), pairs=False, views=True,
                bit_depth=16, commands=("synth_samples",), combined_dir="combined", dataset=False)
ALIGNED = _Aligned("aligned", "gt/<id>.png, mask/<id>.png, flow/<id>.npy", splits=(), pairs=False, bit_depth=None,
                   commands=("align", "train"), dataset=False)

_REGISTRY: dict[str, Layout] = {x.name: x for x in (FLAT, DPDD, SDD, GOPRO, HIDE, REALDOF, FOLDER, PIXEL4, SAMPLES, ALIGNED)}

#: Data sets of image pairs (``train --dataset``, ``bench quality --dataset``), in help order.
DATASETS = tuple(n for n, x in _REGISTRY.items() if x.pairs)


def list_layouts(command: str | None = None, *, datasets: bool = False) -> list[str]:
    """Names of the layouts ``command`` reads or writes (all when None), registry order;
    ``datasets``: only those it takes as ``--dataset`` (``train``: dpdd, sdd, gopro, folder)."""
    return [n for n, x in _REGISTRY.items()
            if (command is None or command in x.commands) and (x.dataset or not datasets)]


def get_layout(name: str, command: str | None = None) -> Layout:
    """The layout called ``name``; a usage error listing the choices (those of ``command``) otherwise."""
    names = list_layouts(command)
    x = _REGISTRY.get(str(name).lower())
    if x is None or x.name not in names:
        raise UsageError(f"unknown data set {name!r}; choose one of {', '.join(names)}")
    return x



