"""Data sets: find the image pairs of a split and check them before training.

The layouts (folders, splits, view names) are defined in :mod:`dpdeblur.data.layouts`;
this module pairs the files they name by id and checks them.

"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dpdeblur.data.layouts import DATASETS, FOLDER, get_layout, match_view, view_id
from dpdeblur.errors import DataError, UsageError, few
from dpdeblur.io.images import IMAGE_EXTS

__all__ = ["DATASETS", "Sample", "ImageSet", "find_pairs", "check_fit", "check_readable"]


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


def _images(d: Path, role: str = "") -> dict[str, Path]:
    """Image files of ``d`` by id (stem without a view suffix). For the ``left`` / ``right``
    roles, a folder that holds both views (``<id>_L`` and ``<id>_R`` side by side) contributes
    only its files of that view; two files with one id are an error."""
    if not d.is_dir():
        raise DataError(f"{d}: folder not found; check data_root and the folders of the data set's layout",
                        settings=("data_root",))
    files = [p for p in sorted(d.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_EXTS and not p.name.startswith(".")]
    if role in ("left", "right"):
        side = {p: (m.side if (m := match_view(p.stem)) else None) for p in files}
        if role in side.values():
            files = [p for p in files if side[p] == role]
    out: dict[str, Path] = {}
    clashes = []
    for p in files:
        key = view_id(p.stem)
        if key in out:
            clashes.append(f"{out[key].name} and {p.name}")
        out[key] = p
    if clashes:
        raise DataError(f"{d}: files that pair as the same image: {few(clashes)}; keep one per id (or give the views as separate left and right folders)",
                        settings=("left", "right"))
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
    if str(dataset).lower() not in DATASETS:
        raise UsageError(f"unknown data set {dataset.lower()!r}; choose one of {', '.join(DATASETS)}")
    layout = get_layout(dataset)
    if layout is FOLDER:
        return _pair(FOLDER.name, split, FOLDER.folders(blur=blur, sharp=sharp, left=left, right=right))
    given = [k for k, v in (("blur", blur), ("sharp", sharp), ("left", left), ("right", right)) if v is not None]
    if given:
        raise UsageError(f"{given[0]} is only for dataset folder; dataset {layout.name} reads its folders from data_root DIR",
                         settings=(given[0], "dataset", "data_root"))
    if root is None:
        raise UsageError(f"dataset {layout.name} needs data_root DIR", settings=("dataset", "data_root"))
    root = Path(root)
    if not root.is_dir():
        what = "is a file, not a folder" if root.exists() else "data root not found"
        raise DataError(f"{root}: {what}; pass the folder that holds the {layout.name} data set")
    groups = layout.groups(root, split)
    name, split = layout.name, layout.split_name(split)
    if len(groups) == 1 and not groups[0][0]:
        return _pair(name, split, groups[0][1])
    parts = [(prefix, _pair(name, split, folders)) for prefix, folders in groups]
    samples = [Sample(f"{prefix}/{s.id}", s.sharp, s.blur, s.left, s.right) for prefix, p in parts for s in p.samples]
    return ImageSet(name, split, samples, has_views=all(p.has_views for _, p in parts))


def check_fit(images: ImageSet, card) -> None:
    """A dual-pixel model needs views; an rgb model takes the blurry (combined) image."""
    if card.layout == "dp" and not images.has_views:
        raise DataError(
            f"model {card.name} takes dual-pixel views ({' + '.join(card.views)}) but data set "
            f"{images.name!r} has single blurry images; use a dual-pixel set (dpdd, or folder with left and right views) "
            "or a single-image model", settings=("left", "right"))


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


def check_readable(images: ImageSet, min_size: int = 0, why: str | None = None) -> ImageSet:
    """Read every header: unreadable files, pairs of different sizes and images smaller
    than ``min_size`` fail here, before training, all listed at once. Fills ``images.sizes``.
    ``why``: what needs ``min_size`` (default: the training patch)."""
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
        msgs.append(f"images smaller than the {min_size}px patch: {few(small)} (set patch to at most their smallest side)"
                    if why is None else f"images smaller than {min_size}x{min_size}, the least {why}: {few(small)} (remove them)")
    if msgs:
        raise DataError(f"{images.name} {images.split}: " + "; ".join(msgs), settings=("patch",) if small and why is None else ())
    images.sizes = sizes
    return images
