"""Device and precision choice for inference: ``auto|cpu|cuda|cuda:N|mps`` and ``auto|fp32|bf16|fp16``."""

from __future__ import annotations

import torch
from torch import nn

from dpdeblur.choices import PRECISIONS
from dpdeblur.errors import UsageError

__all__ = ["PRECISIONS", "resolve_device", "resolve_precision", "prepare_model"]


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` = first CUDA GPU, else MPS, else CPU; an unavailable device is a usage error."""
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise UsageError(f"device {name!r}: expected auto, cpu, cuda, cuda:N or mps", settings=("device",)) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"device {name}: CUDA is not available here; use device cpu", settings=("device",))
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UsageError(f"device {name}: only {torch.cuda.device_count()} CUDA device(s)", settings=("device",))
    elif dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UsageError(f"device {name}: MPS is not available here; use device cpu", settings=("device",))
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise UsageError(f"device {name!r}: expected auto, cpu, cuda, cuda:N or mps", settings=("device",))
    return dev


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """``auto`` = bf16 on CUDA GPUs that support it, fp32 elsewhere."""
    p = (precision or "auto").lower()
    if p not in PRECISIONS:
        raise UsageError(f"precision {precision!r}: choose one of {', '.join(PRECISIONS)}", settings=("precision",))
    if p == "auto":
        bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if bf16 else torch.float32
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[p]


def prepare_model(model: nn.Module, device: torch.device, compile: bool = False, channels_last: bool = False) -> nn.Module:
    """Eval mode on ``device``; optional ``channels_last`` and ``torch.compile``.

    The compiled wrapper keeps ``card`` and ``multiple_of`` of the model and its
    pooling modules (they are the same objects), so tiling works unchanged.
    """
    model = model.eval().to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if compile:
        compiled = torch.compile(model)
        for attr in ("card", "multiple_of"):
            if hasattr(model, attr):
                setattr(compiled, attr, getattr(model, attr))
        return compiled
    return model
