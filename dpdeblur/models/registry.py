"""Model registry: a name resolves to a builder and a :class:`ModelCard`.

The registry is importable without torch (cards are plain data), so that
``dpdeblur models`` and shell completion stay instant. ``create_model`` imports
the network module only when a model is built.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

__all__ = [
    "ModelCard",
    "register_model",
    "list_models",
    "get_card",
    "create_model",
    "resolve_weights",
    "resolve_model",
    "ASSETS_WEIGHTS_DIR",
    "parse_model_config",
    "builder_options",
    "check_model_config",
]

#: Where bundled weights live in a source checkout / editable install.
ASSETS_WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "assets" / "weights"


@dataclass(frozen=True)
class ModelCard:
    """Everything a user or a command needs to know about a registered model.

    Attributes:
        name: registry name, e.g. ``"dmtnet-b"``.
        family: network family (``dmtnet``, ``fcn``, ``unet``).
        paper: short citation.
        layout: ``"dp"`` (two dual-pixel views) or ``"rgb"`` (one image).
        views: for ``dp`` models, the order in which views are concatenated on
            the channel axis, e.g. ``("right", "left")``; empty for ``rgb``.
        multiple_of: the network pads (reflect) every input to a multiple of this.
        params: parameter count of the built network (checked by a test).
        macs: multiply-accumulates for one 1680x1120 input (checked by a test).
        paper_params: parameter count the paper reports (None if not reported).
        paper_macs: MACs at 1680x1120 the paper reports (None if not reported).
        paper_metrics: the paper's reported metrics, e.g. ``{"dpdd_psnr": 26.63}``.
        weights: default weights file name (looked up in the weights search path),
            or None when no weights are bundled.
        weights_sha256: pinned sha256 of ``weights``.
        module: python module holding the builder.
        builder: builder function name in ``module``.
        config: keyword arguments passed to the builder.
        tileable: whether tiled inference reproduces the whole-image result (up to
            the blend): False for networks that split or pool their whole input by
            design (FCN's patch stages), which then run whole-image by default.
        tile: recommended tile size in pixels for ``deblur``; 0 = whole image.
        tile_align: tile starts fall on multiples of this (with the default config),
            e.g. DMTNet's attention-window grid (patch 4 x window 7 = 28 px).
        notes: free text (choices made where the paper is silent).
    """

    name: str
    family: str
    paper: str
    layout: str
    views: tuple[str, ...]
    multiple_of: int
    params: int
    macs: int
    paper_params: int | None
    paper_macs: int | None
    paper_metrics: dict[str, float] = field(default_factory=dict)
    weights: str | None = None
    weights_sha256: str | None = None
    module: str = ""
    builder: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    tileable: bool = True
    tile: int = 512
    tile_align: int = 1
    notes: str = ""

    def __post_init__(self) -> None:
        if not self.tileable and self.tile:
            raise ValueError(f"model card {self.name}: a model that does not tile recommends tile=0")

    @property
    def in_channels(self) -> int:
        return 3 * max(1, len(self.views))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["views"] = list(self.views)
        d["in_channels"] = self.in_channels
        return d


_REGISTRY: dict[str, ModelCard] = {}
_CARD_MODULES = (
    "dpdeblur.models.cards",
)
_loaded = False


def register_model(card: ModelCard) -> ModelCard:
    if card.name in _REGISTRY:
        raise ValueError(f"model {card.name!r} is already registered")
    _REGISTRY[card.name] = card
    return card


def _ensure_loaded() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for mod in _CARD_MODULES:
            importlib.import_module(mod)


def list_models() -> list[str]:
    """Names of all registered models, in registration order."""
    _ensure_loaded()
    return list(_REGISTRY)


def get_card(name: str) -> ModelCard:
    """The model card of ``name``; a clear error listing the known names otherwise."""
    _ensure_loaded()
    try:
        return _REGISTRY[name.lower()]
    except KeyError:
        from dpdeblur.errors import UnknownModelError

        raise UnknownModelError(
            f"unknown model {name!r}; known models: {', '.join(_REGISTRY)}"
        ) from None


def _builder(card: ModelCard) -> Callable[..., Any]:
    return getattr(importlib.import_module(card.module), card.builder)


def resolve_weights(card: ModelCard) -> Path | None:
    """Path of the card's default weights file, or None if it has none / is absent.

    Search order: ``$DPDEBLUR_WEIGHTS_DIR``, ``~/.cache/dpdeblur/weights``, the
    repository's ``assets/weights`` (source checkout, editable install), then
    ``<prefix>/share/dpdeblur/weights`` (where ``pip install .`` puts the bundled files).
    """
    import os
    import sys

    if not card.weights:
        return None
    dirs = []
    if os.environ.get("DPDEBLUR_WEIGHTS_DIR"):
        dirs.append(Path(os.environ["DPDEBLUR_WEIGHTS_DIR"]))
    dirs.append(Path.home() / ".cache" / "dpdeblur" / "weights")
    dirs.append(ASSETS_WEIGHTS_DIR)
    dirs.append(Path(sys.prefix) / "share" / "dpdeblur" / "weights")
    for d in dirs:
        p = d / card.weights
        if p.is_file():
            return p
    return None


def _same(a: Any, b: Any) -> bool:
    """Config values equal up to tuple/list (JSON metadata turns tuples into lists)."""
    norm = lambda v: list(map(norm, v)) if isinstance(v, (list, tuple)) else v  # noqa: E731
    return norm(a) == norm(b)


def resolve_model(
    name: str | None = None,
    weights: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    *,
    default: str | None = None,
) -> tuple[ModelCard, dict[str, Any]]:
    """The model card and builder overrides to build for ``weights``.

    A ``.safetensors`` written by ``dpdeblur train`` or :func:`save_weights` names its
    model and builder overrides in its metadata (see :mod:`dpdeblur.models.weights`):
    they are the defaults, so such a file loads with no name and no overrides. A
    requested ``name`` or override that contradicts the file raises
    :class:`~dpdeblur.errors.UsageError` naming both. Without metadata (``.pt`` files,
    foreign weights) ``name`` (or ``default``) and ``overrides`` are used as given.

    Returns:
        ``(card, overrides)``: build with ``{**card.config, **overrides}``.
    """
    from dpdeblur.errors import UsageError, WeightsMismatchError, few
    from dpdeblur.models.weights import weights_model

    overrides = dict(overrides or {})
    file_name, file_cfg = weights_model(weights) if weights is not None else (None, None)
    if file_name is not None and file_name.lower() not in list_models():
        raise UsageError(f"{weights} holds weights of model {file_name!r}, which this version does not know "
                         f"(known: {', '.join(list_models())})")
    if name is None:
        name = file_name or default
    if name is None:
        if weights is None:
            raise UsageError("no model given: name a registered model (see `dpdeblur models`) or pass weights written by `dpdeblur train`")
        raise UsageError(f"{weights}: the file does not say which model it holds (no dpdeblur metadata); "
                         "name the model it was trained for (see `dpdeblur models`)")
    card = get_card(name)
    if file_name is not None and file_name.lower() != card.name:
        raise WeightsMismatchError(f"{weights} holds {file_name} weights but model {card.name} was requested; "
                                   f"leave the model out to use the file's, or pass weights trained for {card.name}")
    if file_cfg is None:
        return card, overrides
    trained = {**card.config, **file_cfg}
    clash = []
    for k, v in overrides.items():
        if k not in trained:
            trained = {**builder_options(card.name), **file_cfg}  # the builder's defaults (imports the network)
            if k not in trained:  # not a builder argument: create_model reports it
                continue
        if not _same(v, trained[k]):
            clash.append(f"{k}={v!r} (file: {trained[k]!r})")
    if clash:
        shown = ",".join(f"{k}={v!r}" for k, v in file_cfg.items()) or "the default config"
        raise UsageError(f"{weights} holds {card.name} weights built with {shown}, but {few(clash, 4)} was requested; "
                         "leave the config out to use the file's")
    return card, {**file_cfg, **overrides}


def create_model(
    name: str | None = None,
    weights: str | Path | None = None,
    *,
    pretrained: bool = False,
    device: Any = None,
    **overrides: Any,
):
    """Build a registered model.

    Args:
        name: registry name (see :func:`list_models`); may be left out when ``weights``
            is a self-describing ``.safetensors`` (see :func:`resolve_model`).
        weights: a ``.safetensors``/``.pt``/``.pth`` file to load; its metadata (model
            name, builder overrides) are the defaults and must not be contradicted.
        pretrained: load the card's default weights (error if it has none), checked
            against the card's pinned sha256.
        device: where to build (``"meta"`` builds without memory, for counting).
        **overrides: builder keyword arguments replacing the card's config (tiny
            configs for tests, ablations).

    Returns:
        ``torch.nn.Module`` with attributes ``card`` (the :class:`ModelCard`) and
        ``model_config`` (the builder overrides it was built with).
    """
    import torch

    sha = None
    if weights is None and pretrained:
        card, _ = resolve_model(name)  # no name: a usage error
        path = resolve_weights(card)
        if path is None:
            from dpdeblur.errors import WeightsError

            raise WeightsError(
                f"model {card.name} has no bundled weights; pass weights FILE "
                f"(train your own with `dpdeblur train --model {card.name}`)", settings=("weights",)
            )
        weights, sha = path, card.weights_sha256
    card, overrides = resolve_model(name, weights, overrides)
    cfg = {**card.config, **overrides}
    build = _builder(card)
    valid = builder_options(card.name)
    unknown = sorted(k for k in overrides if valid and k not in valid)
    if unknown:
        from dpdeblur.errors import ModelConfigError

        raise ModelConfigError(f"model_config {', '.join(unknown)}: not an option of {card.name}; "
                               f"valid keys: {_describe(valid)}", settings=("model_config",))
    try:
        if device is not None:
            with torch.device(device):
                model = build(**cfg)
        else:
            model = build(**cfg)
    except Exception as e:  # noqa: BLE001 - a builder refusing a value is the user's configuration
        if not overrides:
            raise
        from dpdeblur.errors import ModelConfigError

        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        given = ",".join(f"{k}={v!r}" for k, v in overrides.items())
        raise ModelConfigError(f"model_config {given}: {card.name} cannot be built ({msg}); "
                               f"valid keys (defaults): {_describe(valid)}", settings=("model_config",)) from None
    model.card = card
    model.model_config = overrides
    if weights is not None:
        from dpdeblur.models.weights import load_weights

        load_weights(model, weights, sha256=sha)
    return model


def builder_options(name: str) -> dict[str, Any]:
    """Keyword options of ``name``'s builder with their defaults (the card's config applied);
    what ``--model-config`` accepts. Imports the network module (and torch)."""
    import inspect

    card = get_card(name)
    build = _builder(card)
    target: Any = build
    params = inspect.signature(build).parameters
    if all(p.kind == p.VAR_KEYWORD for p in params.values()):  # def dmtnet(**kwargs) -> DMTNet
        ret = inspect.signature(build).return_annotation
        if isinstance(ret, str):
            ret = getattr(importlib.import_module(card.module), ret, None)
        if ret is None or ret is inspect.Signature.empty:
            return {}
        target = ret
    out = {k: p.default for k, p in inspect.signature(target).parameters.items()
           if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and k != "self"}
    return {k: card.config.get(k, v) for k, v in out.items()}


def _describe(options: dict[str, Any]) -> str:
    import inspect

    return ", ".join(k if v is inspect.Parameter.empty else f"{k}={v!r}" for k, v in options.items())


def check_model_config(name: str, overrides: dict[str, Any] | None) -> None:
    """Usage error (listing the valid keys) when ``overrides`` has an unknown key or a value
    the builder refuses; builds on the ``meta`` device, so it costs no memory or time."""
    if overrides:
        create_model(name, device="meta", **overrides)


def _value(text: str) -> Any:
    t = text.strip()
    if t.lower() in ("true", "false"):
        return t.lower() == "true"
    try:
        return ast.literal_eval(t)
    except (ValueError, SyntaxError):
        return t


def parse_model_config(values: "str | Iterable[str] | None") -> dict[str, Any]:
    """``["dim=12,blocks=1", "scales=(1,2)"]`` -> ``{"dim": 12, "blocks": 1, "scales": (1, 2)}``.

    Commas inside brackets do not split; values are Python literals (numbers,
    tuples, booleans) or plain strings.
    """
    from dpdeblur.errors import UsageError

    if isinstance(values, str):
        values = [values]
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
                raise UsageError(f"model_config {p!r}: expected KEY=VALUE, e.g. dim=12,blocks=1", settings=("model_config",))
            k, v = p.split("=", 1)
            out[k.strip()] = _value(v)
    return out
