"""Dual-pixel point-spread functions: measured banks and a parametric model.

A dual-pixel PSF is a pair ``(left, right)`` of :math:`(k, k)` float32 kernels, each
summing to 1 (the view at full brightness; complementary vignetting is applied by the
sensor model, not here). A signed defocus radius ``r`` (pixels) selects the blur:
``r > 0`` behind the focal plane, ``r < 0`` in front of it; the other side of the focal
plane is the point reflection of the kernel (a negative scale ``k(-x, -y)``), which
flips the direction in which the views shift.

- :class:`PSFBank`: a camera's measured kernels at one reference defocus on a grid of
  image cells (the format of Xin et al., Defocus Map Estimation and Deblurring from a
  Single Dual-Pixel Image, ICCV 2021, arXiv:2110.05655: ``blur_kernels_left.npy`` and
  ``blur_kernels_right.npy``, each ``(rows*cols, k, k)`` row-major over the grid).
  Other defocus amounts resample them by ``r / ref_radius``.
- :func:`parametric_psf`: without a calibration, an apodised aperture split softly into
  two complementary halves, optionally clipped to a cat's eye (off-axis vignetting of
  the aperture) and softened by the optics; the parameters are drawn per image by
  :func:`draw_parametric`.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from dpdeblur.errors import InputError, UsageError

__all__ = ["PSFBank", "ParametricPSF", "parametric_psf", "draw_parametric", "rescale_kernel", "kernel_radius",
           "BANK_FILES", "BANK_JSON", "MIN_KERNEL"]

BANK_FILES = ("blur_kernels_left.npy", "blur_kernels_right.npy")
BANK_JSON = "psf_bank.json"


def kernel_radius(k: np.ndarray) -> float:
    """Equivalent disc radius of a kernel: ``sqrt(2)`` x its RMS radius about its centroid
    (a uniform disc of radius R has RMS radius R / sqrt(2))."""
    k = np.asarray(k, np.float64)
    s = k.sum()
    if s <= 0:
        return 0.0
    n = k.shape[0]
    ys, xs = np.mgrid[0:n, 0:n] - (n - 1) / 2
    cx, cy = (k * xs).sum() / s, (k * ys).sum() / s
    return float(math.sqrt(2 * (k * ((xs - cx) ** 2 + (ys - cy) ** 2)).sum() / s))


def rescale_kernel(k: np.ndarray, scale: float) -> np.ndarray:
    """Resample a centred kernel by a signed ``scale`` (negative: point reflection), odd size,
    sum 1. ``|scale|`` so small that the kernel falls under a pixel gives a delta."""
    import cv2

    k = np.asarray(k, np.float32)
    a = abs(float(scale))
    n = k.shape[0]
    m = int(round(n * a))
    m += 1 - m % 2  # odd
    if m < 3:
        out = np.ones((1, 1), np.float32)
    else:
        interp = cv2.INTER_AREA if a < 1 else cv2.INTER_LINEAR
        out = np.clip(cv2.resize(k, (m, m), interpolation=interp), 0, None)
        s = float(out.sum())
        out = out / s if s > 0 else np.pad(np.ones((1, 1), np.float32), m // 2)
    if scale < 0:
        out = out[::-1, ::-1]
    return np.ascontiguousarray(out, dtype=np.float32)


@dataclass(frozen=True)
class ParametricPSF:
    """Shape of a parametric dual-pixel PSF (drawn per image, see :func:`draw_parametric`).

    Attributes:
        apodisation: radial profile ``1 - a * (rho / R)^2``: a > 0 darker rim, a < 0 brighter rim.
        split_softness: width of the left/right transition as a fraction of R (0 = hard halves).
        crosstalk: share of each half leaking into the other view (0 = none).
        cat_eye: offset of the clipping disc as a fraction of R (0 = round aperture).
        cat_eye_angle: direction of that offset (radians, image coordinates).
        optics_sigma: Gaussian softening of the aperture edge, pixels.
    """

    apodisation: float = 0.0
    split_softness: float = 0.0
    crosstalk: float = 0.0
    cat_eye: float = 0.0
    cat_eye_angle: float = 0.0
    optics_sigma: float = 0.0


def draw_parametric(rng: np.random.Generator, position: tuple[float, float] | None = None) -> ParametricPSF:
    """Random PSF shape; ``position`` (x, y in [-1, 1] of the frame) steers the cat's eye
    outward like real off-axis vignetting (None: a random position)."""
    x, y = position if position is not None else rng.uniform(-1, 1, 2)
    off = float(np.hypot(x, y))
    return ParametricPSF(
        apodisation=float(rng.uniform(-0.6, 0.6)),
        split_softness=float(rng.uniform(0.05, 0.6)),
        crosstalk=float(rng.uniform(0.0, 0.15)),
        cat_eye=float(rng.uniform(0, 0.45) * min(1.0, off)),
        cat_eye_angle=float(math.atan2(y, x)),
        optics_sigma=float(rng.uniform(0.3, 1.5)),
    )


@functools.lru_cache(maxsize=1024)
def _parametric(radius: float, shape: ParametricPSF, supersample: int) -> tuple[np.ndarray, np.ndarray]:
    import cv2

    R = abs(radius)
    if R < 0.25:
        one = np.ones((1, 1), np.float32)
        return one, one
    pad = int(math.ceil(2.5 * shape.optics_sigma)) + 1
    n = int(math.ceil(R)) + pad
    ss = supersample
    c = (np.arange(-n * ss, (n + 1) * ss) + 0.5) / ss - 0.5  # sub-sample centres, pixels
    X, Y = np.meshgrid(c, c)
    rho2 = (X * X + Y * Y) / (R * R)
    ap = (rho2 <= 1).astype(np.float64) * np.clip(1 - shape.apodisation * rho2, 0.05, None)
    if shape.cat_eye > 0:  # clip by a second disc shifted toward the frame centre
        dx, dy = -shape.cat_eye * R * math.cos(shape.cat_eye_angle), -shape.cat_eye * R * math.sin(shape.cat_eye_angle)
        ap *= ((X - dx) ** 2 + (Y - dy) ** 2) <= R * R
    if shape.split_softness > 0:
        wl = 1.0 / (1.0 + np.exp(np.clip(X / (shape.split_softness * R * 0.5), -50, 50)))
    else:
        wl = (X < 0).astype(np.float64) + 0.5 * (X == 0)
    wl = shape.crosstalk + (1 - 2 * shape.crosstalk) * wl
    k = 2 * n + 1
    pool = lambda a: a.reshape(k, ss, k, ss).sum(axis=(1, 3))  # noqa: E731
    left, right = pool(ap * wl), pool(ap * (1 - wl))
    out = []
    for a in (left, right):
        if shape.optics_sigma > 0:
            a = cv2.GaussianBlur(a, (0, 0), shape.optics_sigma)
        a = (a / a.sum()).astype(np.float32)
        out.append(a if radius > 0 else np.ascontiguousarray(a[::-1, ::-1]))
    for a in out:
        a.flags.writeable = False
    return out[0], out[1]


def parametric_psf(radius: float, shape: ParametricPSF | None = None, supersample: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """``(left, right)`` kernels for a signed radius (pixels) and a :class:`ParametricPSF`.

    ``r > 0``: the left view gets the left part of the aperture (its light lands left
    of the point); ``r < 0`` is the point reflection. Each kernel sums to 1; with
    ``shape=ParametricPSF()`` they are the two clean halves of a disc. Read-only (cached).
    """
    return _parametric(round(float(radius), 3), shape or ParametricPSF(), supersample)


class PSFBank:
    """A camera's measured dual-pixel kernels on a grid of image cells.

    Args:
        left, right: :math:`(rows * cols, k, k)` kernels at the reference defocus, row-major.
        grid: ``(rows, cols)``.
        cell: size in pixels of one square grid cell in the frame the kernels were measured
            on (Pixel 4: 168); None: a synthesized image spans the whole grid.
        ref_radius: equivalent disc radius of the reference kernels (default: measured,
            :func:`kernel_radius` of left + right averaged over the bank).

    Files (:meth:`load`): a folder with ``blur_kernels_left.npy`` and ``blur_kernels_right.npy``
    (float, ``(N, k, k)``) and optionally ``psf_bank.json`` with ``{"grid": [rows, cols],
    "cell": pixels, "ref_radius": pixels}``. Without ``grid`` the grid is the factorisation of
    N closest to 3 rows for 4 columns (N = 48 -> 6 x 8).
    """

    def __init__(self, left: np.ndarray, right: np.ndarray, grid: tuple[int, int],
                 cell: int | None = None, ref_radius: float | None = None, source: str = "") -> None:
        where = source or "PSF bank"
        left = _check_kernels(left, where, "left ")
        right = _check_kernels(right, where, "right ")
        if left.shape != right.shape:
            raise InputError(f"{where}: left/right kernels must have the same shape (N, k, k); "
                             f"got {left.shape} and {right.shape}")
        rows, cols = _check_meta(where, grid, cell, ref_radius)
        if rows * cols != left.shape[0]:
            raise InputError(f"{where}: grid {rows}x{cols} needs {rows * cols} kernels, the files hold {left.shape[0]}")
        # normalise in float64, each kernel scaled by its peak first so huge values cannot overflow
        norm = lambda a: a / a.max(axis=(1, 2), keepdims=True)  # noqa: E731 - every kernel has a positive sum
        left, right = norm(np.clip(left, 0, None)), norm(np.clip(right, 0, None))
        self.left = (left / left.sum(axis=(1, 2), keepdims=True)).astype(np.float32)
        self.right = (right / right.sum(axis=(1, 2), keepdims=True)).astype(np.float32)
        self.grid = (rows, cols)
        self.cell = cell
        self.ref_radius = float(ref_radius) if ref_radius else float(
            np.mean([kernel_radius(a + b) for a, b in zip(self.left, self.right)]))
        if not self.ref_radius >= MIN_REF_RADIUS:
            raise InputError(f"{where}: the kernels show no blur (equivalent radius {self.ref_radius:.2f} px, "
                             f"needs >= {MIN_REF_RADIUS}); give kernels measured out of focus")
        self.source = source

    @classmethod
    def load(cls, path: str | Path) -> "PSFBank":
        """Read a bank folder (or the path of one of its two kernel files)."""
        path = Path(path)
        wants = f"psf_bank takes the folder holding {' and '.join(BANK_FILES)}"
        if not path.exists():
            raise InputError(f"{path}: not found; {wants}", settings=("psf_bank",))
        if path.is_file() and path.name not in BANK_FILES:
            raise UsageError(f"{path}: a file; {wants} (give that folder)", settings=("psf_bank",))
        folder = path if path.is_dir() else path.parent
        files = [folder / f for f in BANK_FILES]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise InputError(f"{missing[0]}: not found; {wants}", settings=("psf_bank",))
        left, right = (_load_kernels(f) for f in files)
        meta = {}
        jf = folder / BANK_JSON
        if jf.is_file():
            try:
                meta = json.loads(jf.read_text())
            except (OSError, ValueError) as e:
                raise InputError(f"{jf}: not valid JSON ({e}); fix it or remove it (it is optional)") from None
            if not isinstance(meta, dict):
                raise InputError(f'{jf}: expected a JSON object like {{"grid": [rows, cols], "cell": 168, "ref_radius": 12}}')
            _check_meta(str(jf), meta.get("grid", [1, 1]), meta.get("cell"), meta.get("ref_radius"))
            if "grid" in meta and meta["grid"][0] * meta["grid"][1] != len(left):
                rows, cols = meta["grid"]
                raise InputError(f"{jf}: grid {rows}x{cols} needs {rows * cols} kernels, {files[0].name} holds {len(left)}")
        grid = meta.get("grid")
        if grid is None:
            grid = _grid_for(len(left))
        return cls(left, right, grid, meta.get("cell"), meta.get("ref_radius"), source=str(folder))

    def describe(self) -> dict:
        return {"source": self.source, "grid": list(self.grid), "cell": self.cell, "kernel_size": int(self.left.shape[1]),
                "ref_radius": round(self.ref_radius, 3)}

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - banks live for the whole run
    def kernels(self, index: int, radius: float) -> tuple[np.ndarray, np.ndarray]:
        """``(left, right)`` of grid cell ``index`` resampled to the signed ``radius``."""
        s = radius / self.ref_radius
        return rescale_kernel(self.left[index], s), rescale_kernel(self.right[index], s)

    def cell_weights(self, size: tuple[int, int], origin: tuple[float, float]) -> list[tuple[int, np.ndarray]]:
        """Bilinear weights of the grid cells over an image of ``size`` = (W, H) whose top-left
        corner lies at ``origin`` = (x, y) frame pixels (``cell`` set) or spans the grid.

        Returns ``[(index, (H, W) weight map)]`` for cells with any weight; the maps sum to 1.
        """
        w, h = size
        rows, cols = self.grid
        if self.cell:
            xs = (origin[0] + np.arange(w) + 0.5) / self.cell - 0.5
            ys = (origin[1] + np.arange(h) + 0.5) / self.cell - 0.5
        else:
            xs = (np.arange(w) + 0.5) / w * cols - 0.5
            ys = (np.arange(h) + 0.5) / h * rows - 0.5
        xs, ys = np.clip(xs, 0, cols - 1), np.clip(ys, 0, rows - 1)

        def tents(coord, n):
            out = {}
            for i in range(n):
                t = np.clip(1 - np.abs(coord - i), 0, None).astype(np.float32)
                if t.any():
                    out[i] = t
            return out

        tx, ty = tents(xs, cols), tents(ys, rows)
        return [(r * cols + c, ty[r][:, None] * tx[c][None, :]) for r in ty for c in tx]

    def frame_size(self) -> tuple[int, int] | None:
        """(W, H) of the calibrated frame, when ``cell`` is known."""
        return (self.grid[1] * self.cell, self.grid[0] * self.cell) if self.cell else None


#: smallest kernel side that can be resampled to other blur sizes (1x1 is a point)
MIN_KERNEL = 3
#: smallest equivalent disc radius (pixels) of a bank's reference kernels; below it resampling by
#: ``r / ref_radius`` blows the kernels up without bound
MIN_REF_RADIUS = 0.5


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(v)


def _check_meta(where: str, grid, cell, ref_radius) -> tuple[int, int]:
    """The bank's ``grid`` as ``(rows, cols)``; an :class:`InputError` naming ``where`` for a bad
    grid, cell or ref_radius (the keys of ``psf_bank.json``)."""
    ok = isinstance(grid, (list, tuple)) and len(grid) == 2 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in grid)
    if not ok:
        raise InputError(f"{where}: grid {grid!r} must be [rows, cols], two positive whole numbers")
    if cell is not None and not (_is_number(cell) and cell > 0):
        raise InputError(f"{where}: cell {cell!r} must be a positive number of pixels (or left out)")
    if ref_radius is not None and not (_is_number(ref_radius) and ref_radius >= MIN_REF_RADIUS):
        raise InputError(f"{where}: ref_radius {ref_radius!r} must be a number of pixels >= {MIN_REF_RADIUS} "
                         "(or left out to measure it)")
    return int(grid[0]), int(grid[1])


def _check_kernels(a, where: str, side: str = "") -> np.ndarray:
    """Kernels as float64 ``(N, k, k)``, or an :class:`InputError` naming ``where`` (the file or bank)."""
    a = np.asarray(a)
    what = f"{where}: {side}kernels"
    if a.dtype.kind not in "iuf":
        raise InputError(f"{what} have dtype {a.dtype}; expected numbers, a float array (N, k, k)")
    if a.ndim != 3 or a.shape[1] != a.shape[2]:
        raise InputError(f"{what} have shape {a.shape}; expected (N, k, k), N square kernels of odd size k")
    if a.shape[0] == 0:
        raise InputError(f"{what} are empty (shape {a.shape}); expected at least one kernel")
    k = a.shape[1]
    if k < MIN_KERNEL or k % 2 == 0:
        raise InputError(f"{what} are {k}x{k}; they must be of odd size, at least {MIN_KERNEL}x{MIN_KERNEL}, "
                         "to be resampled to other blur sizes")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise InputError(f"{what} hold NaN or infinite values")
    if (a < -1e-6 * np.abs(a).max()).any():
        raise InputError(f"{what} hold negative values; expected non-negative weights")
    if (a.sum(axis=(1, 2)) <= 0).any():
        raise InputError(f"{where}: a {side}kernel sums to zero; every kernel needs some weight")
    return a


def _load_kernels(f: Path) -> np.ndarray:
    try:
        a = np.load(f, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"{f}: unreadable kernel file ({msg}); expected a float .npy array (N, k, k)") from None
    if not isinstance(a, np.ndarray):  # an .npz archive
        raise InputError(f"{f}: not a .npy array; expected a float .npy array (N, k, k)")
    return _check_kernels(a, str(f))


def _grid_for(n: int) -> tuple[int, int]:
    best = min(((r, n // r) for r in range(1, n + 1) if n % r == 0), key=lambda rc: abs(rc[0] / rc[1] - 0.75))
    return best


def asdict_shape(shape: ParametricPSF) -> dict:
    return {k: round(v, 4) for k, v in asdict(shape).items()}
