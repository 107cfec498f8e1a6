"""Loading and saving weights: safetensors first, ``torch.load(weights_only=True)``
for ``.pt``/``.pth``; common checkpoint wrappers unwrapped; checksums enforced.

Self-describing weights: a ``.safetensors`` written by :func:`save_weights` from a
registry model (or by ``dpdeblur train``) carries the model's registry name and its
builder overrides in the header metadata (keys ``model`` and ``model_config``, the
latter JSON); :func:`weights_model` reads them back and
:func:`dpdeblur.models.registry.resolve_model` turns them into defaults.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping

from dpdeblur.errors import WeightsError, WeightsMismatchError, few

__all__ = [
    "check_weights_file",
    "sha256_file",
    "read_state_dict",
    "unwrap_state_dict",
    "load_weights",
    "save_weights",
    "convert_weights",
    "model_metadata",
    "read_weights_metadata",
    "weights_model",
]

# G_state_dict: the JDRL authors' training checkpoints
_WRAPPER_KEYS = ("params_ema", "params", "state_dict", "model_state_dict", "model", "net", "network", "G_state_dict")


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def unwrap_state_dict(obj: Any) -> dict[str, Any]:
    """Strip the usual wrappers (``state_dict``, ``params_ema``, ``model``, ``net``...)
    and a ``module.`` (DDP) or ``_orig_mod.`` (torch.compile) prefix."""
    import torch

    seen = 0
    while isinstance(obj, Mapping) and seen < 4:
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            break
        for k in _WRAPPER_KEYS:
            if k in obj and isinstance(obj[k], Mapping):
                obj = obj[k]
                break
        else:
            break
        seen += 1
    if not isinstance(obj, Mapping):
        raise WeightsError(f"expected a state dict, found {type(obj).__name__}")
    out = {}
    for k, v in obj.items():
        if not isinstance(v, torch.Tensor):
            continue
        for prefix in ("module.", "_orig_mod."):
            while k.startswith(prefix):
                k = k[len(prefix):]
        out[k] = v
    if not out:
        raise WeightsError("no tensors found in the weights file")
    return out


def check_weights_file(path: str | Path, setting: str = "weights") -> str:
    """Cheap checks of a weights path (exists, a file, a weights format); returns the format
    (``safetensors`` or ``torch``) or raises :class:`WeightsError` naming the real problem and
    the ``setting`` that gave the path (``weights``, ``grow_from``...)."""
    path = Path(path)
    if path.is_dir():
        raise WeightsError(f"{path}: is a folder; {setting} takes a .safetensors/.pt file", settings=(setting,))
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found; check the path given as {setting} (a .safetensors/.pt file)",
                           settings=(setting,))
    kind = _sniff(path)
    if kind is None:
        raise WeightsError(f"{path}: not a weights file (neither safetensors nor a PyTorch checkpoint); "
                           "pass the .safetensors/.pt file written by `dpdeblur train` or a release")
    return kind


def _sniff(path: Path) -> str | None:
    """``safetensors``, ``torch`` (zip or legacy pickle) or None from the first bytes."""
    import struct

    with open(path, "rb") as f:
        head = f.read(16)
    if head[:2] == b"PK" or head[:1] == b"\x80":
        return "torch"
    if len(head) >= 9:
        n = struct.unpack("<Q", head[:8])[0]
        if head[8:9] == b"{" and 0 < n <= path.stat().st_size - 8:
            return "safetensors"
    return None


def read_state_dict(path: str | Path, sha256: str | None = None) -> dict[str, Any]:
    """Read a weights file into a plain state dict (tensors on CPU)."""
    import torch

    path = Path(path)
    kind = check_weights_file(path)
    if sha256:
        got = sha256_file(path)
        if got.lower() != sha256.lower():
            raise WeightsError(
                f"{path}: sha256 {got} does not match the pinned {sha256}; "
                "the file is corrupt or not the expected release (re-download or re-train it)"
            )
    try:
        if kind == "safetensors":
            from safetensors.torch import load_file

            obj = load_file(str(path), device="cpu")
        else:
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except WeightsError:
        raise
    except Exception as e:  # corrupt or unsafe pickles
        if type(e).__name__ == "UnpicklingError" and "weights_only" in str(e).lower():
            # torch's text advises weights_only=False, i.e. running the file's code: we do not
            raise WeightsError(
                f"{path}: refused: the checkpoint holds Python objects besides tensors, and loading them "
                "could run code from the file; re-save only its state_dict (or as .safetensors) where it was made"
            ) from None
        raise WeightsError(f"{path}: cannot read weights, the file is damaged or truncated ({_first_line(e)[:160]})") from None
    try:
        return unwrap_state_dict(obj)
    except WeightsError as e:
        raise WeightsError(f"{path}: {e}") from None


def load_weights(model, path: str | Path, sha256: str | None = None, strict: bool = True) -> None:
    """Load ``path`` into ``model``; a key or shape mismatch names the keys and the model."""
    sd = read_state_dict(path, sha256=sha256)
    adapt = getattr(model, "adapt_state_dict", None)  # a family's published key names -> ours
    if adapt is not None:
        sd = adapt(sd)
    own = model.state_dict()
    name = getattr(getattr(model, "card", None), "name", type(model).__name__)
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shapes = [
        f"{k} {tuple(sd[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)
    ]
    if strict and (missing or unexpected or shapes):
        parts = []
        if missing:
            parts.append(f"missing keys: {few(missing, 5)}")
        if unexpected:
            parts.append(f"unexpected keys: {few(unexpected, 5)}")
        if shapes:
            parts.append(f"shape mismatch: {few(shapes, 5)}")
        raise WeightsMismatchError(
            f"{path}: weights do not fit model {name} ({'; '.join(parts)}); "
            "pick the model these weights were trained for", settings=("model",)
        )
    model.load_state_dict({k: v for k, v in sd.items() if k in own}, strict=strict)


def grow_weights(model, path: str | Path) -> list[str]:
    """Start ``model`` from the weights of a smaller variant of its family (``dmtnet-s`` from
    ``dmtnet-t``): every tensor of the file is loaded into the parameter of the same name and
    shape, then the model's ``init_grown`` sets the parts the file lacks so that the grown
    network computes exactly what the smaller one did (training then starts from its quality,
    not from scratch). Returns the names of the new tensors.

    A file that is not a smaller variant (a tensor the model lacks or shapes that differ) or a
    family without ``init_grown`` raises :class:`WeightsMismatchError`.
    """
    sd = read_state_dict(path)
    own = model.state_dict()
    name = getattr(getattr(model, "card", None), "name", type(model).__name__)
    if not hasattr(model, "init_grown"):
        raise WeightsMismatchError(f"{path}: model {name} cannot grow from smaller weights (only DMTNet can); "
                                   "load them as weights instead", settings=("weights",))
    extra = [k for k in sd if k not in own]
    shapes = [f"{k} {tuple(sd[k].shape)} vs {tuple(own[k].shape)}" for k in sd if k in own and sd[k].shape != own[k].shape]
    if extra or shapes:
        why = f"tensors {name} lacks: {few(extra, 3)}" if extra else f"shape mismatch: {few(shapes, 3)}"
        raise WeightsMismatchError(f"{path}: not a smaller variant of {name} with the same widths ({why}); "
                                   "grow from a smaller model of the same family and configuration")
    if len(sd) == len(own):
        raise WeightsMismatchError(f"{path}: already holds every tensor of {name}; load it as weights (nothing to grow)",
                                   settings=("weights",))
    model.load_state_dict(sd, strict=False)
    new = [k for k in own if k not in sd]
    model.init_grown(new)
    return new


def _tuples(v: Any) -> Any:
    """JSON lists back to tuples (the form ``parse_model_config`` gives), recursively."""
    if isinstance(v, list):
        return tuple(_tuples(x) for x in v)
    if isinstance(v, dict):
        return {k: _tuples(x) for k, x in v.items()}
    return v


def model_metadata(name: str, config: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The metadata that makes a weights file self-describing: registry name and builder overrides."""
    return {"model": name, "model_config": json.dumps(dict(config or {}), sort_keys=True, default=str)}


def read_weights_metadata(path: str | Path) -> dict[str, str]:
    """The string metadata of a safetensors header (reads the header only); ``{}`` for
    PyTorch checkpoints, which have none."""
    path = Path(path)
    if check_weights_file(path) != "safetensors":
        return {}
    try:
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            return dict(f.metadata() or {})
    except Exception as e:
        raise WeightsError(f"{path}: cannot read weights ({_first_line(e)})") from e


def weights_model(path: str | Path) -> tuple[str | None, dict[str, Any] | None]:
    """``(model name, builder overrides)`` a weights file says it holds; None where it does not say."""
    meta = read_weights_metadata(path)
    cfg = None
    if "model_config" in meta:
        try:
            cfg = json.loads(meta["model_config"])
        except json.JSONDecodeError:
            cfg = None
        if not isinstance(cfg, dict):
            raise WeightsError(f"{path}: its model_config metadata is not a JSON object ({meta['model_config'][:60]!r})")
        cfg = _tuples(cfg)
    return meta.get("model") or None, cfg


def save_weights(model_or_sd, path: str | Path, metadata: dict[str, str] | None = None, dtype: str | None = None) -> str:
    """Atomically write weights as ``.safetensors``; returns the file's sha256.

    A model built by :func:`~dpdeblur.models.registry.create_model` describes itself:
    without explicit ``metadata`` its registry name and builder overrides are written.
    ``dtype`` (``"float16"``, ``"bfloat16"``, ``"float32"``) stores the floating-point
    tensors in that type (half the size for the 16-bit ones; integer buffers are kept):
    :func:`load_weights` casts them back to the model's own dtype.
    """
    from safetensors.torch import save_file

    from dpdeblur.utils.atomic import atomic_path

    card = getattr(model_or_sd, "card", None)
    if metadata is None and card is not None:
        metadata = model_metadata(card.name, getattr(model_or_sd, "model_config", {}))
    sd = model_or_sd.state_dict() if hasattr(model_or_sd, "state_dict") else model_or_sd
    cast = _storage_dtype(dtype)
    out = {}
    for k, v in sd.items():
        v = v.detach()
        if cast is not None and v.is_floating_point() and v.dtype != cast:
            c = v.to(cast)
            if not bool(c.isfinite().all()) and bool(v.isfinite().all()):
                raise WeightsError(f"{path}: {k} holds values beyond {dtype}'s range "
                                   f"(max |x| = {float(v.abs().max()):.3g}); store as bfloat16 or float32")
            v = c
        out[k] = v.contiguous().cpu()
    sd = out
    with atomic_path(path) as tmp:
        save_file(sd, str(tmp), metadata=metadata)
    return sha256_file(path)


_STORAGE_DTYPES = ("float32", "float16", "bfloat16")


def _storage_dtype(dtype: str | None):
    if dtype is None:
        return None
    import torch

    if dtype not in _STORAGE_DTYPES:
        raise WeightsError(f"cannot store weights as {dtype!r}; choose one of {', '.join(_STORAGE_DTYPES)}",
                           settings=("dtype",))
    return getattr(torch, dtype)


def convert_weights(src: str | Path, dst: str | Path, dtype: str = "float16") -> str:
    """Rewrite a weights file (``.safetensors`` or a PyTorch checkpoint) as ``.safetensors``
    with its floating-point tensors in ``dtype``, keeping its metadata (model name and
    config, step); returns the new file's sha256. ``src`` is never modified, and ``dst``
    may not be ``src``. A float16 copy of trained weights is half the size; values round to
    11 significant bits, which changes a deblurred image by far less than one 8-bit level.
    """
    src, dst = Path(src), Path(dst)
    if dst.resolve() == src.resolve():
        raise WeightsError(f"{dst}: would overwrite the source weights; write the converted copy to another file")
    if dst.suffix != ".safetensors":
        raise WeightsError(f"{dst}: converted weights are written as safetensors; name the file *.safetensors")
    _storage_dtype(dtype)  # a bad dtype fails before the file is read
    sd = read_state_dict(src)
    meta = read_weights_metadata(src) or None
    return save_weights(sd, dst, metadata=meta, dtype=dtype)
