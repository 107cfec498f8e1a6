"""Shared fixtures: seeded generators for every test and the suite's one set of tiny model configs."""

import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")

#: Tiny builder overrides per model family (add one per new family): small enough for 2 CPU cores,
#: deep enough to keep every code path (DMTNet: window attention, a DMSSRM with one RBM/RM).
TINY_CONFIGS = {
    "dmtnet": dict(dim=12, blocks=1, heads=2, window=4, channels=8, n_rbm=1, n_rm=1),
    "fcn": dict(dim=8, n_pb=1, n_efem=1, n_rim=1, groups=2),
    "unet": dict(base=4, depth=3),
}


class Tiny:
    """Tiny configs by model or family name: ``config`` (builder kwargs), ``flag``
    (the ``--model-config`` value) and ``model`` (built, in eval mode unless ``train=True``)."""

    def config(self, name: str) -> dict:
        if name in TINY_CONFIGS:
            return dict(TINY_CONFIGS[name])
        from dpdeblur.models import get_card

        return dict(TINY_CONFIGS.get(get_card(name).family, {}))

    def flag(self, name: str) -> str:
        return ",".join(f"{k}={v}" for k, v in self.config(name).items())

    def model(self, name: str, train: bool = False, **overrides):
        from dpdeblur.models import create_model

        m = create_model(name, **{**self.config(name), **overrides})
        return m.train(train)


@pytest.fixture(scope="session")
def tiny() -> Tiny:
    return Tiny()


@pytest.fixture(autouse=True)
def _seed():
    import random

    import numpy as np

    random.seed(0)
    np.random.seed(0)
    try:
        import torch

        torch.manual_seed(0)
    except ImportError:  # pragma: no cover
        pass
    yield
