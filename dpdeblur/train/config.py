"""Training configuration: defaults < recipe < config file (TOML/YAML) < flags.

``RECIPES`` holds the papers' settings per family; ``--recipe paper`` picks the
model family's (``RECIPE_FOR_FAMILY``), ``--jdrl`` picks the JDRL one.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dpdeblur.models.registry import parse_model_config  # noqa: F401 (re-exported)
from dpdeblur.choices import SCHEDULES
from dpdeblur.errors import UsageError

__all__ = ["TrainConfig", "RECIPES", "RECIPE_FOR_FAMILY", "resolve_config", "resume_config", "load_run_config",
           "load_config_file", "parse_model_config"]

# Where a paper is silent (batch size, cosine floor) the choice is ours; see train-readme.
RECIPES: dict[str, dict[str, Any]] = {
    "dmtnet": dict(  # DMTNet paper, section 4.1
        optimizer="adam", betas=(0.9, 0.999), lr=1e-4, schedule="cosine", lr_min=1e-6, epochs=1000,
        loss="charbonnier", patch=512, patch_mode="slide", overlap=0.6, flips=True, batch_size=4,
    ),
    "jdrl": dict(  # JDRL paper + public code (256 crops)
        optimizer="adam", betas=(0.9, 0.999), lr=2e-5, schedule="step", step_epochs=60, gamma=0.5,
        epochs=100, patch=256, patch_mode="crop", flips=True, batch_size=4,
    ),
    "fcn": dict(  # FCN paper, section 4.2: training images resized to 256x256 (--patch-mode crop: random crops)
        optimizer="adam", betas=(0.9, 0.999), lr=2e-4, schedule="step", step_epochs=200, gamma=0.5,
        epochs=600, patch=256, patch_mode="resize", flips=True, batch_size=8,
    ),
}
RECIPE_FOR_FAMILY = {"dmtnet": "dmtnet", "fcn": "fcn", "unet": "jdrl"}


@dataclass
class TrainConfig:
    """Every training setting (flag names: ``--batch-size`` for ``batch_size``...)."""

    # data
    dataset: str = "dpdd"
    data_root: str | None = None
    blur: str | None = None
    sharp: str | None = None
    left: str | None = None
    right: str | None = None
    cache: str | None = None
    num_workers: int = 0
    # model and loss
    model: str = "dmtnet-b"
    model_config: dict[str, Any] = field(default_factory=dict)
    weights: str | None = None  # initial weights (fine-tuning)
    grow_from: str | None = None  # weights of a smaller variant (dmtnet-t for dmtnet-s): models.weights.grow_weights
    recipe: str = "paper"
    jdrl: bool = False
    jdrl_warmup: int = 15  # epochs with flow between GT and blurry input
    jdrl_warmup_mode: str = "paper"  # paper (whole loss) | code (authors' script: O vs warped GT only)
    jdrl_mask_norm: str = "all"  # all (masked pixels contribute eps, reference) | kept
    flow_cache: str | None = None  # `dpdeblur align --out` folder: flow/<id>.npy for the JDRL warm-up
    loss: str | None = None  # None: the family's default criterion
    # optimisation
    optimizer: str = "adam"
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    lr: float = 1e-4
    schedule: str = "cosine"  # cosine | step | constant
    lr_min: float = 1e-6
    step_epochs: int = 60
    gamma: float = 0.5
    epochs: int = 1000
    batch_size: int = 4
    patch: int = 512
    patch_mode: str = "slide"  # slide | crop | resize
    overlap: float = 0.6
    flips: bool = True
    drop_flat: float = 0.0
    crops_per_image: int = 1
    clip: float = 0.0  # gradient norm clip, 0 = off
    ema: float = 0.0  # EMA decay, 0 = off
    amp: bool | None = None  # bf16 autocast: None = on CUDA only, True = on any device (CPU too), False = off
    max_nonfinite: int = 5
    # run
    out: str = "runs/train"
    seed: int = 0
    device: str = "auto"
    max_steps: int = 0  # 0 = run all epochs
    val_every: int = 10  # epochs; 0 = only at the end
    val_crop: int = 0
    val_max: int = 0
    ssim: str = "wang"
    log_every: int = 10
    save_every: int = 0  # steps; 0 = at each epoch end
    progress: bool = True
    tensorboard: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise UsageError(f"unknown training settings: {', '.join(unknown)}; see `dpdeblur train --help`")
        d = dict(d)
        if "betas" in d:
            try:
                d["betas"] = tuple(float(b) for b in d["betas"])
            except (TypeError, ValueError):
                raise UsageError(f"betas {d['betas']!r}: expected two numbers, e.g. [0.9, 0.999]") from None
        return cls(**d)

    def validate(self) -> None:
        """Usage errors for impossible settings (checked before any file is read or written)."""
        _check(self)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Settings from a TOML (``.toml``) or YAML (``.yaml``/``.yml``) file; keys as in
    :class:`TrainConfig` (dashes allowed). A ``[model_config]`` table sets model overrides."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: {'is a folder, not a' if path.is_dir() else 'no such'} config file; "
                         "give a .toml, .yaml or .json file of settings")
    try:
        if path.suffix.lower() == ".toml":
            try:
                import tomllib
            except ImportError:  # Python 3.10
                import tomli as tomllib
            data = tomllib.loads(path.read_text())
        elif path.suffix.lower() in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise UsageError(f"{path}: YAML configs need PyYAML (pip install pyyaml) or use TOML") from None
            data = yaml.safe_load(path.read_text()) or {}
        elif path.suffix.lower() == ".json":
            data = json.loads(path.read_text())
        else:
            raise UsageError(f"{path}: config files are .toml, .yaml/.yml or .json")
    except UsageError:
        raise
    except Exception as e:
        raise UsageError(f"{path}: cannot parse config ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a table of settings")
    return {k.replace("-", "_"): v for k, v in data.items()}


def load_run_config(run_dir: str | Path) -> dict[str, Any]:
    """The settings a run was started with (``<run>/config.json``); a usage error naming the
    file when it is missing, unreadable or not a table of settings."""
    run = Path(run_dir)
    if run.exists() and not run.is_dir():
        raise UsageError(f"out {run}: is a file, not a training run folder", settings=("out",))
    p = run / "config.json"
    if not p.is_file():
        raise UsageError(f"{run}: no config.json; is this a dpdeblur training run folder? (train without resume first)",
                         settings=("resume",))
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        why = e.strerror if isinstance(e, OSError) and e.strerror else str(e).splitlines()[0]
        raise UsageError(f"{p}: unreadable run settings ({why}); restore the file or start a new run") from None
    if not isinstance(d, dict):
        raise UsageError(f"{p}: not a table of run settings; restore the file or start a new run")
    return d


def resume_config(run_dir: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """The configuration of a resumed run: the settings it was started with (``config.json``)
    with ``overrides`` (settings given again; None = not given) on top, checked like a new one.
    What a checkpoint depends on cannot change (:func:`dpdeblur.train.loop.check_resume`)."""
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    return TrainConfig.from_dict({**load_run_config(run_dir), **given})


def _check_start(values: dict[str, Any]) -> None:
    if values.get("weights") and values.get("grow_from"):
        raise UsageError("weights and grow_from both set the starting weights; pass one", settings=("weights", "grow_from"))


def resolve_config(overrides: dict[str, Any], config_file: str | Path | None = None) -> TrainConfig:
    """Merge defaults, the recipe, a config file and explicit ``overrides`` (flags given)."""
    file_vals = load_config_file(config_file) if config_file else {}
    chosen = {**file_vals, **{k: v for k, v in overrides.items() if v is not None}}
    from dpdeblur.models import resolve_model

    if not isinstance(chosen.get("model_config", {}), dict):
        raise UsageError("model_config must be a table of builder settings, e.g. {dim = 48, blocks = 2}")
    _check_start(chosen)
    # fine-tuning from self-describing weights: their model and builder config are the defaults
    card, model_config = resolve_model(chosen.get("model"), chosen.get("weights"), chosen.get("model_config"),
                                       default=TrainConfig.model)
    chosen.update(model=card.name, model_config=model_config)
    family = card.family
    recipe = chosen.get("recipe", "paper")
    if chosen.get("jdrl"):
        recipe = "jdrl" if recipe == "paper" else recipe
    name = RECIPE_FOR_FAMILY.get(family, "dmtnet") if recipe == "paper" else recipe
    if name not in RECIPES and name != "none":
        raise UsageError(f"unknown recipe {recipe!r}; choose paper, none or one of {', '.join(RECIPES)}")
    base = dict(RECIPES.get(name, {}))
    cfg = TrainConfig.from_dict({**base, **chosen, "recipe": recipe})
    _check(cfg)
    return cfg


_INT_MIN = {  # setting -> smallest allowed value (integers)
    "batch_size": 1, "patch": 1, "epochs": 1, "crops_per_image": 1, "max_nonfinite": 1, "log_every": 1,
    "num_workers": 0, "jdrl_warmup": 0, "step_epochs": 1, "max_steps": 0, "val_every": 0, "val_crop": 0,
    "val_max": 0, "save_every": 0, "seed": 0,
}
_BOOLS = ("jdrl", "flips", "progress", "tensorboard")


def _check(cfg: TrainConfig) -> None:
    import math

    from dpdeblur.choices import SSIM_WINDOW_SIDE, SSIM_WINDOWS

    for k, lo in _INT_MIN.items():
        v = getattr(cfg, k)
        if isinstance(v, bool) or not isinstance(v, int):
            raise UsageError(f"{k} {v!r}: expected a whole number >= {lo}", settings=(k,))
        if v < lo:
            raise UsageError(f"{k} {v}: must be at least {lo}", settings=(k,))
    for k in ("lr", "lr_min", "gamma", "weight_decay", "clip", "ema", "overlap", "drop_flat"):
        v = getattr(cfg, k)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise UsageError(f"{k} {v!r}: expected a finite number", settings=(k,))
    for k in _BOOLS + ("amp",):
        v = getattr(cfg, k)
        if not (isinstance(v, bool) or (k == "amp" and v is None)):
            raise UsageError(f"{k} {v!r}: expected true or false", settings=(k,))
    if not cfg.lr > 0:
        raise UsageError(f"lr {cfg.lr}: the learning rate must be > 0, e.g. 1e-4", settings=("lr",))
    for k in ("lr_min", "weight_decay", "clip"):
        if getattr(cfg, k) < 0:
            raise UsageError(f"{k} {getattr(cfg, k)}: must be >= 0 (0 = off)", settings=(k,))
    if not cfg.gamma > 0:
        raise UsageError(f"gamma {cfg.gamma}: must be > 0", settings=("gamma",))
    if not isinstance(cfg.model_config, dict):
        raise UsageError(f"model_config {cfg.model_config!r}: expected a table of KEY = VALUE")
    if cfg.loss is not None:
        from dpdeblur.losses.criteria import list_criteria

        if str(cfg.loss).lower() not in list_criteria():
            raise UsageError(f"loss {cfg.loss!r}: choose one of {', '.join(list_criteria())}", settings=("loss",))
    if str(cfg.device).lower() != "auto":
        from dpdeblur.inference.device import resolve_device

        resolve_device(str(cfg.device))  # the rules of deblur's --device
    if cfg.out is not None and Path(cfg.out).exists() and not Path(cfg.out).is_dir():
        raise UsageError(f"out {cfg.out}: is a file, not a run folder; choose a folder path", settings=("out",))
    if cfg.out is not None:
        from dpdeblur.utils.atomic import check_output_folder

        check_output_folder(cfg.out)  # under a file, or in a folder not writable
    if cfg.cache is not None and Path(cfg.cache).exists() and not Path(cfg.cache).is_dir():
        raise UsageError(f"cache {cfg.cache}: is a file, not a folder; choose a folder for the decoded images",
                         settings=("cache",))
    from dpdeblur.data.patches import PATCH_MODES

    if cfg.patch_mode not in PATCH_MODES:
        raise UsageError(f"unknown patch_mode {cfg.patch_mode!r}; choose {', '.join(PATCH_MODES)}", settings=("patch_mode",))
    if cfg.schedule not in SCHEDULES:
        raise UsageError(f"unknown schedule {cfg.schedule!r}; choose {', '.join(SCHEDULES)}")
    if cfg.ssim not in SSIM_WINDOWS:
        raise UsageError(f"unknown ssim {cfg.ssim!r}; choose {' or '.join(SSIM_WINDOWS)}", settings=("ssim",))
    side = SSIM_WINDOW_SIDE[cfg.ssim]
    if 0 < cfg.val_crop < side:
        raise UsageError(f"val_crop {cfg.val_crop}: SSIM ({cfg.ssim}) needs at least {side}x{side} pixels; "
                         f"use 0 (whole images) or at least {side}", settings=("val_crop",))
    if cfg.optimizer.lower() not in ("adam", "adamw"):
        raise UsageError(f"unknown optimizer {cfg.optimizer!r}; choose adam or adamw")
    for k in ("batch_size", "patch", "epochs"):
        if getattr(cfg, k) < 1:
            raise UsageError(f"{k} must be at least 1", settings=(k,))
    if not 0 <= cfg.overlap < 1:
        raise UsageError("overlap must be in [0, 1)", settings=("overlap",))
    _check_start(vars(cfg))
    if not 0 <= cfg.drop_flat < 1:
        raise UsageError("drop_flat must be in [0, 1)", settings=("drop_flat",))
    from dpdeblur.losses.jdrl import WARMUP_MODES
    from dpdeblur.losses.pixel import MASK_NORMS

    if cfg.jdrl_warmup_mode not in WARMUP_MODES:
        raise UsageError(f"unknown jdrl_warmup_mode {cfg.jdrl_warmup_mode!r}; choose {' or '.join(WARMUP_MODES)}", settings=("jdrl_warmup_mode",))
    if cfg.jdrl_mask_norm not in MASK_NORMS:
        raise UsageError(f"unknown jdrl_mask_norm {cfg.jdrl_mask_norm!r}; choose {' or '.join(MASK_NORMS)}", settings=("jdrl_mask_norm",))
    if not 0 <= cfg.ema < 1:
        raise UsageError("ema must be a decay in [0, 1), e.g. 0.999", settings=("ema",))
