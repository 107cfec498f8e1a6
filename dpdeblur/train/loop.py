"""The training loop: ``fit(config) -> RunResult``.

One process or many under torchrun (DistributedDataParallel, rank-0 logging and
checkpoints). Each step: bf16 autocast on CUDA, criterion, non-finite guard, backward,
gradient clipping, Adam, EMA. Steps are counted in batches; the epoch and position
inside it follow from the step, so a resumed run replays exactly the batches an
uninterrupted run would see (see :mod:`dpdeblur.data.sampler`).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import random
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from dpdeblur.errors import DataError, DpdeblurError, UsageError
from dpdeblur.train.checkpoint import get_rng_state, load_state, save_checkpoint, set_rng_state
from dpdeblur.train.config import TrainConfig
from dpdeblur.train.dist import DistEnv, all_reduce_, barrier, pick_device
from dpdeblur.utils.atomic import atomic_write_text

__all__ = ["fit", "RunResult", "EMA", "lr_at", "build_data", "load_run_config", "check_resume",
           "amp_enabled", "last_checkpoint", "FIXED_ON_RESUME"]

@dataclass
class RunResult:
    """What :func:`fit` returns (on every rank; ``val``/``best_psnr`` agree across ranks)."""

    run_dir: Path
    step: int
    epoch: int
    stopped: str  # "epochs" | "max_steps"
    last_weights: Path
    best_weights: Path | None = None
    best_psnr: float | None = None
    val: dict[str, float] | None = None
    losses: list[float] = field(default_factory=list)  # mean loss of each logged interval
    rank_digests: list[str] = field(default_factory=list)


class EMA:
    """Exponential moving average of a model's floating-point state (``decay`` per step)."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        for e, m in zip(self.module.state_dict().values(), model.state_dict().values()):
            if e.dtype.is_floating_point:
                e.lerp_(m, 1.0 - self.decay)
            else:
                e.copy_(m)


def lr_at(cfg: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """Learning rate of ``step`` (cosine over all epochs' steps, or step decay per epoch)."""
    if cfg.schedule == "cosine":
        t = min(step / max(1, cfg.epochs * steps_per_epoch), 1.0)
        return cfg.lr_min + (cfg.lr - cfg.lr_min) * 0.5 * (1.0 + math.cos(math.pi * t))
    if cfg.schedule == "step":
        return cfg.lr * cfg.gamma ** ((step // steps_per_epoch) // cfg.step_epochs)
    return cfg.lr


def load_run_config(run_dir: str | Path) -> dict[str, Any]:
    """The settings a run was started with (``<run>/config.json``); a usage error naming the
    file when it is missing, unreadable or not a table of settings."""
    run = Path(run_dir)
    if run.exists() and not run.is_dir():
        raise UsageError(f"--out {run}: is a file, not a training run folder")
    p = run / "config.json"
    if not p.is_file():
        raise UsageError(f"{run}: no config.json; is this a dpdeblur training run folder? (train without --resume first)")
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        why = e.strerror if isinstance(e, OSError) and e.strerror else str(e).splitlines()[0]
        raise UsageError(f"{p}: unreadable run settings ({why}); restore the file or start a new run") from None
    if not isinstance(d, dict):
        raise UsageError(f"{p}: not a table of run settings; restore the file or start a new run")
    return d


#: Settings a resumed run cannot change: the checkpoint's tensors depend on them.
FIXED_ON_RESUME = ("model", "model_config", "jdrl", "loss", "optimizer", "ema", "batch_size", "seed")


def check_resume(cfg: TrainConfig, run_dir: str | Path) -> None:
    """Before ``--resume`` touches anything: a checkpoint exists and ``cfg`` keeps what it depends on."""
    run = Path(run_dir)
    saved = load_run_config(run)
    if not (run / "last.state.pt").is_file():
        raise UsageError(f"{run}: no checkpoint to resume from (last.state.pt); train without --resume first")
    now = json.loads(json.dumps(cfg.to_dict()))  # as config.json holds it (tuples -> lists)
    changed = [k for k in FIXED_ON_RESUME if k in saved and saved[k] != now[k]]
    if changed:
        diff = "; ".join(f"{k}: run {saved[k]!r}, now {now[k]!r}" for k in changed)
        raise UsageError(f"{run}: --resume cannot change {', '.join(changed)} ({diff}); "
                         "drop those options or start a new run with another --out")


def amp_enabled(cfg: TrainConfig, device: torch.device) -> bool:
    """bf16 autocast: ``amp=None`` on CUDA only; ``True`` on any device (CPU bf16 autocast too)."""
    return device.type == "cuda" if cfg.amp is None else bool(cfg.amp)


def last_checkpoint(run_dir: str | Path) -> str:
    """Where a stopped run can continue: one line naming the checkpoint and the resume command."""
    run = Path(run_dir)
    state = run / "last.state.pt"
    if not state.is_file():
        return f"no checkpoint was saved yet in {run}; start the run again (without --resume)"
    step = None
    try:
        from safetensors import safe_open

        with safe_open(str(run / "last.safetensors"), "pt") as f:
            step = (f.metadata() or {}).get("step")
    except Exception:  # noqa: BLE001 - the step is a courtesy
        pass
    at = f" (step {step})" if step is not None else ""
    return f"last checkpoint: {state}{at}; continue with: dpdeblur train --out {run} --resume"


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_data(cfg: TrainConfig, card, env: DistEnv = DistEnv()):
    """Check and open the training (and validation) data; every problem raises before training."""
    from dpdeblur.data import check_fit, check_readable, find_pairs
    from dpdeblur.data.layouts import get_layout
    from dpdeblur.data.patches import FullImageDataset, ImageSource, PatchDataset

    kw = dict(blur=cfg.blur, sharp=cfg.sharp, left=cfg.left, right=cfg.right)
    train = find_pairs(cfg.dataset, cfg.data_root, "train", **kw)
    check_fit(train, card)
    check_readable(train, min_size=cfg.patch)
    split = get_layout(cfg.dataset).val_split  # find_pairs checked the name
    val = None
    if split is not None:
        try:
            val = check_readable(find_pairs(cfg.dataset, cfg.data_root, split, **kw))
        except DataError as e:
            if "not found" not in str(e):
                raise
            warnings.warn(f"no validation split ({e}); training without validation", stacklevel=2)
    views = card.views if card.layout == "dp" else ()
    cache = Path(cfg.cache) if cfg.cache else None

    def sources():  # rank 0 builds the cache, the others then open it
        src = ImageSource(train, cache / train.split if cache else None)
        vsrc = ImageSource(val, cache / split if cache else None) if val is not None else None
        ds = PatchDataset(src, views, cfg.patch, cfg.patch_mode, cfg.overlap, cfg.flips, cfg.drop_flat, cfg.crops_per_image,
                          flow_dir=cfg.flow_cache)
        vds = FullImageDataset(vsrc, views, cfg.val_crop) if vsrc is not None else None
        return ds, vds

    if env.main:
        out = sources()
    barrier()
    if not env.main:
        out = sources()
    return out


@torch.no_grad()
def validate(model, ds, device, cfg: TrainConfig, env: DistEnv) -> dict[str, float]:
    """Mean PSNR / SSIM / MAE (and the input's PSNR) over the validation set, shared across ranks."""
    from dpdeblur.losses.criteria import final_image
    from dpdeblur.metrics import compute_metrics, psnr

    was = model.training
    model.eval()
    n = len(ds) if not cfg.val_max else min(cfg.val_max, len(ds))
    sums = torch.zeros(5, dtype=torch.float64, device=device)
    for i in range(env.rank, n, env.world):
        item = ds[i]
        x, sharp = item["input"][None].to(device), item["sharp"][None].to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp_enabled(cfg, device)):
            out = final_image(model(x))
        m = compute_metrics(out.float(), sharp, cfg.ssim)
        inp = psnr(item["blur"][None].to(device), sharp)
        sums += torch.stack([m["psnr"][0], m["ssim"][0], m["mae"][0], inp[0], torch.ones((), device=device)]).double()
    all_reduce_(sums)
    model.train(was)
    c = max(1.0, float(sums[4]))
    return {"psnr": float(sums[0]) / c, "ssim": float(sums[1]) / c, "mae": float(sums[2]) / c,
            "input_psnr": float(sums[3]) / c, "n": int(sums[4])}


def _digest(model) -> str:
    h = hashlib.sha256()
    for k, v in model.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class _Log:
    """JSONL log (rank 0), optional TensorBoard, rich progress on stderr."""

    def __init__(self, run_dir: Path, cfg: TrainConfig, env: DistEnv, resume_step: int | None, total: int) -> None:
        self.on = env.main
        self.path = run_dir / "log.jsonl"
        self.tb = self.progress = None
        if not self.on:
            return
        if resume_step is not None and self.path.is_file():  # drop records past the checkpoint
            keep = [l for l in self.path.read_text().splitlines() if l and json.loads(l).get("step", 0) <= resume_step]
            atomic_write_text(self.path, "".join(l + "\n" for l in keep))
        if cfg.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(run_dir / "tb"))
            except ImportError:
                warnings.warn("--tensorboard: the tensorboard package is not installed; logging JSONL only", stacklevel=2)
        if cfg.progress:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"), TimeRemainingColumn(), console=Console(stderr=True), transient=False,
            )
            self.progress.start()
            self.task = self.progress.add_task("train", total=total, completed=resume_step or 0, info="")

    def write(self, rec: dict[str, Any]) -> None:
        if not self.on:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps({"time": round(time.time(), 3), **rec}) + "\n")
        if self.tb is not None:
            for k, v in rec.items():
                if isinstance(v, (int, float)) and k not in ("step", "epoch"):
                    self.tb.add_scalar(f"{rec.get('event', 'train')}/{k}", v, rec.get("step", 0))

    def advance(self, step: int, info: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=step, info=info)

    def warn(self, msg: str) -> None:
        if self.on:
            warnings.warn(msg, stacklevel=3)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
        if self.tb is not None:
            self.tb.close()


def fit(cfg: TrainConfig, resume: bool = False) -> RunResult:
    """Train ``cfg.model`` on ``cfg.dataset``; checkpoints and logs go to ``cfg.out``.

    With ``resume=True`` the run continues from ``<out>/last.state.pt`` exactly where it
    stopped (``cfg`` may raise ``epochs`` / ``max_steps``). Under torchrun every rank calls
    this; rank 0 writes. Raises :class:`DataError` / :class:`UsageError` before training
    for bad data or settings, :class:`DpdeblurError` after ``max_nonfinite`` bad steps in a row.
    """
    try:
        result = _fit(cfg, resume)
        barrier()  # no rank tears down its connections while another still uses them
        return result
    finally:
        DistEnv.close()


def _fit(cfg: TrainConfig, resume: bool) -> RunResult:
    from dpdeblur.losses import build_criterion
    from dpdeblur.models import create_model, get_card

    # every check before the run folder is created or written: a failed start leaves nothing
    # behind, and a failed --resume leaves the run exactly as it was
    cfg.validate()
    card = get_card(cfg.model)
    from dpdeblur.models.registry import check_model_config

    check_model_config(card.name, cfg.model_config)
    if cfg.weights:
        from dpdeblur.models.weights import check_weights_file

        check_weights_file(cfg.weights)
    run_dir = Path(cfg.out)
    if resume:
        check_resume(cfg, run_dir)
    elif (run_dir / "last.state.pt").exists():
        raise UsageError(f"{run_dir} already holds a training run; pass --resume to continue it or choose another --out")
    env = DistEnv.from_env()
    device = pick_device(cfg.device, env)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    env.init(device)
    _seed_all(cfg.seed)
    train_ds, val_ds = build_data(cfg, card, env)
    from dpdeblur.data.sampler import ResumableSampler

    sampler = ResumableSampler(train_ds, env.rank, env.world, shuffle=True, seed=cfg.seed)
    spe = sampler.num_samples // cfg.batch_size
    if spe == 0:
        raise DataError(f"only {len(train_ds)} training patches per process, fewer than --batch-size {cfg.batch_size}")
    total = cfg.epochs * spe
    end = min(total, cfg.max_steps) if cfg.max_steps else total

    model = create_model(cfg.model, weights=cfg.weights, **cfg.model_config).to(device)
    criterion = build_criterion(cfg.loss, card, jdrl=cfg.jdrl, jdrl_warmup=cfg.jdrl_warmup,
                                jdrl_warmup_mode=cfg.jdrl_warmup_mode, jdrl_mask_norm=cfg.jdrl_mask_norm).to(device)
    params = [p for p in list(model.parameters()) + list(criterion.parameters()) if p.requires_grad]
    opt_cls = torch.optim.AdamW if cfg.optimizer.lower() == "adamw" else torch.optim.Adam
    opt = opt_cls(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    ema = EMA(model, cfg.ema) if cfg.ema else None
    step, best, nonfinite, state = 0, None, 0, None
    if resume:
        state = load_state(run_dir / "last.state.pt", map_location=device)
        try:
            model.load_state_dict(state["model"])
            criterion.load_state_dict(state["criterion"])
            opt.load_state_dict(state["optimizer"])
            if ema is not None and state.get("ema") is not None:
                ema.module.load_state_dict(state["ema"])
            set_rng_state(state["rng"])
        except (KeyError, RuntimeError, ValueError, TypeError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise DpdeblurError(f"{run_dir / 'last.state.pt'}: the checkpoint does not fit these settings "
                                f"({first[:200]}); resume with the run's own settings") from None
        step, best, nonfinite = state["step"], state.get("best_psnr"), state.get("nonfinite", 0)
    if env.main:  # all checks passed: now the run folder and its settings
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "config.json", json.dumps(cfg.to_dict(), indent=2) + "\n")
    net = model
    if env.enabled:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    crit_params = list(criterion.parameters())
    eval_model = ema.module if ema is not None else model
    amp = amp_enabled(cfg, device)
    log = _Log(run_dir, cfg, env, step if resume else None, end)
    meta = {"model": cfg.model, "model_config": json.dumps(cfg.model_config), "format": "dpdeblur-train"}
    log.write({"event": "start", "step": step, "resume": resume, "world": env.world, "device": str(device),
               "steps_per_epoch": spe, "total_steps": total, "train_patches": len(train_ds)})

    def save(tag: str = "last", info: dict | None = None) -> None:
        if not env.main:
            return
        m = {**meta, "step": step, "epoch": step / spe}
        st = None
        if tag == "last":
            st = {"step": step, "epoch": step // spe, "pos": step % spe, "best_psnr": best, "nonfinite": nonfinite,
                  "model": model.state_dict(), "criterion": criterion.state_dict(), "optimizer": opt.state_dict(),
                  "ema": ema.module.state_dict() if ema is not None else None, "rng": get_rng_state(),
                  "config": json.dumps(cfg.to_dict())}
        save_checkpoint(run_dir, tag, weights_sd=eval_model.state_dict(), metadata=m, criterion=criterion, state=st, info=info)

    last_val, losses, run_loss, run_n, t0, saved_at = None, [], 0.0, 0, time.perf_counter(), step

    def run_validation() -> None:
        nonlocal best, last_val
        if val_ds is None:
            return
        last_val = {**validate(eval_model, val_ds, device, cfg, env), "step": step}
        log.write({"event": "val", "epoch": step / spe, "ssim_window": cfg.ssim, **last_val})
        if best is None or last_val["psnr"] > best:
            best = last_val["psnr"]
            save("best", info={**last_val, "ssim_window": cfg.ssim, "model": cfg.model})

    try:
        while step < end:
            epoch, pos = divmod(step, spe)
            sampler.set_position(epoch, pos * cfg.batch_size)
            loader = DataLoader(train_ds, batch_size=cfg.batch_size, sampler=sampler, drop_last=True,
                                num_workers=cfg.num_workers, pin_memory=device.type == "cuda")
            for batch in loader:
                lr = lr_at(cfg, step, spe)
                for g in opt.param_groups:
                    g["lr"] = lr
                batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    out = net(batch["input"])
                loss, extra = criterion(out, batch, epoch)
                bad = all_reduce_(torch.tensor([0.0 if torch.isfinite(loss) else 1.0], device=device))
                opt.zero_grad(set_to_none=True)
                if bad.item() == 0:
                    loss.backward()
                    for p in crit_params:  # DDP averages the model's gradients, not the criterion's
                        if p.grad is not None and env.enabled:
                            all_reduce_(p.grad).div_(env.world)
                    norm = torch.nn.utils.clip_grad_norm_(params, cfg.clip if cfg.clip > 0 else float("inf"))
                    bad = ~torch.isfinite(norm)
                if bool(bad):
                    nonfinite += 1
                    log.warn(f"step {step}: non-finite loss or gradient, step skipped ({nonfinite} in a row)")
                    log.write({"event": "nonfinite", "step": step, "in_a_row": nonfinite})
                    if nonfinite >= cfg.max_nonfinite:
                        raise DpdeblurError(
                            f"the loss was non-finite {nonfinite} steps in a row (step {step}); lower --lr, set "
                            f"--clip, or resume from {run_dir / 'last.state.pt'} (last good checkpoint)"
                        )
                else:
                    nonfinite = 0
                    opt.step()
                    if ema is not None:
                        ema.update(model)
                    run_loss += float(loss.detach())
                    run_n += 1
                step += 1
                if step % cfg.log_every == 0 or step == end:
                    dt = time.perf_counter() - t0
                    rec = {"event": "train", "step": step, "epoch": step / spe, "lr": lr,
                           "loss": run_loss / max(1, run_n), "it_s": run_n / dt if dt > 0 else 0.0,
                           **{k: float(v) for k, v in extra.items()}}
                    losses.append(rec["loss"])
                    log.write(rec)
                    log.advance(step, f"loss {rec['loss']:.4f} lr {lr:.2e} {rec['it_s']:.2f} it/s")
                    run_loss, run_n, t0 = 0.0, 0, time.perf_counter()
                if cfg.save_every and step % cfg.save_every == 0:
                    save()
                    saved_at = step
                if step >= end:
                    break
            if step % spe == 0:  # an epoch ended
                if cfg.val_every and (step // spe) % cfg.val_every == 0:
                    run_validation()
                save()
                saved_at = step
        validated = last_val is None or last_val["step"] != step
        if validated:
            run_validation()
        if saved_at != step or (validated and val_ds is not None):
            save()
        digests = [_digest(model)]
        if env.enabled:
            import torch.distributed as tdist

            digests = [None] * env.world
            tdist.all_gather_object(digests, _digest(model))
        log.write({"event": "end", "step": step, "best_psnr": best, "rank_digests": digests})
        if len(set(digests)) > 1:
            raise DpdeblurError(f"ranks hold different weights after training ({digests}); report this bug")
    finally:
        log.close()
    return RunResult(
        run_dir=run_dir, step=step, epoch=step // spe, stopped="epochs" if step >= total else "max_steps",
        last_weights=run_dir / "last.safetensors", best_weights=run_dir / "best.safetensors" if best is not None else None,
        best_psnr=best, val=last_val, losses=losses, rank_digests=digests,
    )
