"""Data set layouts: find the image pairs of a split and check them before training.

Layouts (``<root>`` is ``--data-root``):

=========  ======================================================================
dpdd       ``{train,val,test}_c/{source,target}/<id>.png`` (combined blurry / sharp),
           ``{split}_l/source/<id>_L.png``, ``{split}_r/source/<id>_R.png`` (16-bit)
sdd        train: ``train_patches/{blur,gt}``; val/test: ``test/{blur,gt}`` (8-bit)
gopro      ``{train,test}/{input,target}`` or ``{blur,sharp}``, or GoPro's own
           ``{train,test}/<scene>/{blur,sharp}``; val = test
hide       test only: ``test/{input,target}`` (MPRNet layout) or ``{blur,sharp}``
realdof    test only: ``{source,target}`` or ``test/{source,target}`` (IFAN layout)
folder     ``--blur DIR --sharp DIR``, or ``--left DIR --right DIR --sharp DIR``
           (``--blur`` optional with views); files paired by name
=========  ======================================================================

Files pair by stem; view files may end in ``_L``/``_R`` (or ``_left``/``_right``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from dpdeblur.errors import DataError, UsageError, few
from dpdeblur.io.images import IMAGE_EXTS

__all__ = ["DATASETS", "Sample", "ImageSet", "find_pairs", "check_fit", "check_readable"]

DATASETS = ("dpdd", "sdd", "gopro", "hide", "realdof", "folder")
_VIEW_SUFFIX = re.compile(r"(_L|_R|_left|_right)$", re.IGNORECASE)


@dataclass(frozen=True)
class Sample:
    """One training/test item: file paths (None where the set lacks that image)."""

    id: str
    sharp: Path
    blur: Path | None = None
    left: Path | None = None
    right: Path | None = None

    def files(self) -> list[Path]:
        return [p for p in (self.left, self.right, self.blur, self.sharp) if p is not None]


@dataclass
class ImageSet:
    """The pairs of one split of a data set."""

    name: str
    split: str
    samples: list[Sample]
    has_views: bool
    sizes: list[tuple[int, int]] = field(default_factory=list)  # (H, W), filled by check_readable

    def __len__(self) -> int:
        return len(self.samples)


_ROLE_SUFFIX = {"left": ("_l", "_left"), "right": ("_r", "_right")}


def _images(d: Path, role: str = "") -> dict[str, Path]:
    """Image files of ``d`` by id (stem without a view suffix). For the ``left`` / ``right``
    roles, a folder that holds both views (``<id>_L`` and ``<id>_R`` side by side) contributes
    only its files of that view; two files with one id are an error."""
    if not d.is_dir():
        raise DataError(f"{d}: folder not found; check --data-root and the data set layout (dpdeblur train --help)")
    files = [p for p in sorted(d.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_EXTS and not p.name.startswith(".")]
    own = _ROLE_SUFFIX.get(role)
    if own and any(p.stem.lower().endswith(own) for p in files):
        files = [p for p in files if p.stem.lower().endswith(own)]
    out: dict[str, Path] = {}
    clashes = []
    for p in files:
        key = _VIEW_SUFFIX.sub("", p.stem)
        if key in out:
            clashes.append(f"{out[key].name} and {p.name}")
        out[key] = p
    if clashes:
        raise DataError(f"{d}: files that pair as the same image: {few(clashes)}; keep one per id (or split views into --left/--right folders)")
    return out


def _pair(name: str, split: str, folders: dict[str, Path]) -> ImageSet:
    """Pair the files of ``folders`` (role -> dir, roles among blur/sharp/left/right) by stem."""
    found = {role: _images(d, role) for role, d in folders.items()}
    ids = sorted(set().union(*found.values()))
    unpaired = []
    for i in ids:
        missing = [r for r in found if i not in found[r]]
        if missing:
            have = next(found[r][i] for r in found if i in found[r])
            unpaired.append(f"{have} (no {'/'.join(missing)} image)")
    if unpaired:
        raise DataError(f"{name} {split}: unpaired files: {few(unpaired)}; remove them or add their partners")
    if not ids:
        raise DataError(f"{name} {split}: no images in {few(list(folders.values()))}")
    samples = [Sample(id=i, **{r: found[r][i] for r in found}) for i in ids]
    return ImageSet(name, split, samples, has_views="left" in folders)


def _first_existing(root: Path, *options: tuple[str, str]) -> tuple[Path, Path]:
    for b, s in options:
        if (root / b).is_dir() and (root / s).is_dir():
            return root / b, root / s
    raise DataError(
        f"{root}: none of the expected folder pairs exists ({', '.join(f'{b} + {s}' for b, s in options)}); "
        "check --data-root"
    )


def find_pairs(
    dataset: str,
    root: str | Path | None = None,
    split: str = "train",
    *,
    blur: str | Path | None = None,
    sharp: str | Path | None = None,
    left: str | Path | None = None,
    right: str | Path | None = None,
) -> ImageSet:
    """List the pairs of ``split`` (train / val / test) of a data set; raises :class:`DataError`
    naming missing folders and unpaired files."""
    dataset = dataset.lower()
    if dataset not in DATASETS:
        raise UsageError(f"unknown data set {dataset!r}; choose one of {', '.join(DATASETS)}")
    if dataset == "folder":
        if sharp is None or (blur is None and (left is None or right is None)):
            raise UsageError("--dataset folder needs --sharp DIR and --blur DIR, or --left DIR --right DIR (views)")
        if (left is None) != (right is None):
            raise UsageError("--left and --right go together")
        folders = {"sharp": Path(sharp)}
        if blur is not None:
            folders["blur"] = Path(blur)
        if left is not None:
            folders.update(left=Path(left), right=Path(right))
        return _pair("folder", split, folders)
    if root is None:
        raise UsageError(f"--dataset {dataset} needs --data-root DIR")
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: data root not found; pass the folder that holds the {dataset} data set")
    if dataset == "dpdd":
        if split not in ("train", "val", "test"):
            raise UsageError(f"dpdd has splits train, val, test (got {split!r})")
        return _pair("dpdd", split, {
            "blur": root / f"{split}_c" / "source", "sharp": root / f"{split}_c" / "target",
            "left": root / f"{split}_l" / "source", "right": root / f"{split}_r" / "source",
        })
    if dataset in ("hide", "realdof") and split == "train":
        raise DataError(f"{dataset} is a test-only data set; train on another one and evaluate on it")
    if dataset == "sdd":
        base = root / ("train_patches" if split == "train" else "test")
        return _pair("sdd", split, {"blur": base / "blur", "sharp": base / "gt"})
    if dataset == "realdof":
        b, s = _first_existing(root, ("source", "target"), ("test/source", "test/target"))
        return _pair(dataset, "test", {"blur": b, "sharp": s})
    sub = root / ("train" if split == "train" else "test")
    if dataset == "gopro" and sub.is_dir() and not any((sub / d).is_dir() for d in ("input", "blur")):
        scenes = sorted(d for d in sub.iterdir() if (d / "blur").is_dir())
        if scenes:
            parts = [_pair(dataset, split, {"blur": d / "blur", "sharp": d / "sharp"}) for d in scenes]
            samples = [Sample(f"{d.name}/{s.id}", s.sharp, s.blur) for d, p in zip(scenes, parts) for s in p.samples]
            return ImageSet(dataset, split, samples, has_views=False)
    b, s = _first_existing(sub, ("input", "target"), ("blur", "sharp"))
    return _pair(dataset, split, {"blur": b, "sharp": s})


def check_fit(images: ImageSet, card) -> None:
    """A dual-pixel model needs views; an rgb model takes the blurry (combined) image."""
    if card.layout == "dp" and not images.has_views:
        raise DataError(
            f"model {card.name} takes dual-pixel views ({' + '.join(card.views)}) but data set "
            f"{images.name!r} has single blurry images; use a dual-pixel set (dpdd, folder --left/--right) "
            "or a single-image model"
        )


def _size(path: Path) -> tuple[int, int] | None:
    """(H, W) from the file header (Pillow), falling back to a full decode; None if unreadable."""
    try:
        from PIL import Image as PILImage

        with PILImage.open(path) as im:
            w, h = im.size
        return h, w
    except Exception:
        pass
    try:
        from dpdeblur.io.images import read_image

        return read_image(path).rgb.shape[:2]
    except Exception:
        return None


def check_readable(images: ImageSet, min_size: int = 0) -> ImageSet:
    """Read every header: unreadable files, pairs of different sizes and images smaller
    than ``min_size`` fail here, before training, all listed at once. Fills ``images.sizes``."""
    bad, mismatched, small, sizes = [], [], [], []
    for s in images.samples:
        got = {p: _size(p) for p in s.files()}
        bad += [str(p) for p, hw in got.items() if hw is None]
        hws = {hw for hw in got.values() if hw is not None}
        if len(hws) > 1:
            mismatched.append(f"{s.id} ({', '.join(f'{p.name} {h}x{w}' for p, (h, w) in got.items() if (h, w))})")
        hw = min(hws) if hws else (0, 0)
        if hws and min(hw) < min_size:
            small.append(f"{s.sharp} ({hw[0]}x{hw[1]})")
        sizes.append(hw)
    msgs = []
    if bad:
        msgs.append(f"unreadable files: {few(bad)}")
    if mismatched:
        msgs.append(f"pairs of different sizes: {few(mismatched)}")
    if small:
        msgs.append(f"images smaller than the {min_size}px patch: {few(small)} (lower --patch)")
    if msgs:
        raise DataError(f"{images.name} {images.split}: " + "; ".join(msgs))
    images.sizes = sizes
    return images
