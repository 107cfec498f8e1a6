"""Training patches and validation images as torch datasets, with an on-disk cache.

An item is a dict of float32 tensors in [0, 1] (what every criterion and model expects):
``input`` :math:`(3V, H, W)` (views in the model card's order, or the blurry image for
rgb models), ``blur`` :math:`(3, H, W)` (combined / blurry), ``sharp`` :math:`(3, H, W)`.

Patches (``mode``):

- ``"slide"``: ``patch`` windows slid with ``overlap`` (0.6 = 60%; the last window
  is clamped to the border), optionally dropping the ``drop_flat`` fraction of
  least-textured windows (mean absolute gradient of the sharp window's gray);
- ``"crop"``: ``crops_per_image`` random ``patch`` crops per image and epoch;
- ``"resize"``: each whole image resized (area interpolation) to ``patch`` x ``patch``,
  one item per image and epoch (FCN's recipe: "we adjust 2103 blurred images and clear
  ground truth in the GoPro training set to the size of 256x256"; the aspect ratio is
  not kept, as there).

Augmentation (flips, crop positions) is a pure function of ``(seed, epoch, index)``,
keys that :class:`~dpdeblur.data.sampler.ResumableSampler` yields, so an epoch can be
replayed exactly from any position and with any number of loader workers.
A horizontal flip also swaps the left and right views (mirroring the scene mirrors
the aperture halves), keeping the sign of the dual-pixel disparity meaningful.

Cache: decoding 16-bit PNGs every step is slow, so ``cache_dir`` keeps every image's
planes as one ``uint16`` ``.npy`` read by memory map (full frames, not overlapping
windows: 60%-overlap windows would store each pixel ~6 times). ``fingerprint.json``
(file list + sizes + mtimes) is written last; a changed data set rebuilds the cache,
and window lists are cached per patch setting (``windows-<hash>.json``).
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from dpdeblur.data.layouts import ALIGNED
from dpdeblur.data.sets import ImageSet, Sample
from dpdeblur.io.images import read_image
from dpdeblur.utils.atomic import atomic_path, atomic_write_text

__all__ = ["ImageSource", "PatchDataset", "FullImageDataset", "slide_positions", "texture_score", "PATCH_MODES"]

PATCH_MODES = ("slide", "crop", "resize")


def _planes(has_views: bool) -> tuple[str, ...]:
    return ("left", "right", "blur", "sharp") if has_views else ("blur", "sharp")


def _decode(sample: Sample, planes: tuple[str, ...]) -> np.ndarray:
    """:math:`(H, W, 3P)` uint16 of the sample's planes; a missing blur = mean of the views."""
    arrs = {}
    for name in planes:
        p = getattr(sample, name)
        arrs[name] = read_image(p).rgb if p is not None else None
    if arrs.get("blur") is None:
        arrs["blur"] = (arrs["left"] + arrs["right"]) * 0.5
    return np.concatenate([np.rint(np.clip(arrs[n], 0, 1) * 65535).astype(np.uint16) for n in planes], axis=2)


def _fingerprint(images: ImageSet) -> str:
    files = []
    for s in images.samples:
        for p in s.files():
            st = p.stat()
            files.append([str(p.resolve()), st.st_size, st.st_mtime_ns])
    blob = json.dumps({"planes": _planes(images.has_views), "files": files, "version": 1})
    return hashlib.sha256(blob.encode()).hexdigest()


class ImageSource:
    """Planes of every image of an :class:`ImageSet`, from the cache or decoded on demand
    (a small per-process LRU keeps the last decoded images)."""

    def __init__(self, images: ImageSet, cache_dir: str | Path | None = None, lru: int = 4, progress=None) -> None:
        self.images = images
        self.planes = _planes(images.has_views)
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.fingerprint = _fingerprint(images)
        self._lru: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lru_size = lru
        if self.cache_dir is not None:
            self._build_cache(progress)

    def _cached(self, i: int) -> Path:
        return self.cache_dir / f"img_{i:06d}.npy"

    def cache_valid(self) -> bool:
        fp = self.cache_dir / "fingerprint.json"
        try:
            return json.loads(fp.read_text())["fingerprint"] == self.fingerprint
        except (OSError, ValueError, KeyError):
            return False

    def _build_cache(self, progress=None) -> None:
        if self.cache_valid():
            return
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        for old in [self.cache_dir / "fingerprint.json", *self.cache_dir.glob("img_*.npy"), *self.cache_dir.glob("windows-*.json")]:
            old.unlink(missing_ok=True)
        for i, s in enumerate(self.images.samples):
            with atomic_path(self._cached(i)) as tmp:
                np.save(tmp, _decode(s, self.planes))
            if progress:
                progress(i + 1, len(self.images))
        atomic_write_text(self.cache_dir / "fingerprint.json", json.dumps({"fingerprint": self.fingerprint, "n": len(self.images)}))

    def __len__(self) -> int:
        return len(self.images)

    def get(self, i: int) -> np.ndarray:
        """:math:`(H, W, 3P)` uint16 (a read-only memory map when cached)."""
        if self.cache_dir is not None:
            return np.load(self._cached(i), mmap_mode="r")
        if i in self._lru:
            self._lru.move_to_end(i)
            return self._lru[i]
        a = _decode(self.images.samples[i], self.planes)
        self._lru[i] = a
        while len(self._lru) > self._lru_size:
            self._lru.popitem(last=False)
        return a

    def __getstate__(self):  # loader workers start with an empty LRU
        d = dict(self.__dict__)
        d["_lru"] = OrderedDict()
        return d


def slide_positions(length: int, patch: int, overlap: float) -> list[int]:
    """Window starts along one axis: stride ``round(patch * (1 - overlap))``, last clamped to the border."""
    stride = max(1, int(round(patch * (1.0 - overlap))))
    pos = list(range(0, length - patch + 1, stride))
    if pos[-1] != length - patch:
        pos.append(length - patch)
    return pos


def texture_score(sharp: np.ndarray) -> float:
    """Mean absolute gradient of the gray image, :math:`(H, W, 3)` uint16 or float."""
    g = sharp.astype(np.float32).mean(axis=2)
    return float(np.abs(np.diff(g, axis=0)).mean() + np.abs(np.diff(g, axis=1)).mean())


def _to_item(planes: np.ndarray, names: tuple[str, ...], views: tuple[str, ...], swap: bool = False) -> dict[str, torch.Tensor]:
    t = torch.from_numpy(np.array(planes, dtype=np.uint16)).permute(2, 0, 1).float().div_(65535.0)  # copy: the cache is read-only
    parts = {n: t[3 * k : 3 * k + 3] for k, n in enumerate(names)}
    if swap and "left" in parts:
        parts["left"], parts["right"] = parts["right"], parts["left"]
    inp = torch.cat([parts[v] for v in views]) if views else parts["blur"]
    return {"input": inp, "blur": parts["blur"], "sharp": parts["sharp"]}


def _resize(a: np.ndarray, p: int) -> np.ndarray:
    """:math:`(H, W, K)` -> :math:`(p, p, K)`, area interpolation when shrinking (any K, any dtype cv2 takes)."""
    import cv2

    h, w = a.shape[:2]
    interp = cv2.INTER_AREA if p <= min(h, w) else cv2.INTER_LINEAR
    chunks = [cv2.resize(np.ascontiguousarray(a[..., k : k + 4]), (p, p), interpolation=interp) for k in range(0, a.shape[2], 4)]
    return np.concatenate([c.reshape(p, p, -1) for c in chunks], axis=2)


class PatchDataset(Dataset):
    """Training patches. Index with ``(index, epoch, seed)`` keys (augmented) or a plain
    ``index`` (no augmentation, centre crop in ``"crop"`` mode).

    Args:
        source: the images.
        views: the model's view order (``card.views``); empty for rgb models.
        patch, mode, overlap, flips, drop_flat, crops_per_image: see the module docstring.
        flow_dir: a ``dpdeblur align --out`` folder; its ``flow/<id>.npy`` (flow on the blurry
            image's grid into the sharp image, in pixels) is cropped and flipped with the
            images and given as ``flow_init`` :math:`(2, p, p)` (JDRL's warm-up).
    """

    def __init__(
        self,
        source: ImageSource,
        views: tuple[str, ...] = (),
        patch: int = 512,
        mode: str = "slide",
        overlap: float = 0.6,
        flips: bool = True,
        drop_flat: float = 0.0,
        crops_per_image: int = 1,
        flow_dir: str | Path | None = None,
    ) -> None:
        if mode not in PATCH_MODES:
            raise ValueError(f"patch mode must be one of {', '.join(PATCH_MODES)}, got {mode!r}")
        self.source, self.views, self.patch, self.mode = source, tuple(views), patch, mode
        self.flips, self.crops_per_image = flips, crops_per_image
        self.sizes = source.images.sizes or [source.get(i).shape[:2] for i in range(len(source))]
        self.windows: list[tuple[int, int, int]] = []
        if mode == "slide":
            self.windows = self._slide_windows(overlap, drop_flat)
        self.flows: list[Path] | None = None
        if flow_dir is not None:
            self.flows = [ALIGNED.item_paths(flow_dir, s.id)["flow"] for s in source.images.samples]
            missing = [str(f) for f, sz in zip(self.flows, self.sizes) if not f.is_file()]
            if missing:
                from dpdeblur.errors import DataError, few

                raise DataError(f"flow_cache {flow_dir}: no flow for {len(missing)} pairs ({few(missing)}); "
                                "run `dpdeblur align` on this data set first", settings=("flow_cache",))

    def _slide_windows(self, overlap: float, drop_flat: float) -> list[tuple[int, int, int]]:
        p = self.patch
        wins = [(i, y, x) for i, (h, w) in enumerate(self.sizes)
                for y in slide_positions(h, p, overlap) for x in slide_positions(w, p, overlap)]
        if drop_flat <= 0:
            return wins
        key = hashlib.sha256(json.dumps([self.source.fingerprint, p, overlap, drop_flat]).encode()).hexdigest()[:16]
        cached = self.source.cache_dir / f"windows-{key}.json" if self.source.cache_dir else None
        if cached is not None and cached.is_file():
            return [tuple(w) for w in json.loads(cached.read_text())]
        s0 = 3 * self.source.planes.index("sharp")
        scores = []
        for i, y, x in wins:
            scores.append(texture_score(self.source.get(i)[y : y + p, x : x + p, s0 : s0 + 3]))
        order = np.argsort(np.asarray(scores), kind="stable")
        drop = set(order[: int(len(wins) * drop_flat)].tolist())
        wins = [w for k, w in enumerate(wins) if k not in drop]
        if cached is not None:
            atomic_write_text(cached, json.dumps(wins))
        return wins

    def __len__(self) -> int:
        if self.mode == "slide":
            return len(self.windows)
        return len(self.sizes) * (self.crops_per_image if self.mode == "crop" else 1)

    def __getitem__(self, key) -> dict[str, torch.Tensor]:
        idx, rng = (key[0], np.random.default_rng(list(key[::-1]))) if isinstance(key, tuple) else (int(key), None)
        p = self.patch
        if self.mode == "resize":
            i, y, x = idx, 0, 0
            a = _resize(self.source.get(i), p)
        else:
            if self.mode == "slide":
                i, y, x = self.windows[idx]
            else:
                i = idx // self.crops_per_image
                h, w = self.sizes[i]
                y, x = ((h - p) // 2, (w - p) // 2) if rng is None else (int(rng.integers(0, h - p + 1)), int(rng.integers(0, w - p + 1)))
            a = self.source.get(i)[y : y + p, x : x + p]
        hflip = vflip = False
        if self.flips and rng is not None:
            hflip, vflip = bool(rng.random() < 0.5), bool(rng.random() < 0.5)
        if hflip:
            a = a[:, ::-1]
        if vflip:
            a = a[::-1]
        item = _to_item(a, self.source.planes, self.views, swap=hflip)
        if self.flows is not None:
            item["flow_init"] = self._flow(i, y, x, hflip, vflip)
        return item

    def _flow(self, i: int, y: int, x: int, hflip: bool, vflip: bool) -> torch.Tensor:
        """Crop of the cached flow, transformed like the images (a flip mirrors the
        field and negates its component along the flipped axis)."""
        from dpdeblur.flow.align import load_flow

        p = self.patch
        if self.mode == "resize":  # resample the field and scale its components with the image
            f = np.asarray(load_flow(self.flows[i], mmap=True), dtype=np.float32)
            h, w = f.shape[1:]
            f = _resize(f.transpose(1, 2, 0), p).transpose(2, 0, 1) * np.array([p / w, p / h], np.float32)[:, None, None]
        else:
            f = np.array(load_flow(self.flows[i], mmap=True)[:, y : y + p, x : x + p], dtype=np.float32)
        if f.shape[1:] != (p, p):
            from dpdeblur.errors import DataError

            raise DataError(f"{self.flows[i]}: flow is {f.shape[1:]}, smaller than the image; re-run `dpdeblur align`")
        if hflip:
            f = f[:, :, ::-1] * np.array([-1, 1], np.float32)[:, None, None]
        if vflip:
            f = f[:, ::-1] * np.array([1, -1], np.float32)[:, None, None]
        return torch.from_numpy(np.ascontiguousarray(f))


class FullImageDataset(Dataset):
    """Whole images (or a centred ``crop``) for validation / evaluation; item also has ``id``."""

    def __init__(self, source: ImageSource, views: tuple[str, ...] = (), crop: int = 0) -> None:
        self.source, self.views, self.crop = source, tuple(views), crop

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int) -> dict:
        a = self.source.get(i)
        if self.crop:
            h, w = a.shape[:2]
            ch, cw = min(self.crop, h), min(self.crop, w)
            y, x = (h - ch) // 2, (w - cw) // 2
            a = a[y : y + ch, x : x + cw]
        return _to_item(a, self.source.planes, self.views)
