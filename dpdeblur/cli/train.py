"""``dpdeblur train``: train a model on a data set with the paper's recipe (or yours)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from dpdeblur.choices import DEVICES, MASK_NORMS, SCHEDULES, SSIM_WINDOWS, WARMUP_MODES
from dpdeblur.cli.app import app, err_console, guarded, print_json
from dpdeblur.cli.choices import choice, datasets, losses, models, patch_modes, recipes

_O = typer.Option


@app.command("train")
@guarded
def train_cmd(
    dataset: Optional[str] = _O(None, "--dataset", help="Data set layout (default dpdd; hide, realdof: test only, see bench quality).", **choice(lambda: datasets("train"))),
    data_root: Optional[Path] = _O(None, "--data-root", help="Folder holding the data set."),
    blur: Optional[Path] = _O(None, "--blur", help="folder: blurry images."),
    sharp: Optional[Path] = _O(None, "--sharp", help="folder: sharp images."),
    left: Optional[Path] = _O(None, "--left", help="folder: left views."),
    right: Optional[Path] = _O(None, "--right", help="folder: right views."),
    model: Optional[str] = _O(None, "--model", help="Model to train (dpdeblur models); default dmtnet-b.", **choice(models)),
    model_config: Optional[str] = _O(None, "--model-config", help="Builder overrides KEY=VALUE,... e.g. dim=48,blocks=2."),
    weights: Optional[Path] = _O(None, "--weights", help="Start from these weights (fine-tuning)."),
    grow_from: Optional[Path] = _O(None, "--grow-from", help="Start a larger DMTNet from a smaller one's weights (dmtnet-s from dmtnet-t): it begins computing exactly what the smaller one does."),
    recipe: Optional[str] = _O(None, "--recipe", help="paper (the model family's) | dmtnet | jdrl | fcn | none.", **choice(recipes, listed=False)),
    jdrl: bool = _O(False, "--jdrl", help="JDRL training for misaligned pairs (its recipe and criterion)."),
    jdrl_warmup: Optional[int] = _O(None, "--jdrl-warmup", help="JDRL: epochs with flow between GT and blurry input (default 15)."),
    jdrl_warmup_mode: Optional[str] = _O(None, "--jdrl-warmup-mode", help="JDRL warm-up: paper (whole loss, default) | code (authors' script: output vs flow-warped GT only).", **choice(WARMUP_MODES)),
    jdrl_mask_norm: Optional[str] = _O(None, "--jdrl-mask-norm", help="JDRL masked Charbonnier mean over: all (masked pixels add eps, default, as the authors) | kept.", **choice(MASK_NORMS)),
    flow_cache: Optional[Path] = _O(None, "--flow-cache", help="JDRL: a `dpdeblur align --out` folder whose flows seed the warm-up."),
    config: Optional[Path] = _O(None, "--config", help="TOML/YAML file of settings (flags win)."),
    out: Optional[Path] = _O(None, "--out", "-o", help="Run folder for checkpoints and logs (required)."),
    resume: bool = _O(False, "--resume", help="Continue the run in --out exactly where it stopped."),
    epochs: Optional[int] = _O(None, "--epochs"),
    lr: Optional[float] = _O(None, "--lr"),
    batch_size: Optional[int] = _O(None, "--batch-size"),
    patch: Optional[int] = _O(None, "--patch", help="Patch size (windows or crops)."),
    patch_mode: Optional[str] = _O(None, "--patch-mode", help="slide (windows with --overlap) | crop (random crops) | resize (whole image resized to --patch).", **choice(patch_modes, listed=False)),
    overlap: Optional[float] = _O(None, "--overlap", help="Window overlap, 0.6 = 60%."),
    flips: Optional[bool] = _O(None, "--flips/--no-flips", help="Random horizontal/vertical flips."),
    drop_flat: Optional[float] = _O(None, "--drop-flat", help="Drop this fraction of least-textured windows (0.3)."),
    schedule: Optional[str] = _O(None, "--schedule", help="Learning-rate schedule.", **choice(SCHEDULES)),
    loss: Optional[str] = _O(None, "--loss", help="charbonnier | l1 | mse (default: the family's).", **choice(losses, listed=False)),
    cache: Optional[Path] = _O(None, "--cache", help="Folder caching decoded images (uint16 memory maps)."),
    workers: Optional[int] = _O(None, "--workers", help="Data loader worker processes."),
    val_every: Optional[int] = _O(None, "--val-every", help="Validate every N epochs (and at the end)."),
    val_crop: Optional[int] = _O(None, "--val-crop", help="Validate on centred crops of this size (0 = whole)."),
    ssim: Optional[str] = _O(None, "--ssim", help="wang (11x11 Gaussian) | skimage-default (7x7 uniform).", **choice(SSIM_WINDOWS)),
    ema: Optional[float] = _O(None, "--ema", help="EMA decay of the weights, e.g. 0.999 (0 = off)."),
    clip: Optional[float] = _O(None, "--clip", help="Gradient norm clipping (0 = off)."),
    max_nonfinite: Optional[int] = _O(None, "--max-nonfinite", help="Stop after K non-finite steps in a row."),
    amp: Optional[bool] = _O(None, "--amp/--no-amp", help="bf16 autocast (default: on CUDA only; --amp also on CPU)."),
    seed: Optional[int] = _O(None, "--seed"),
    device: Optional[str] = _O(None, "--device", help="Device (auto: CUDA, then MPS, then CPU).", **choice(DEVICES, extra=("cuda:N",))),
    gpus: int = _O(0, "--gpus", help="Launch N processes with torchrun (DistributedDataParallel)."),
    max_steps: Optional[int] = _O(None, "--max-steps", help="Stop after N steps (quick runs)."),
    log_every: Optional[int] = _O(None, "--log-every"),
    save_every: Optional[int] = _O(None, "--save-every", help="Also checkpoint every N steps."),
    tensorboard: Optional[bool] = _O(None, "--tensorboard/--no-tensorboard"),
    quiet: bool = _O(False, "--quiet", "-q", help="No progress bar."),
    as_json: bool = _O(False, "--json", help="Print the run result as JSON on stdout."),
) -> None:
    """Train a model: data checks first, then the recipe, atomic checkpoints, exact --resume.

    Data sets: dpdd ({train,val,test}_{c,l,r}), sdd (train_patches, test), gopro ({train,test}/{input,target}),
    folder (--blur/--sharp or --left/--right/--sharp). Writes <out>/last.safetensors (usable by --weights),
    best.safetensors (by validation PSNR), last.state.pt, config.json, log.jsonl.
    """
    if gpus < 0:
        from dpdeblur.cli.app import fail

        fail(f"--gpus {gpus}: give the number of processes to launch (0 or 1: this process alone)", 2)
    if gpus > 1:
        sys.exit(_launch(gpus))
    from dpdeblur.errors import UsageError
    from dpdeblur.train import fit, parse_model_config, resolve_config, resume_config

    def s(p):
        return None if p is None else str(p)

    flags = dict(
        dataset=dataset, data_root=s(data_root), blur=s(blur), sharp=s(sharp),
        left=s(left), right=s(right), model=model, weights=s(weights), grow_from=s(grow_from), recipe=recipe, jdrl=jdrl or None,
        jdrl_warmup=jdrl_warmup, jdrl_warmup_mode=jdrl_warmup_mode, jdrl_mask_norm=jdrl_mask_norm, flow_cache=s(flow_cache),
        out=s(out), epochs=epochs, lr=lr, batch_size=batch_size, patch=patch, patch_mode=patch_mode, overlap=overlap,
        flips=flips, drop_flat=drop_flat, schedule=schedule, loss=loss, cache=s(cache), num_workers=workers,
        val_every=val_every, val_crop=val_crop, ssim=ssim, ema=ema, clip=clip, max_nonfinite=max_nonfinite, amp=amp,
        seed=seed, device=device, max_steps=max_steps, log_every=log_every, save_every=save_every,
        tensorboard=tensorboard, progress=False if quiet else None,
        model_config=parse_model_config(model_config) or None,
    )
    if out is None and config is not None and not resume:  # a config file may name the run folder
        from dpdeblur.train.config import load_config_file

        out = load_config_file(config).get("out")
    if out is None:
        raise UsageError("--out RUNDIR is required (the run's checkpoints and logs go there; or out = ... in --config)")
    cfg = resume_config(out, flags) if resume else resolve_config(flags, config)
    try:
        result = fit(cfg, resume=resume)
    except KeyboardInterrupt:
        from dpdeblur.cli.app import fail
        from dpdeblur.train.loop import last_checkpoint

        fail(f"interrupted; {last_checkpoint(cfg.out)}", 130)
    import os

    if int(os.environ.get("RANK", 0)) != 0:
        return
    if as_json:
        print_json({k: v for k, v in vars(result).items()})
    else:
        v = result.val or {}
        msg = f"stopped at step {result.step} ({result.stopped}); weights: {result.last_weights}"
        if v:
            msg += f"; val PSNR {v['psnr']:.2f} dB (input {v['input_psnr']:.2f}), SSIM[{cfg.ssim}] {v['ssim']:.4f}, MAE {v['mae']:.4f}"
        err_console().print(msg, highlight=False, soft_wrap=True)


def _launch(n: int) -> int:
    """Re-run this command under ``torch.distributed.run`` with ``n`` processes."""
    import subprocess

    args, skip = [], False
    for a in sys.argv[1:]:
        if skip:
            skip = False
        elif a == "--gpus":
            skip = True
        elif not a.startswith("--gpus="):
            args.append(a)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}", "-m", "dpdeblur", *args]
    err_console().print(f"launching: {' '.join(cmd)}", highlight=False, soft_wrap=True)
    return subprocess.call(cmd)
