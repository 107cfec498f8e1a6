"""Option parsing shared by several commands (no torch)."""

from __future__ import annotations

import ast
from typing import Any, Iterable

from dpdeblur.errors import UsageError

__all__ = ["parse_model_config"]


def _value(text: str) -> Any:
    t = text.strip()
    if t.lower() in ("true", "false"):
        return t.lower() == "true"
    try:
        return ast.literal_eval(t)
    except (ValueError, SyntaxError):
        return t


def parse_model_config(values: Iterable[str] | None) -> dict[str, Any]:
    """``["dim=12,blocks=1", "scales=(1,2)"]`` -> ``{"dim": 12, "blocks": 1, "scales": (1, 2)}``.

    Commas inside brackets do not split; values are Python literals (numbers,
    tuples, booleans) or plain strings.
    """
    out: dict[str, Any] = {}
    for chunk in values or []:
        parts, depth, cur = [], 0, ""
        for ch in chunk:
            depth += ch in "([{"
            depth -= ch in ")]}"
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
            else:
                cur += ch
        parts.append(cur)
        for p in filter(str.strip, parts):
            if "=" not in p:
                raise UsageError(f"--model-config {p!r}: expected KEY=VALUE, e.g. dim=12,blocks=1")
            k, v = p.split("=", 1)
            out[k.strip()] = _value(v)
    return out
