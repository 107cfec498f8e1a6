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


def test_float16_copy_is_half_the_size_keeps_metadata_and_deblurs_the_same(tmp_path, trained, tiny, fresh):
    from dpdeblur.models.weights import convert_weights, read_weights_metadata, weights_model

    full = tmp_path / "w.safetensors"
    save_weights(trained, full)
    half = tmp_path / "w16.safetensors"
    digest = convert_weights(full, half, "float16")
    assert digest == sha256_file(half)
    from safetensors import safe_open

    with safe_open(str(half), "pt") as f:
        dtypes = {f.get_tensor(k).dtype for k in f.keys()}
    assert dtypes == {torch.float16}
    assert half.stat().st_size < 0.6 * full.stat().st_size  # the tiny net: its header is a large share
    assert read_weights_metadata(half) == read_weights_metadata(full)  # model name and config travel
    assert weights_model(half)[0] == "dmtnet-s"
    m = fresh()
    load_weights(m, half, sha256=digest)  # cast back into the float32 model
    assert all(v.dtype == torch.float32 for v in m.state_dict().values())
    for k, v in trained.state_dict().items():
        assert torch.allclose(m.state_dict()[k], v, rtol=1e-3, atol=1e-4), k
    x = torch.rand(1, 6, 32, 32)
    trained.eval(), m.eval()
    with torch.no_grad():
        assert (m(x) - trained(x)).abs().max() < 0.5 / 255  # under half an 8-bit level


def test_convert_refuses_overwriting_its_source_and_unknown_types(tmp_path, trained):
    from dpdeblur.models.weights import convert_weights

    p = tmp_path / "w.safetensors"
    save_weights(trained, p)
    before = p.read_bytes()
    with pytest.raises(WeightsError, match="overwrite the source"):
        convert_weights(p, tmp_path / "." / "w.safetensors")
    with pytest.raises(WeightsError, match="choose one of float32, float16, bfloat16"):
        convert_weights(p, tmp_path / "x.safetensors", "int8")
    with pytest.raises(WeightsError, match="name the file"):
        convert_weights(p, tmp_path / "x.pt")
    assert p.read_bytes() == before and not (tmp_path / "x.safetensors").exists()
    big = tmp_path / "big.safetensors"
    save_weights({"w": torch.tensor([1.0, 7e4])}, big)
    with pytest.raises(WeightsError, match="beyond float16's range.*bfloat16"):
        convert_weights(big, tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()
    convert_weights(big, tmp_path / "x.safetensors", "bfloat16")  # the wider exponent holds it
