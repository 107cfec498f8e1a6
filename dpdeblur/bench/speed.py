"""``dpdeblur bench speed``: latency, throughput, achieved GFLOP/s against two
measured reference rates of the device (the best 3x3 convolution and a large matmul,
see :func:`~dpdeblur.bench.probe.device_peak`), peak memory and the cost of tiling.

Every configuration runs through the same engine ``dpdeblur deblur`` uses
(:func:`dpdeblur.inference.tiling.tiled_forward`; ``tile=0`` is the whole image),
on random weights unless weights are given (speed does not depend on them).
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from dpdeblur.bench.probe import PeakRSS, count_macs, device_peak, time_fn

__all__ = ["SpeedConfig", "bench_speed", "check_speed_outputs", "overlap_extra_area"]


@dataclass
class SpeedConfig:
    models: Sequence[str]
    devices: Sequence[str] = ("cpu",)
    precisions: Sequence[str] = ("auto",)
    tiles: Sequence[int] = (0,)
    sizes: Sequence[tuple[int, int]] = ((512, 512),)  # (width, height), as --size WIDTHxHEIGHT and the report's "WxH"
    overlap: int = 64
    tile_batch: int = 1
    global_stats: bool = True
    warmup: int = 1
    runs: int = 3
    max_seconds: float = 60.0
    weights: dict[str, str] = field(default_factory=dict)
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)

    def check(self) -> None:
        """Usage errors before any measurement, with the rules ``deblur`` applies to the same options."""
        from dpdeblur.errors import UsageError
        from dpdeblur.inference.device import resolve_device, resolve_precision
        from dpdeblur.inference.tiling import check_tiling
        from dpdeblur.models import get_card
        from dpdeblur.models.registry import check_model_config

        if not self.models:
            raise UsageError("model names none; name at least one model (see `dpdeblur models`)", settings=("model",))
        for what, values in (("device", self.devices), ("precision", self.precisions), ("tile", self.tiles),
                             ("size", self.sizes)):
            if not values:
                raise UsageError(f"{what} names none; give at least one value", settings=(what,))
        for name in self.models:
            get_card(name)
            check_model_config(name, self.overrides.get(name))
        for tile in self.tiles:
            check_tiling(tile, self.overlap, "hann", self.tile_batch)
        for w, h in self.sizes:
            if h < 1 or w < 1:
                raise UsageError(f"size {w}x{h}: width and height must be at least 1, e.g. 512x512", settings=("size",))
        if self.warmup < 0 or self.runs < 1 or not self.max_seconds > 0:
            raise UsageError("warmup must be >= 0, runs >= 1 and max_seconds > 0", settings=("warmup", "runs", "max_seconds"))
        for dev in self.devices:
            for prec in self.precisions:
                resolve_precision(prec, resolve_device(dev))


def check_speed_outputs(cfg: SpeedConfig, outputs: dict[str, Any]) -> None:
    """Usage errors before any measurement for output files (setting -> path: ``report``,
    ``markdown``, ``plot``) that cannot be written, share a file, or are a weights file the run reads."""
    from dpdeblur.bench.report import check_output_files

    check_output_files(outputs, input_files=[w for w in cfg.weights.values() if w], what="model weights")


def _memory_needed(cfg: SpeedConfig) -> int:
    """Bytes the largest input needs at the least: the input and the output canvases in float32."""
    from dpdeblur.models import get_card

    chans = max(get_card(n).in_channels for n in cfg.models) + 3 + 1  # input, RGB output and blend weight
    return max(4 * chans * w * h for w, h in cfg.sizes)


def _check_memory(cfg: SpeedConfig) -> None:
    """Refuse, before any measurement, a size whose input and output alone exceed the machine's
    memory (the allocator would fail, or the system would swap or kill the process, mid-run)."""
    import os

    from dpdeblur.errors import InputError

    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return
    need = _memory_needed(cfg)
    if total > 0 and need > total:
        w, h = max(cfg.sizes, key=lambda s: s[0] * s[1])
        raise InputError(f"size {w}x{h}: its input and output alone need {need / 2**30:.1f} GiB, more than this "
                         f"machine's {total / 2**30:.1f} GiB of memory; pass a smaller size", settings=("size",))


def _out_of_memory(e: BaseException, w: int, h: int, device: str, tile: int | None = None) -> None:
    """Re-raise an allocator failure as one line suggesting a smaller size or tile; other errors as they are."""
    from dpdeblur.errors import InputError

    text = str(e).lower()
    if not isinstance(e, MemoryError) and not any(k in text for k in ("out of memory", "not enough memory",
                                                                       "can't allocate", "cannot allocate",
                                                                       "failed to allocate")):
        raise e
    where = f"size {w}x{h}" + (f", tile {tile}" if tile else "")
    hint = "pass a smaller size or tile (e.g. tile 512)" if not tile else "pass a smaller size or tile"
    raise InputError(f"{where}: out of memory on {device}; {hint}", settings=("size", "tile")) from None


def overlap_extra_area(model, h: int, w: int, tile: int, overlap: int) -> float:
    """Fraction of extra pixels the model processes when tiling (sum of tile areas over
    the image area, minus one): the inherent cost of the overlap (and padding)."""
    from dpdeblur.inference.tiling import plan_tiles

    th, tw, tiles, _, _ = plan_tiles(model, h, w, tile, overlap)
    return len(tiles) * th * tw / (h * w) - 1.0


def bench_speed(cfg: SpeedConfig, on_row: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """Measure every (model, device, precision, size, tile) combination.

    Returns a ``speed`` report (see :mod:`dpdeblur.bench.report`).
    """
    import torch

    from dpdeblur.inference.device import resolve_device, resolve_precision
    from dpdeblur.inference.tiling import TileSettings, tiled_forward
    from dpdeblur.models import create_model, get_card

    cfg.check()
    _check_memory(cfg)
    rows: list[dict[str, Any]] = []
    peaks: dict[str, dict[str, float]] = {}
    meta: dict[str, Any] = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "peaks": peaks,
    }
    for dev_name in cfg.devices:
        dev = resolve_device(dev_name)
        dev_label = str(dev) + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else "")
        for prec in cfg.precisions:
            dtype = resolve_precision(prec, dev)
            prec_label = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
            pk_key = f"{dev_label}/{prec_label}"
            if pk_key not in peaks:
                peaks[pk_key] = device_peak(dev, dtype)
            conv_peak, mm_peak = peaks[pk_key]["conv3x3_gflops"], peaks[pk_key]["matmul_gflops"]
            for name in cfg.models:
                card = get_card(name)
                ov = cfg.overrides.get(name, {})
                model = create_model(name, weights=cfg.weights.get(name), **ov).eval().to(dev)
                for w, h in cfg.sizes:
                    macs = count_macs(name, h, w, tuple(sorted(ov.items())))
                    try:
                        x = torch.rand(1, card.in_channels, h, w)
                    except (MemoryError, RuntimeError) as e:
                        _out_of_memory(e, w, h, dev_label)
                    whole_ms = None
                    for tile in sorted(cfg.tiles):  # 0 (whole image) first
                        settings = TileSettings(tile=tile, overlap=cfg.overlap, tile_batch=cfg.tile_batch, global_stats=cfg.global_stats)
                        dt = None if dtype == torch.float32 else dtype

                        def fn():
                            return tiled_forward(model, x, settings, device=dev, dtype=dt)

                        if dev.type == "cuda":
                            torch.cuda.reset_peak_memory_stats(dev)
                        try:
                            with PeakRSS() as rss:
                                t = time_fn(fn, dev, warmup=cfg.warmup, runs=cfg.runs, max_seconds=cfg.max_seconds)
                        except (MemoryError, RuntimeError) as e:
                            _out_of_memory(e, w, h, dev_label, tile)
                        if dev.type == "cuda":
                            mem = torch.cuda.max_memory_allocated(dev) / 2**20
                        else:
                            mem = (rss.peak - rss.base) / 2**20
                        lat = t.median_s * 1000
                        gflops = 2 * macs / t.median_s / 1e9
                        row = {
                            "model": name,
                            "device": dev_label,
                            "precision": prec_label,
                            "size": f"{w}x{h}",
                            "tile": tile,
                            "latency_ms": lat,
                            "mpix_per_s": h * w / 1e6 / t.median_s,
                            "gmacs": macs / 1e9,
                            "gflops": gflops,
                            "pct_of_conv_peak": 100 * gflops / conv_peak,
                            "pct_of_matmul_peak": 100 * gflops / mm_peak,
                            "peak_mem_mb": mem,
                            "runs": t.runs,
                            "global_stats": cfg.global_stats,
                        }
                        if tile == 0 or tile >= max(h, w):
                            whole_ms = lat if tile == 0 else whole_ms
                        else:
                            row["overlap_extra_area_pct"] = 100 * overlap_extra_area(model, h, w, tile, cfg.overlap)
                            if whole_ms is not None:
                                row["tile_overhead_pct"] = 100 * (lat / whole_ms - 1)
                        rows.append(row)
                        if on_row:
                            on_row(row)
                del model
    return {"kind": "speed", "meta": meta, "rows": rows}
