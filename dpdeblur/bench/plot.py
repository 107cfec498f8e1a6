"""Optional PNG plot of a speed report (``pip install dpdeblur[plot]``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dpdeblur.errors import UsageError

__all__ = ["plot_speed", "check_plot_available"]


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("plot needs matplotlib: pip install 'dpdeblur[plot]'", settings=("plot",)) from None
    return plt


def check_plot_available() -> None:
    """Usage error, before any measurement, when matplotlib is not installed."""
    _pyplot()


def plot_speed(report: dict[str, Any], path: str | Path) -> Path:
    """Throughput (MP/s) against input size (megapixels), one line per model/device/precision/tile."""
    plt = _pyplot()
    from dpdeblur.utils.atomic import atomic_path

    series: dict[str, list[tuple[float, float]]] = {}
    for r in report["rows"]:
        w, h = (int(v) for v in r["size"].split("x"))  # WIDTHxHEIGHT
        label = f"{r['model']} {r['precision']} tile {r['tile']} ({r['device']})"
        series.setdefault(label, []).append((h * w / 1e6, r["mpix_per_s"]))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, pts in sorted(series.items()):
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
    ax.set_xlabel("input size (megapixels)")
    ax.set_ylabel("throughput (megapixels / s)")
    ax.set_title("dpdeblur bench speed")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return path
