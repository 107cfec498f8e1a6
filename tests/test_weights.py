"""Weights loading: safetensors, .pt/.pth, wrappers, prefixes, mismatches, checksums."""

import pickle

import pytest
import torch

from dpdeblur.errors import WeightsError
from dpdeblur.models import create_model
from dpdeblur.models.weights import load_weights, save_weights, sha256_file


@pytest.fixture
def trained(tiny):
    torch.manual_seed(1)
    return create_model("dmtnet-s", **tiny.config("dmtnet"))


@pytest.fixture
def fresh(tiny):
    def make():
        torch.manual_seed(2)
        return create_model("dmtnet-s", **tiny.config("dmtnet"))

    return make


def same(a, b):
    return all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())


def test_safetensors_roundtrip_and_sha(tmp_path, trained, tiny, fresh):
    p = tmp_path / "w.safetensors"
    digest = save_weights(trained, p)
    assert digest == sha256_file(p) and len(digest) == 64
    m = fresh()
    assert not same(m, trained)
    load_weights(m, p, sha256=digest)
    assert same(m, trained)
    # create_model(weights=...) goes through the same loader
    assert same(create_model("dmtnet-s", weights=p, **tiny.config("dmtnet")), trained)


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: sd,
        lambda sd: {"state_dict": sd},
        lambda sd: {"params_ema": sd, "params": {k: v * 0 for k, v in sd.items()}},
        lambda sd: {"params": sd},
        lambda sd: {"model": sd, "optimizer": {"lr": 1}},
        lambda sd: {"net": sd},
        lambda sd: {"state_dict": {"module." + k: v for k, v in sd.items()}},
        lambda sd: {"_orig_mod." + k: v for k, v in sd.items()},
    ],
    ids=["plain", "state_dict", "params_ema_first", "params", "model", "net", "ddp_prefix", "compile_prefix"],
)
@pytest.mark.parametrize("ext", [".pt", ".pth"])
def test_torch_files_and_wrappers(tmp_path, trained, wrap, ext, fresh):
    p = tmp_path / ("w" + ext)
    torch.save(wrap(trained.state_dict()), p)
    m = fresh()
    load_weights(m, p)
    assert same(m, trained)


def test_mismatch_names_keys_and_model(tmp_path, trained, fresh):
    sd = trained.state_dict()
    sd.pop("upsample.conv.bias")
    sd["extra.weight"] = torch.zeros(1)
    p = tmp_path / "bad.pt"
    torch.save(sd, p)
    m = fresh()
    with pytest.raises(WeightsError) as e:
        load_weights(m, p)
    msg = str(e.value)
    assert "missing keys: upsample.conv.bias" in msg
    assert "unexpected keys: extra.weight" in msg
    assert "dmtnet-s" in msg and str(p) in msg


def test_shape_mismatch_is_reported(tmp_path, trained, tiny):
    p = tmp_path / "w.safetensors"
    save_weights(trained, p)
    other = create_model("dmtnet-s", **{**tiny.config("dmtnet"), "dim": 16})
    with pytest.raises(WeightsError, match="shape mismatch"):
        load_weights(other, p)


def test_sha_mismatch_is_an_error_not_a_silent_load(tmp_path, trained, fresh):
    p = tmp_path / "w.safetensors"
    save_weights(trained, p)
    m = fresh()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    with pytest.raises(WeightsError, match="does not match the pinned"):
        load_weights(m, p, sha256="0" * 64)
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_unsafe_pickle_refused(tmp_path, fresh):
    p = tmp_path / "evil.pt"
    with open(p, "wb") as f:
        pickle.dump({"x": _Evil()}, f)
    with pytest.raises(WeightsError, match="refused") as e:
        load_weights(fresh(), p)
    assert "weights_only" not in str(e.value)  # torch's advice to run the pickle is not passed on


def test_missing_and_corrupt_files(tmp_path, fresh):
    with pytest.raises(WeightsError, match="not found"):
        load_weights(fresh(), tmp_path / "nope.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage")
    with pytest.raises(WeightsError, match="not a weights file"):
        load_weights(fresh(), bad)
    ok = tmp_path / "ok.safetensors"
    save_weights(fresh(), ok)
    (tmp_path / "cut.safetensors").write_bytes(ok.read_bytes()[:-16])
    with pytest.raises(WeightsError, match="damaged or truncated"):
        load_weights(fresh(), tmp_path / "cut.safetensors")


def test_pretrained_without_weights_says_how_to_get_them(monkeypatch, tmp_path):
    monkeypatch.setenv("DPDEBLUR_WEIGHTS_DIR", str(tmp_path))
    from dpdeblur.models import get_card

    if get_card("dmtnet-h").weights is None:
        with pytest.raises(WeightsError, match="pass weights FILE"):
            create_model("dmtnet-h", pretrained=True, device="meta")
