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

from dpdeblur.errors import DataError, DpdeblurError, InputError, UsageError
from dpdeblur.models.weights import model_metadata
from dpdeblur.train.checkpoint import get_rng_state, load_state, save_checkpoint, set_rng_state
from dpdeblur.train.config import TrainConfig, load_run_config
from dpdeblur.train.dist import DistEnv, all_reduce_, barrier, pick_device
from dpdeblur.utils.atomic import atomic_write_text

__all__ = ["fit", "Trainer", "RunResult", "EMA", "lr_at", "build_data", "load_run_config", "check_resume",
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


#: Settings a resumed run cannot change: the checkpoint's tensors depend on them.
FIXED_ON_RESUME = ("model", "model_config", "jdrl", "loss", "optimizer", "ema", "batch_size", "seed")


def check_resume(cfg: TrainConfig, run_dir: str | Path) -> None:
    """Before ``--resume`` touches anything: a checkpoint exists and ``cfg`` keeps what it depends on."""
    run = Path(run_dir)
    saved = load_run_config(run)
    if not (run / "last.state.pt").is_file():
        raise UsageError(f"{run}: no checkpoint to resume from (last.state.pt); train without resume first", settings=("resume",))
    now = json.loads(json.dumps(cfg.to_dict()))  # as config.json holds it (tuples -> lists)
    changed = [k for k in FIXED_ON_RESUME if k in saved and saved[k] != now[k]]
    if changed:
        diff = "; ".join(f"{k}: run {saved[k]!r}, now {now[k]!r}" for k in changed)
        raise UsageError(f"{run}: a resumed run cannot change {', '.join(changed)} ({diff}); "
                         "drop those settings or start a new run in another out folder", settings=("out",))


def amp_enabled(cfg: TrainConfig, device: torch.device) -> bool:
    """bf16 autocast: ``amp=None`` on CUDA only; ``True`` on any device (CPU bf16 autocast too)."""
    return device.type == "cuda" if cfg.amp is None else bool(cfg.amp)


def last_checkpoint(run_dir: str | Path) -> str:
    """Where a stopped run can continue: one line naming the checkpoint and the resume command."""
    run = Path(run_dir)
    state = run / "last.state.pt"
    if not state.is_file():
        return f"no checkpoint was saved yet in {run}; start the run again from the beginning"
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
            from dpdeblur.choices import SSIM_WINDOW_SIDE

            val = check_readable(find_pairs(cfg.dataset, cfg.data_root, split, **kw), min_size=SSIM_WINDOW_SIDE[cfg.ssim],
                                 why=f"validation's SSIM ({cfg.ssim}) measures")
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
                warnings.warn("tensorboard: the tensorboard package is not installed; logging JSONL only", stacklevel=2)
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
        result = Trainer(cfg, resume).run()
        barrier()  # no rank tears down its connections while another still uses them
        return result
    finally:
        DistEnv.close()


class Trainer:
    """One training run in named phases that tests can drive one at a time.

    :meth:`setup` (checks, data, model, optimiser; :meth:`resume` when resuming), then per
    batch :meth:`train_step`, at epoch ends :meth:`end_epoch` (:meth:`validate` and
    :meth:`checkpoint`), and :meth:`finish`; :meth:`run` chains them as :func:`fit` does.
    The counters (``step``, ``best``, ``nonfinite``) are attributes, saved and restored whole.
    """

    def __init__(self, cfg: TrainConfig, resume: bool = False) -> None:
        self.cfg, self.resuming = cfg, resume
        self.run_dir = Path(cfg.out)
        self.step, self.best, self.nonfinite = 0, None, 0
        self.last_val: dict[str, float] | None = None
        self.losses: list[float] = []  # mean loss of each logged interval
        self.digests: list[str] = []
        self.log: _Log | None = None

    # ------------------------------------------------------------------ setup and resume

    def check(self) -> None:
        """Every check before the run folder is created or written: a failed start leaves
        nothing behind, and a failed --resume leaves the run exactly as it was."""
        from dpdeblur.models import get_card
        from dpdeblur.models.registry import check_model_config

        cfg = self.cfg
        cfg.validate()
        self.card = get_card(cfg.model)
        check_model_config(self.card.name, cfg.model_config)
        for setting in ("weights", "grow_from"):
            if getattr(cfg, setting):
                from dpdeblur.models.weights import check_weights_file

                check_weights_file(getattr(cfg, setting), setting)
        if self.resuming:
            check_resume(cfg, self.run_dir)
        elif (self.run_dir / "last.state.pt").exists():
            raise UsageError(f"{self.run_dir} already holds a training run; pass resume to continue it or choose another out folder",
                             settings=("resume", "out"))

    def setup(self) -> "Trainer":
        """Checks, processes, data, model, criterion, optimiser, EMA; the checkpoint when
        resuming; then the run folder, its ``config.json`` and the log's ``start`` record."""
        from dpdeblur.data.sampler import ResumableSampler
        from dpdeblur.losses import build_criterion
        from dpdeblur.models import create_model

        self.check()
        cfg = self.cfg
        self.env = env = DistEnv.from_env()
        self.device = device = pick_device(cfg.device, env)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        env.init(device)
        _seed_all(cfg.seed)
        self.train_ds, self.val_ds = build_data(cfg, self.card, env)
        self.sampler = ResumableSampler(self.train_ds, env.rank, env.world, shuffle=True, seed=cfg.seed)
        self.spe = self.sampler.num_samples // cfg.batch_size
        if self.spe == 0:
            raise DataError(f"only {len(self.train_ds)} training patches per process, fewer than batch_size {cfg.batch_size}; lower batch_size or add data",
                            settings=("batch_size",))
        self.total = cfg.epochs * self.spe
        self.end = min(self.total, cfg.max_steps) if cfg.max_steps else self.total

        self.model = create_model(cfg.model, weights=cfg.weights, **cfg.model_config)
        if cfg.grow_from and not self.resuming:  # a resumed run restores its own weights
            from dpdeblur.models.weights import grow_weights

            grow_weights(self.model, cfg.grow_from)
        self.model = self.model.to(device)
        self.criterion = build_criterion(cfg.loss, self.card, jdrl=cfg.jdrl, jdrl_warmup=cfg.jdrl_warmup,
                                         jdrl_warmup_mode=cfg.jdrl_warmup_mode,
                                         jdrl_mask_norm=cfg.jdrl_mask_norm).to(device)
        self.params = [p for p in list(self.model.parameters()) + list(self.criterion.parameters()) if p.requires_grad]
        opt_cls = torch.optim.AdamW if cfg.optimizer.lower() == "adamw" else torch.optim.Adam
        self.opt = opt_cls(self.params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
        self.ema = EMA(self.model, cfg.ema) if cfg.ema else None
        if self.resuming:
            self.resume()
        if env.main:  # all checks passed: now the run folder and its settings
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.run_dir / "config.json", json.dumps(cfg.to_dict(), indent=2) + "\n")
        self.net = self.model
        if env.enabled:
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None)
        self.crit_params = list(self.criterion.parameters())
        self.eval_model = self.ema.module if self.ema is not None else self.model
        self.amp = amp_enabled(cfg, device)
        self.log = _Log(self.run_dir, cfg, env, self.step if self.resuming else None, self.end)
        self.meta = {**model_metadata(cfg.model, cfg.model_config), "format": "dpdeblur-train"}
        self.log.write({"event": "start", "step": self.step, "resume": self.resuming, "world": env.world,
                        "device": str(device), "steps_per_epoch": self.spe, "total_steps": self.total,
                        "train_patches": len(self.train_ds)})
        self.saved_at = self.step
        self._restart_interval()
        return self

    def resume(self) -> None:
        """Restore model, criterion, optimiser, EMA, RNG and counters from ``last.state.pt``."""
        path = self.run_dir / "last.state.pt"
        state = load_state(path, map_location=self.device)
        try:
            self.model.load_state_dict(state["model"])
            self.criterion.load_state_dict(state["criterion"])
            self.opt.load_state_dict(state["optimizer"])
            if self.ema is not None and state.get("ema") is not None:
                self.ema.module.load_state_dict(state["ema"])
            set_rng_state(state["rng"])
        except (KeyError, RuntimeError, ValueError, TypeError) as e:
            why = " ".join(str(e).split()) or type(e).__name__  # PyTorch's reason spans lines: keep its start
            why = why if len(why) <= 200 else why[:197] + "..."
            raise DpdeblurError(f"{path}: the checkpoint does not fit these settings ({why}); resume with the run's "
                                "own settings, or this is not the checkpoint of this run") from None
        self.step, self.best, self.nonfinite = state["step"], state.get("best_psnr"), state.get("nonfinite", 0)

    # ------------------------------------------------------------------ one step

    def epoch_batches(self) -> DataLoader:
        """The batches left in the current epoch, from the position ``step`` implies."""
        epoch, pos = divmod(self.step, self.spe)
        self.sampler.set_position(epoch, pos * self.cfg.batch_size)
        return DataLoader(self.train_ds, batch_size=self.cfg.batch_size, sampler=self.sampler, drop_last=True,
                          num_workers=self.cfg.num_workers, pin_memory=self.device.type == "cuda")

    def train_step(self, batch: dict[str, torch.Tensor]) -> bool:
        """One optimisation step (lr, forward, criterion, non-finite guard, backward, clip,
        optimiser, EMA) and its log record; ``step`` advances even when the step is skipped.
        Returns False for a skipped (non-finite) step."""
        cfg, device, env = self.cfg, self.device, self.env
        epoch = self.step // self.spe
        lr = lr_at(cfg, self.step, self.spe)
        for g in self.opt.param_groups:
            g["lr"] = lr
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.amp):
            out = self.net(batch["input"])
        loss, extra = self.criterion(out, batch, epoch)
        bad = all_reduce_(torch.tensor([0.0 if torch.isfinite(loss) else 1.0], device=device))
        self.opt.zero_grad(set_to_none=True)
        if bad.item() == 0:
            loss.backward()
            for p in self.crit_params:  # DDP averages the model's gradients, not the criterion's
                if p.grad is not None and env.enabled:
                    all_reduce_(p.grad).div_(env.world)
            norm = torch.nn.utils.clip_grad_norm_(self.params, cfg.clip if cfg.clip > 0 else float("inf"))
            bad = ~torch.isfinite(norm)
        ok = not bool(bad)
        if not ok:
            self.nonfinite += 1
            self.log.warn(f"step {self.step}: non-finite loss or gradient, step skipped ({self.nonfinite} in a row)")
            self.log.write({"event": "nonfinite", "step": self.step, "in_a_row": self.nonfinite})
            if self.nonfinite >= cfg.max_nonfinite:
                ck = self.run_dir / "last.state.pt"
                where = (f", or go back to the last good checkpoint {ck} (step {self.saved_at})"
                         if self.saved_at > 0 and ck.is_file() else "")
                raise DpdeblurError(
                    f"the loss was non-finite {self.nonfinite} steps in a row (step {self.step}); lower lr (now {cfg.lr:g}) "
                    f"or set clip (e.g. 1.0){where}", settings=("lr", "clip"))
        else:
            self.nonfinite = 0
            self.opt.step()
            if self.ema is not None:
                self.ema.update(self.model)
            self._run_loss += float(loss.detach())
            self._run_n += 1
        self.step += 1
        if self.step % cfg.log_every == 0 or self.step == self.end:
            self._log_interval(lr, extra)
        return ok

    def _restart_interval(self) -> None:
        self._run_loss, self._run_n, self._t0 = 0.0, 0, time.perf_counter()

    def _log_interval(self, lr: float, extra: dict) -> None:
        dt = time.perf_counter() - self._t0
        rec = {"event": "train", "step": self.step, "epoch": self.step / self.spe, "lr": lr,
               "loss": self._run_loss / max(1, self._run_n), "it_s": self._run_n / dt if dt > 0 else 0.0,
               **{k: float(v) for k, v in extra.items()}}
        self.losses.append(rec["loss"])
        self.log.write(rec)
        self.log.advance(self.step, f"loss {rec['loss']:.4f} lr {lr:.2e} {rec['it_s']:.2f} it/s")
        self._restart_interval()

    # ------------------------------------------------------------------ validation and checkpoints

    def validate(self) -> dict[str, float] | None:
        """Score the evaluated model (EMA when on) on the validation set; a better PSNR saves ``best``."""
        cfg = self.cfg
        if self.val_ds is None:
            return None
        self.last_val = {**validate(self.eval_model, self.val_ds, self.device, cfg, self.env), "step": self.step}
        self.log.write({"event": "val", "epoch": self.step / self.spe, "ssim_window": cfg.ssim, **self.last_val})
        if self.best is None or self.last_val["psnr"] > self.best:
            self.best = self.last_val["psnr"]
            self.checkpoint("best", info={**self.last_val, "ssim_window": cfg.ssim, "model": cfg.model})
        return self.last_val

    def checkpoint(self, tag: str = "last", info: dict | None = None) -> None:
        """Write ``<tag>.safetensors`` (evaluated weights); ``last`` also writes the full state (rank 0)."""
        if tag == "last":
            self.saved_at = self.step
        if not self.env.main:
            return
        step, spe = self.step, self.spe
        m = {**self.meta, "step": step, "epoch": step / spe}
        st = None
        if tag == "last":
            st = {"step": step, "epoch": step // spe, "pos": step % spe, "best_psnr": self.best,
                  "nonfinite": self.nonfinite, "model": self.model.state_dict(),
                  "criterion": self.criterion.state_dict(), "optimizer": self.opt.state_dict(),
                  "ema": self.ema.module.state_dict() if self.ema is not None else None, "rng": get_rng_state(),
                  "config": json.dumps(self.cfg.to_dict())}
        save_checkpoint(self.run_dir, tag, weights_sd=self.eval_model.state_dict(), metadata=m,
                        criterion=self.criterion, state=st, info=info)

    def end_epoch(self) -> None:
        """At an epoch's end: validate every ``val_every`` epochs, then checkpoint."""
        if self.cfg.val_every and (self.step // self.spe) % self.cfg.val_every == 0:
            self.validate()
        self.checkpoint()

    def finish(self) -> None:
        """After the last step: validate and checkpoint what is not yet; ranks must agree."""
        validated = self.last_val is None or self.last_val["step"] != self.step
        if validated:
            self.validate()
        if self.saved_at != self.step or (validated and self.val_ds is not None):
            self.checkpoint()
        self.digests = [_digest(self.model)]
        if self.env.enabled:
            import torch.distributed as tdist

            self.digests = [None] * self.env.world
            tdist.all_gather_object(self.digests, _digest(self.model))
        self.log.write({"event": "end", "step": self.step, "best_psnr": self.best, "rank_digests": self.digests})
        if len(set(self.digests)) > 1:
            raise DpdeblurError(f"ranks hold different weights after training ({self.digests}); report this bug")

    # ------------------------------------------------------------------ the whole run

    def run(self) -> RunResult:
        """:meth:`setup` (unless done), the steps to ``end`` with their epoch ends, :meth:`finish`."""
        if self.log is None:
            self.setup()
        cfg = self.cfg
        try:
            while self.step < self.end:
                for batch in self.epoch_batches():
                    self.train_step(batch)
                    if cfg.save_every and self.step % cfg.save_every == 0:
                        self.checkpoint()
                    if self.step >= self.end:
                        break
                if self.step % self.spe == 0:  # an epoch ended
                    self.end_epoch()
            self.finish()
        except (InputError, DataError) as e:  # a file that cannot be decoded mid-run: keep the work done
            raise self._saved_before(e) from None
        finally:
            self.log.close()
        return self.result()

    def _saved_before(self, e: DpdeblurError) -> DpdeblurError:
        """``e`` (a data file failed mid-run) after checkpointing the steps done since the last save,
        its message saying so: fix or remove the file and resume exactly from there."""
        if self.step > self.saved_at:
            self.checkpoint()
        if self.step == 0:
            return e
        return type(e)(f"{e} (the run is saved at step {self.step} in {self.run_dir}: fix or remove the file, "
                       "then pass resume to continue)", settings=(*e.settings, "resume"))

    def result(self) -> RunResult:
        return RunResult(
            run_dir=self.run_dir, step=self.step, epoch=self.step // self.spe,
            stopped="epochs" if self.step >= self.total else "max_steps",
            last_weights=self.run_dir / "last.safetensors",
            best_weights=self.run_dir / "best.safetensors" if self.best is not None else None,
            best_psnr=self.best, val=self.last_val, losses=self.losses, rank_digests=self.digests,
        )
