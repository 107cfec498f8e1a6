"""Trainer: exact resume, crash-safe checkpoints, convergence, non-finite guard, config, CLI, DDP."""

import copy
import json
import os
import subprocess
import sys

import pytest
import torch
from typer.testing import CliRunner

from _train_data import dp_scene, make_dpdd
from dpdeblur.errors import DpdeblurError, UsageError
from dpdeblur.io.images import write_image
from dpdeblur.models.weights import read_state_dict
from dpdeblur.train import TrainConfig, fit, resolve_config
from dpdeblur.train.checkpoint import load_state


@pytest.fixture(scope="module")
def dpdd(tmp_path_factory):
    return make_dpdd(tmp_path_factory.mktemp("dpdd"), n=(2, 1, 0), h=48, w=48)


@pytest.fixture
def cfg_for(tiny):
    def make(root, out, **kw):
        base = dict(model="dmtnet-t", data_root=str(root), model_config=tiny.config("dmtnet"), out=str(out), patch=16,
                    overlap=0.0, batch_size=2, progress=False, log_every=1, ema=0.9, clip=1.0, lr=1e-3)
        return resolve_config({**base, **kw})

    return make


def test_resume_is_bit_exact(dpdd, tmp_path, cfg_for):
    # 2 x 9 windows / 2 = 9 steps per epoch: 10 steps cross an epoch; EMA and clipping on
    a = fit(cfg_for(dpdd, tmp_path / "a", max_steps=20))
    fit(cfg_for(dpdd, tmp_path / "b", max_steps=10))
    with pytest.raises(UsageError, match="pass resume to continue it") as e:  # the CLI spells it --resume
        fit(cfg_for(dpdd, tmp_path / "b", max_steps=20))
    assert e.value.settings == ("resume", "out")
    b = fit(cfg_for(dpdd, tmp_path / "b", max_steps=20), resume=True)
    assert a.step == b.step == 20
    for tag in ("last.safetensors",):
        wa, wb = read_state_dict(tmp_path / "a" / tag), read_state_dict(tmp_path / "b" / tag)
        assert all(torch.equal(wa[k], wb[k]) for k in wa)
    sa, sb = load_state(tmp_path / "a/last.state.pt"), load_state(tmp_path / "b/last.state.pt")
    assert all(torch.equal(sa["model"][k], sb["model"][k]) for k in sa["model"])
    assert sa["optimizer"]["state"][0]["exp_avg"].equal(sb["optimizer"]["state"][0]["exp_avg"])
    assert a.losses[10:] == b.losses  # the same batches in the same order
    steps = [json.loads(l)["step"] for l in (tmp_path / "b/log.jsonl").read_text().splitlines() if '"train"' in l]
    assert steps == list(range(1, 21))
    assert a.val["psnr"] == b.val["psnr"] and (tmp_path / "b/best.json").is_file()


def test_crash_during_save_keeps_previous_last(dpdd, tmp_path, monkeypatch, cfg_for):
    fit(cfg_for(dpdd, tmp_path, max_steps=4))
    before = load_state(tmp_path / "last.state.pt")
    real = torch.save

    def dying_save(obj, f, *a, **k):
        real(obj, f, *a, **k)
        with open(f, "r+b") as fh:  # half-written file, then the process dies
            fh.truncate(100)
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        fit(cfg_for(dpdd, tmp_path, max_steps=8), resume=True)
    monkeypatch.setattr(torch, "save", real)
    after = load_state(tmp_path / "last.state.pt")
    assert after["step"] == before["step"] == 4
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left
    assert fit(cfg_for(dpdd, tmp_path, max_steps=8), resume=True).step == 8


def test_nonfinite_loss_skips_then_stops(dpdd, tmp_path, monkeypatch, cfg_for):
    from dpdeblur.losses import criteria

    calls = []
    orig = criteria.PixelCriterion.forward

    def sometimes_nan(self, output, batch, epoch):
        calls.append(1)
        loss, logs = orig(self, output, batch, epoch)
        return (loss * float("nan") if len(calls) in (2, 5, 6, 7) else loss), logs

    monkeypatch.setattr(criteria.PixelCriterion, "forward", sometimes_nan)
    with pytest.warns(UserWarning, match="step skipped"), pytest.raises(DpdeblurError, match="non-finite 3 steps in a row"):
        fit(cfg_for(dpdd, tmp_path, max_steps=10, max_nonfinite=3))
    events = [json.loads(l) for l in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [e["in_a_row"] for e in events if e["event"] == "nonfinite"] == [1, 1, 2, 3]


def _same_state(x, y):
    return all(torch.equal(x.state_dict()[k], y.state_dict()[k]) for k in x.state_dict())


def test_trainer_phases_one_at_a_time(dpdd, tmp_path, cfg_for):
    """setup, steps, checkpoint; a fresh trainer resumes and its next step equals the uninterrupted one."""
    from dpdeblur.train.loop import Trainer

    cfg = cfg_for(dpdd, tmp_path, max_steps=6)
    a = Trainer(cfg).setup()
    assert (a.step, a.spe, a.end, a.best) == (0, 9, 6, None)  # 2 x 9 windows / batch 2
    assert (tmp_path / "config.json").is_file() and not (tmp_path / "last.state.pt").exists()
    batches = iter(a.epoch_batches())
    start = copy.deepcopy(a.model)
    assert all(a.train_step(next(batches)) for _ in range(3)) and a.step == 3 and not _same_state(a.model, start)
    a.checkpoint()
    assert load_state(tmp_path / "last.state.pt")["step"] == 3 and a.saved_at == 3
    a.train_step(next(batches))  # the uninterrupted fourth step
    a.log.close()

    b = Trainer(cfg, resume=True).setup()
    assert b.step == 3 and not _same_state(b.model, a.model)
    b.train_step(next(iter(b.epoch_batches())))
    assert b.step == 4 and _same_state(b.model, a.model) and _same_state(b.ema.module, a.ema.module)
    assert b.opt.state_dict()["state"][0]["exp_avg"].equal(a.opt.state_dict()["state"][0]["exp_avg"])
    val = b.validate()  # the val split of the fixture: one image, EMA weights, a first best
    assert val["n"] == 1 and val["step"] == 4 and b.best == val["psnr"] and (tmp_path / "best.safetensors").is_file()
    b.log.close()
    steps = [json.loads(l)["step"] for l in (tmp_path / "log.jsonl").read_text().splitlines() if '"train"' in l]
    assert steps == [1, 2, 3, 4]  # the resumed run dropped a's record of step 4 and wrote its own


def test_trainer_step_skips_a_nonfinite_loss(dpdd, tmp_path, monkeypatch, cfg_for):
    from dpdeblur.train.loop import Trainer

    t = Trainer(cfg_for(dpdd, tmp_path, max_steps=4, max_nonfinite=2)).setup()
    batch = next(iter(t.epoch_batches()))
    before = copy.deepcopy(t.model)
    monkeypatch.setattr(t, "criterion", lambda out, b, epoch: (out.sum() * float("nan"), {}))
    with pytest.warns(UserWarning, match="step skipped"):
        assert t.train_step(batch) is False
    assert (t.step, t.nonfinite) == (1, 1) and _same_state(t.model, before)  # no update, the step still counts
    with pytest.warns(UserWarning), pytest.raises(DpdeblurError, match="non-finite 2 steps in a row"):
        t.train_step(batch)
    t.log.close()


def test_config_precedence_and_recipes(tmp_path):
    (tmp_path / "c.toml").write_text('lr = 5e-4\nbatch-size = 3\n[model_config]\ndim = 24\n')
    c = resolve_config({"model": "dmtnet-b", "batch_size": 7}, tmp_path / "c.toml")
    assert (c.lr, c.batch_size, c.model_config, c.schedule, c.epochs, c.patch, c.overlap) == (5e-4, 7, {"dim": 24}, "cosine", 1000, 512, 0.6)
    (tmp_path / "c.yaml").write_text("epochs: 3\nrecipe: fcn\n")
    c = resolve_config({}, tmp_path / "c.yaml")
    assert (c.epochs, c.lr, c.schedule, c.step_epochs, c.patch_mode, c.patch) == (3, 2e-4, "step", 200, "resize", 256)
    j = resolve_config({"jdrl": True})
    assert (j.jdrl, j.lr, j.step_epochs, j.epochs, j.patch) == (True, 2e-5, 60, 100, 256)
    from dpdeblur.train.loop import lr_at

    assert lr_at(j, 0, 10) == 2e-5 and lr_at(j, 600, 10) == 1e-5 and lr_at(j, 1199, 10) == 1e-5
    d = resolve_config({"epochs": 2, "lr_min": 0.0})
    assert lr_at(d, 0, 5) == 1e-4 and lr_at(d, 5, 5) == pytest.approx(5e-5) and lr_at(d, 10, 5) == 0
    with pytest.raises(UsageError, match="unknown training settings: bogus"):
        resolve_config({"bogus": 1})
    from dpdeblur.train import parse_model_config

    assert parse_model_config("dim=12,scales=(1,2),image_residual=false,name=x") == {
        "dim": 12, "scales": (1, 2), "image_residual": False, "name": "x"}


@pytest.mark.slow
def test_converges_on_one_dual_pixel_pair(tmp_path):
    """dmtnet-t (small config) fits one 32x32 defocused pair well beyond the input's PSNR."""
    sharp, left, right, comb = dp_scene(32, 32, seed=7, shift=2, sigma=1.5)
    for name, img in (("sharp", sharp), ("left", left), ("right", right)):
        write_image(tmp_path / name / "p.png", img, 16)
    cfg = resolve_config(dict(
        dataset="folder", sharp=str(tmp_path / "sharp"), left=str(tmp_path / "left"), right=str(tmp_path / "right"),
        model="dmtnet-t", model_config=dict(dim=48, blocks=1, heads=3, window=4), patch=32, batch_size=1,
        lr=2e-3, schedule="cosine", lr_min=0.0, epochs=250, flips=False, log_every=25, progress=False, out=str(tmp_path / "run")))
    r = fit(cfg)
    from dpdeblur.metrics import psnr_np
    from dpdeblur.models import create_model

    model = create_model("dmtnet-t", weights=r.last_weights, **cfg.model_config).eval()
    x = torch.cat([torch.from_numpy(v).permute(2, 0, 1) for v in (right, left)])[None]
    with torch.no_grad():
        out = model(x)[0].permute(1, 2, 0).clamp(0, 1).numpy()
    p_in, p_out = psnr_np(comb, sharp), psnr_np(out, sharp)
    print(f"input {p_in:.2f} dB -> output {p_out:.2f} dB, losses {r.losses}")
    assert p_out > p_in + 5, (p_in, p_out)  # measured: 18.29 -> 27.16 dB


def test_cli_done_when(dpdd, tmp_path, tiny):
    """`dpdeblur train --dataset dpdd --data-root D --model dmtnet-b`: paper recipe, validates, resumes exactly."""
    from dpdeblur.cli import app

    def run(*extra):
        args = ["train", "--dataset", "dpdd", "--data-root", str(dpdd), "--model", "dmtnet-b", "--model-config",
                tiny.flag("dmtnet"), "--patch", "32", "--batch-size", "2", "-q", "--json", *extra]
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 0, r.output
        return json.loads(r.stdout[r.stdout.index("{"):])

    one = run("--out", str(tmp_path / "one"), "--max-steps", "6")
    run("--out", str(tmp_path / "two"), "--max-steps", "3")
    two = run("--out", str(tmp_path / "two"), "--max-steps", "6", "--resume")
    assert one["step"] == two["step"] == 6 and one["val"]["n"] == 1 and one["val"]["psnr"] == two["val"]["psnr"]
    cfg = json.loads((tmp_path / "one/config.json").read_text())
    assert (cfg["lr"], cfg["schedule"], cfg["epochs"], cfg["loss"], cfg["overlap"], cfg["flips"]) == (1e-4, "cosine", 1000, "charbonnier", 0.6, True)
    wa, wb = read_state_dict(tmp_path / "one/last.safetensors"), read_state_dict(tmp_path / "two/last.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    # the weights load with --model-config from their metadata
    from safetensors import safe_open

    with safe_open(str(tmp_path / "one/last.safetensors"), "pt") as f:
        assert json.loads(f.metadata()["model_config"])["dim"] == 12 and f.metadata()["model"] == "dmtnet-b"
    # data problems fail before training with exit 1, usage problems with 2
    r = CliRunner().invoke(app, ["train", "--dataset", "sdd", "--data-root", str(dpdd), "--out", str(tmp_path / "x")])
    assert r.exit_code == 1 and "folder not found" in r.output


@pytest.mark.slow
def test_ddp_two_cpu_processes(dpdd, tmp_path, tiny):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "dpdeblur", "train",
           "--dataset", "dpdd", "--data-root", str(dpdd), "--model", "dmtnet-t", "--model-config", tiny.flag("dmtnet"),
           "--patch", "32", "--overlap", "0.5", "--batch-size", "2", "--lr", "2e-3", "--log-every", "2", "-q",
           "--out", str(tmp_path / "ddp"), "--max-steps", "12", "--device", "cpu"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    events = [json.loads(l) for l in (tmp_path / "ddp/log.jsonl").read_text().splitlines()]
    start, end = events[0], events[-1]
    assert start["world"] == 2 and start["steps_per_epoch"] == 2  # 8 patches / 2 ranks / batch 2
    assert len(end["rank_digests"]) == 2 and end["rank_digests"][0] == end["rank_digests"][1]
    losses = [e["loss"] for e in events if e["event"] == "train"]
    assert losses[-1] < losses[0]
    # resume under torchrun continues from step 12
    r = subprocess.run([*cmd[:-4], "--max-steps", "14", "--resume", "--device", "cpu"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert load_state(tmp_path / "ddp/last.state.pt")["step"] == 14


def test_a_file_failing_mid_run_keeps_the_steps_done(tmp_path, cfg_for):
    """A validation image that passes the header check but cannot be decoded stops the run at its
    first validation; the steps trained before are checkpointed first, and once the file is fixed
    the run resumes from there and ends like a run that never stopped."""
    from dpdeblur.errors import InputError

    root = make_dpdd(tmp_path / "d", n=(2, 1, 0), h=48, w=48)
    target = root / "val_c/target/001.png"
    good = target.read_bytes()
    target.write_bytes(good[: len(good) // 2])  # truncated: the header reads, the pixels do not
    with pytest.raises(InputError, match=r"001.png.*saved at step 4 .*resume to continue"):
        fit(cfg_for(root, tmp_path / "run", max_steps=4, val_every=1))
    assert load_state(tmp_path / "run/last.state.pt")["step"] == 4
    target.write_bytes(good)
    resumed = fit(resolve_config({**json.loads((tmp_path / "run/config.json").read_text())}), resume=True)
    straight = fit(cfg_for(root, tmp_path / "straight", max_steps=4, val_every=1))
    assert resumed.step == straight.step == 4 and resumed.val is not None
    a, b = (read_state_dict(p / "last.safetensors") for p in (tmp_path / "run", tmp_path / "straight"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_config_file_may_name_the_run_folder(dpdd, tmp_path, tiny):
    cfg = tmp_path / "run.toml"
    dim = tiny.config("dmtnet")
    table = ", ".join(f"{k} = {v!r}".replace("'", '"') for k, v in dim.items())
    cfg.write_text(f'out = "{tmp_path / "run"}"\ndataset = "dpdd"\ndata_root = "{dpdd}"\nmodel = "dmtnet-t"\n'
                   f"patch = 16\nbatch_size = 2\nmax_steps = 1\noverlap = 0.0\nmodel_config = {{{table}}}\n")
    from dpdeblur.cli import app

    r = CliRunner().invoke(app, ["train", "--config", str(cfg), "-q"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "run/last.state.pt").is_file()


def test_val_crop_floor_follows_the_ssim_window(dpdd, tmp_path, cfg_for):
    """The least --val-crop is the side of the SSIM window validation uses (11 Wang, 7 skimage)."""
    from dpdeblur.errors import UsageError

    for ssim, ok, bad in (("wang", 11, 10), ("skimage-default", 7, 6)):
        cfg_for(dpdd, tmp_path / "o", ssim=ssim, val_crop=ok).validate()
        with pytest.raises(UsageError, match=rf"val_crop {bad}: SSIM \({ssim}\) needs at least {ok}x{ok} pixels"):
            cfg_for(dpdd, tmp_path / "o", ssim=ssim, val_crop=bad).validate()
