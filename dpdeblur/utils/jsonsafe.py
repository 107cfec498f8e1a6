"""Strict JSON (RFC 8259) from results that may hold an infinite PSNR or a NaN: every command's
``--json`` output and every report file go through :func:`json_safe`."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["json_safe"]


def json_safe(obj: Any) -> Any:
    """``obj`` with every non-finite number (an infinite PSNR, a NaN delta) as None, tuples as
    lists and other non-JSON values as their ``str``: what strict JSON (RFC 8259) can hold."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if obj is None or isinstance(obj, (str, bool, int)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    try:  # numpy / torch scalars
        import numbers

        if isinstance(obj, numbers.Integral):
            return int(obj)
        if isinstance(obj, numbers.Real):
            return json_safe(float(obj))
    except (TypeError, ValueError):
        pass
    return str(obj)
