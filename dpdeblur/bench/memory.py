"""Peak resident memory of CPU deblurring vs image size (one subprocess per size).

    python -m dpdeblur.bench.memory [--model dmtnet-s] [--sizes 1500x1000,6000x4000] [--tile 512] [--tiny]

Random (seeded) weights: memory does not depend on their values. ``--tiny`` builds
a small configuration of the model (fast on a laptop; the image canvases are the
same, only the per-tile activations shrink). Each child builds the model, makes
two random views in memory, runs the photo pipeline's :class:`Deblurrer` and
converts the result to 16 bits as the writer does; it reports the peak RSS
(``ru_maxrss``), the RSS after building the model, and the size of the canvases
(float32 views, stacked input, output and weight canvases: 64 bytes per pixel
for a dual-pixel model); ``peak - model - canvases`` is what must not grow with the image.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

TINY = dict(dim=12, blocks=1, heads=3, channels=8, n_rbm=1, n_rm=1)


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(model: str, w: int, h: int, tile: int, tiny: bool, threads: int) -> dict:
    import resource

    import numpy as np
    import torch

    from dpdeblur.inference.pipeline import Deblurrer, Loaded
    from dpdeblur.io.images import from_float
    from dpdeblur.models import create_model

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = create_model(model, **(TINY if tiny else {}))
    d = Deblurrer(net, tile=tile, device="cpu")
    base = _rss_mb()
    rng = np.random.default_rng(0)
    views = {v: rng.random((h, w, 3), dtype=np.float32) for v in ("left", "right")}
    t0 = time.perf_counter()
    y = d.run(Loaded(views=views))
    out16 = from_float(y, 16)
    dt = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    px = h * w
    del out16
    canvases = px * 4 * (3 * 2 + 6 + 3 + 1)  # float32 views, stacked input, output and weight canvases
    return {"model": model + (" (tiny)" if tiny else ""), "size": f"{w}x{h}", "megapixels": round(px / 1e6, 1),
            "tile": tile, "rss_after_model_mb": round(base), "peak_rss_mb": round(peak),
            "canvases_mb": round(canvases / 2**20), "peak_minus_model_and_canvases_mb": round(peak - base - canvases / 2**20),
            "seconds": round(dt, 1)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="dmtnet-s")
    ap.add_argument("--sizes", default="1500x1000,6000x4000")
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--tiny", action="store_true", help="small configuration of the model (same canvases)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        w, h = map(int, args.child.split("x"))
        print(json.dumps(child(args.model, w, h, args.tile, args.tiny, args.threads)))
        return
    rows = []
    for size in args.sizes.split(","):
        cmd = [sys.executable, "-m", "dpdeblur.bench.memory", "--child", size, "--model", args.model,
               "--tile", str(args.tile), "--threads", str(args.threads)] + (["--tiny"] if args.tiny else [])
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
        rows.append(json.loads(r.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    keys = ("model", "size", "megapixels", "tile", "rss_after_model_mb", "canvases_mb", "peak_rss_mb", "peak_minus_model_and_canvases_mb", "seconds")
    print(" | ".join(keys))
    for r in rows:
        print(" | ".join(str(r[k]) for k in keys))


if __name__ == "__main__":
    main()
