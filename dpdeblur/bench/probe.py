"""Measurement primitives for ``dpdeblur bench speed``: device peak probes,
exact MAC counts at any input size, peak memory (CUDA allocator or CPU resident
set sampled from /proc), and synchronised timing."""

from __future__ import annotations

import functools
import os
import statistics
import threading
import time
from dataclasses import dataclass
from typing import Callable

__all__ = ["count_macs", "device_peak", "PeakRSS", "time_fn", "sync", "Timing"]


@functools.lru_cache(maxsize=64)
def count_macs(name: str, height: int, width: int, overrides: tuple = ()) -> int:
    """Multiply-accumulates of one forward pass of model ``name`` on an
    ``height`` x ``width`` input, counted on the meta device (instant, exact for
    convolutions, matmuls and attention, as torch.utils.flop_counter counts them)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from dpdeblur.models import create_model, get_card

    card = get_card(name)
    model = create_model(name, device="meta", **dict(overrides))
    x = torch.empty(1, card.in_channels, height, width, device="meta")
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model(x)
    return fc.get_total_flops() // 2


def sync(device) -> None:
    import torch

    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    elif dev.type == "mps":
        torch.mps.synchronize()


@dataclass
class Timing:
    median_s: float
    min_s: float
    runs: int


def time_fn(fn: Callable[[], object], device, warmup: int = 1, runs: int = 3, max_seconds: float = 60.0) -> Timing:
    """Median wall time of ``fn`` after ``warmup`` calls, synchronised on CUDA/MPS.
    Stops early (at least one timed run) when ``max_seconds`` is exceeded."""
    for _ in range(warmup):
        fn()
        sync(device)
    times = []
    t_start = time.perf_counter()
    for _ in range(max(1, runs)):
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
        if time.perf_counter() - t_start > max_seconds:
            break
    return Timing(statistics.median(times), min(times), len(times))


def device_peak(device="cpu", dtype=None, seconds: float = 2.0) -> dict[str, float]:
    """Two measured reference rates in GFLOP/s (2 x MACs / s) on ``device``:

    - ``conv3x3_gflops``: the best rate of dense 3x3 convolutions over a few shapes
      (64 to 256 channels, maps that fit in cache and maps that do not; shape in
      ``conv3x3_shape``). The library may run these with fewer multiplications than
      2 x MACs (Winograd, FFT), so this rate can exceed the hardware's FMA peak: "% of
      conv peak" says how close a model gets to the best convolution the library does.
    - ``matmul_gflops``: one large square matmul (``matmul_size``: 2048 on CPU, 8192 on
      GPUs), which does exactly its 2 x MACs, close to the dense FMA peak: "% of matmul
      peak" is the closer measure of how much of the hardware a model uses.

    Short probes run in the calling process so that they see the same threads,
    clocks and library as the model measured next.
    """
    import torch

    dev = torch.device(device)
    dtype = dtype or torch.float32
    big = dev.type != "cpu"
    conv_shapes = [(64, 256), (64, 128), (128, 128), (256, 64)] + ([(256, 256)] if big else [])
    n = 8192 if big else 2048

    def best(fn, macs, budget):
        fn()
        sync(dev)
        rates, t_end = [], time.perf_counter() + budget
        while time.perf_counter() < t_end or not rates:
            t = time.perf_counter()
            fn()
            sync(dev)
            rates.append(2 * macs / (time.perf_counter() - t) / 1e9)
        return max(rates)

    budget = seconds / (len(conv_shapes) + 1)
    with torch.inference_mode():
        conv_rates = {}
        for c, hw in conv_shapes:
            conv = torch.nn.Conv2d(c, c, 3, padding=1).to(dev, dtype)
            x = torch.randn(1, c, hw, hw, device=dev, dtype=dtype)
            conv_rates[f"{c}ch@{hw}"] = best(lambda: conv(x), c * c * 9 * hw * hw, budget)
        a = torch.randn(n, n, device=dev, dtype=dtype)
        mm = best(lambda: a @ a, n**3, budget)
    top = max(conv_rates, key=conv_rates.get)
    return {"conv3x3_gflops": conv_rates[top], "conv3x3_shape": top, "matmul_gflops": mm, "matmul_size": n}


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Context manager sampling this process's resident set every ``interval`` s.

    ``peak`` is the largest resident size seen (bytes), ``base`` the size at entry.
    On CUDA devices use ``torch.cuda.max_memory_allocated`` instead.
    """

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.base = self.peak = 0
        self._stop = threading.Event()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakRSS":
        self.base = self.peak = _rss_bytes()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())
