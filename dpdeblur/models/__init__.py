"""Networks and the model registry (``create_model``, ``list_models``, ``get_card``).

Importing this package does not import torch; building a model does.
"""

from dpdeblur.models.registry import (
    ModelCard,
    create_model,
    get_card,
    list_models,
    parse_model_config,
    register_model,
    resolve_model,
    resolve_weights,
)

__all__ = ["ModelCard", "create_model", "get_card", "list_models", "parse_model_config", "register_model", "resolve_model", "resolve_weights"]
