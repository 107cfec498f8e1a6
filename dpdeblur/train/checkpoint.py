"""Checkpoints: atomic ``<tag>.safetensors`` weights (usable by ``--weights``) and, for
``last``, a ``last.state.pt`` with everything needed to continue exactly.

Run folder::

    last.safetensors            weights (EMA weights when --ema is on), metadata: model, model_config, step
    last.criterion.safetensors  criterion tensors (FCN ratios, JDRL ReblurNet), when it has any
    last.state.pt               model, criterion, optimizer, EMA, RNG (python, numpy, torch, cuda),
                                step, epoch, best PSNR, config: torch.save, loadable with weights_only=True
    best.safetensors, best.criterion.safetensors, best.json   by validation PSNR
    config.json, log.jsonl

Every file is written to a temporary name and renamed; ``last.state.pt`` is written
last and carries its own copy of the model weights, so a crash at any point leaves a
``last`` that loads and resumes consistently.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dpdeblur.errors import DpdeblurError
from dpdeblur.models.weights import save_weights
from dpdeblur.utils.atomic import atomic_path, atomic_write_text

__all__ = ["get_rng_state", "set_rng_state", "save_checkpoint", "load_state", "STATE_FORMAT"]

STATE_FORMAT = 1


def get_rng_state() -> dict[str, Any]:
    """Python, numpy, torch (and CUDA) generator states as tensors / lists (weights_only-safe)."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"][: torch.cuda.device_count()]
        torch.cuda.set_rng_state_all(cuda)


def _has_tensors(module) -> bool:
    return module is not None and len(module.state_dict()) > 0


def save_checkpoint(
    run_dir: str | Path,
    tag: str,
    *,
    weights_sd: dict,
    metadata: dict[str, str],
    criterion=None,
    state: dict[str, Any] | None = None,
    info: dict[str, Any] | None = None,
) -> Path:
    """Write ``<tag>.safetensors`` (+ criterion, + ``<tag>.json`` info, + ``<tag>.state.pt``).

    Returns the weights path. ``state`` (optional) is the resume state, saved last.
    """
    run_dir = Path(run_dir)
    path = run_dir / f"{tag}.safetensors"
    save_weights(weights_sd, path, metadata={k: str(v) for k, v in metadata.items()})
    if _has_tensors(criterion):
        save_weights(criterion.state_dict(), run_dir / f"{tag}.criterion.safetensors", metadata={"kind": "criterion"})
    if info is not None:
        atomic_write_text(run_dir / f"{tag}.json", json.dumps(info, indent=2, default=str) + "\n")
    if state is not None:
        with atomic_path(run_dir / f"{tag}.state.pt") as tmp:
            torch.save({"format": STATE_FORMAT, **state}, tmp)
    return path


def load_state(path: str | Path, map_location="cpu") -> dict[str, Any]:
    """Load a ``*.state.pt`` with ``weights_only=True``; a clear error if missing or corrupt."""
    path = Path(path)
    if not path.is_file():
        raise DpdeblurError(f"{path}: no checkpoint to resume from; train without resume first", settings=("resume",))
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        why = " ".join(str(e).split())[:160] or type(e).__name__
        raise DpdeblurError(f"{path}: unreadable checkpoint, truncated or damaged ({why}); restore it, or go back to "
                            "an earlier copy, or start the run again") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise DpdeblurError(f"{path}: not a dpdeblur training checkpoint (format {STATE_FORMAT})")
    return state
