"""Regenerate ``assets/samples/``: a few synthetic dual-pixel pairs from held-out images.

    python -m dpdeblur.data.synth_samples assets/samples

Writes ``<id>_L.png``, ``<id>_R.png`` (dual-pixel views, written x2 like DPDD),
``combined/<id>.png`` (combined image, for single-image models), ``sharp/<id>.png``
(ground truth) as 16-bit PNG, and ``README.md``. Only the held-out scikit-image
photographs (:data:`~dpdeblur.data.synth_sources.HELD_OUT`) and procedural
textures are used, with seeds from their own stream (``[SAMPLES_SEED, i]``), so
a model trained on ``dpdeblur synth`` data has never seen them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from dpdeblur.data import synth_sources as src
from dpdeblur.data.layouts import SAMPLES as SAMPLES_LAYOUT
from dpdeblur.data.synth import SynthParams, synthesize_layered

__all__ = ["SAMPLES", "SAMPLES_SEED", "make_samples"]

SAMPLES_SEED = 20240917  # never a dataset seed: datasets draw from default_rng([seed, item])
#: id -> (background, foreground textures); "skimage:x" or "procedural:kind".
SAMPLES = {
    "coffee": ("skimage:coffee", ["procedural:glyphs", "skimage:rocket"]),
    "rocket": ("skimage:rocket", ["skimage:coffee", "procedural:dead_leaves"]),
    "glyphs": ("procedural:glyphs", ["procedural:dead_leaves", "procedural:stripes"]),
}
SIZE = (256, 192)
#: the realistic simulator (parametric dual-pixel PSFs, blur in linear light, sRGB views) without
#: noise, exposure changes, colour casts or 8-bit steps: noisy 16-bit PNGs do not compress
PARAMS = SynthParams(max_radius=16.0, noise=0.0, vignetting=0.08, tone="srgb", exposure=None, white_balance=0.0, gray=0.0, bits8=0.0)
SHARP_BITS = 8  # the sharp sources are 8-bit photographs; keeps assets/ small


def _write_png(path: Path, rgb: np.ndarray, bits: int) -> Path:
    """Like :func:`dpdeblur.io.images.write_image` (atomic) but at zlib level 9 to keep assets/ small."""
    import cv2

    from dpdeblur.io.images import from_float
    from dpdeblur.utils.atomic import atomic_path

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(from_float(rgb, bits)[..., ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    with atomic_path(path) as tmp:
        buf.tofile(tmp)
    return path


def _load(name: str, pool: dict[str, src.Source], rng: np.random.Generator) -> np.ndarray:
    if name not in pool:  # scikit-image missing: fall back to a procedural texture
        name = "procedural:dead_leaves"
    return src.random_crop(pool[name].load(rng), SIZE, rng)[0]


def make_samples(out_dir: str | Path) -> list[Path]:
    """Write the sample pairs, sharp references and README into ``out_dir``; return the files."""
    from dpdeblur.utils.atomic import atomic_write_text

    out = Path(out_dir)
    pool = {s.name: s for s in src.bundled_sources(held_out=True) + src.procedural_sources(SIZE)}
    written, rows, used = [], [], set()
    for i, (sid, (bg_name, fg_names)) in enumerate(SAMPLES.items()):
        rng = np.random.default_rng([SAMPLES_SEED, i])
        bg = _load(bg_name, pool, rng)
        fgs = [_load(n, pool, rng) for n in fg_names]
        info: dict = {}
        sharp, left, right, comb = synthesize_layered(bg, fgs, PARAMS, rng, info=info)
        paths = SAMPLES_LAYOUT.item_paths(out, sid)
        for path, arr, bits in ((paths["left"], left, 16), (paths["right"], right, 16),
                                (paths["combined"], comb, 16), (paths["sharp"], sharp, SHARP_BITS)):
            written.append(_write_png(path, arr, bits))
        used.update([bg_name, *fg_names])
        rows.append(f"| `{sid}` | {bg_name} + {', '.join(fg_names)} | {', '.join(f'{r:+.1f}' for r in info['radii'])} |")
    licences = {s.name: s.licence for s in pool.values()}
    readme = "\n".join([
        "# Sample dual-pixel images (synthetic)",
        "",
        f"Made by `python -m dpdeblur.data.synth_samples assets/samples` (seed stream {SAMPLES_SEED},",
        f"{SIZE[0]}x{SIZE[1]}, {PARAMS.psf} PSFs in linear light, max radius {PARAMS.max_radius} px, noise {PARAMS.noise},",
        f"vignetting {PARAMS.vignetting}, sRGB-encoded;",
        f"sharp references at {SHARP_BITS} bits, as their source photographs).",
        "Layered random planes rendered by `dpdeblur.data.synth` from images held out of the default",
        "`dpdeblur synth` training split, so models trained on synthetic data have not seen them.",
        "",
        "- `<id>_L.png`, `<id>_R.png`: left and right dual-pixel views, 16-bit PNG, written x2 like DPDD",
        "  (each photodiode holds half the light), so `combined/<id>.png = (L + R) / 2` in linear light.",
        "- `combined/<id>.png`: the combined (ordinary) defocused image, for single-image models",
        "  (in its own folder so that `dpdeblur deblur assets/samples` sees only view pairs).",
        "- `sharp/<id>.png`: the all-in-focus ground truth, to compare against.",
        "",
        "| id | planes (back to front) | signed defocus radius per plane, px |",
        "|---|---|---|",
        *rows,
        "",
        "## Licences",
        "",
        *[f"- {n}: {licences.get(n, 'generated by dpdeblur (MIT)')}" for n in sorted(used)],
        "",
        "scikit-image photographs are read from the installed scikit-image package (`skimage/data`);",
        "their licences are as stated in scikit-image's `skimage/data/_fetchers.py` docstrings.",
        "The rendered files are released under the project's MIT licence.",
        "",
    ])
    atomic_write_text(out / "README.md", readme)
    return written + [out / "README.md"]


if __name__ == "__main__":
    for p in make_samples(sys.argv[1] if len(sys.argv) > 1 else "assets/samples"):
        print(p)
