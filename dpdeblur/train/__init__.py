"""Training: ``fit(TrainConfig) -> RunResult``, recipes, checkpoints, exact resume, DDP."""

from dpdeblur.train.config import (RECIPES, TrainConfig, load_config_file, load_run_config, parse_model_config, resolve_config,
                                   resume_config)
from dpdeblur.train.loop import RunResult, fit

__all__ = ["RECIPES", "RunResult", "TrainConfig", "fit", "load_config_file", "load_run_config", "parse_model_config", "resolve_config",
           "resume_config"]
