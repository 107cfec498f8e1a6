"""torch.distributed glue: the process's rank from torchrun's environment, device choice."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as tdist

__all__ = ["DistEnv", "pick_device", "all_reduce_", "barrier"]


@dataclass
class DistEnv:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> "DistEnv":
        """torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; absent = one process."""
        return cls(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0)))

    def init(self, device: torch.device) -> None:
        if self.enabled and not tdist.is_initialized():
            tdist.init_process_group("nccl" if device.type == "cuda" else "gloo")

    @staticmethod
    def close() -> None:
        """Destroy the process group: left alive, its threads can abort the interpreter's
        exit ("terminate called without an active exception") after a finished run."""
        if tdist.is_available() and tdist.is_initialized():
            tdist.destroy_process_group()


def pick_device(name: str, env: DistEnv) -> torch.device:
    if name == "auto":
        return torch.device(f"cuda:{env.local_rank}" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device(f"cuda:{env.local_rank}")
    return dev


def all_reduce_(t: torch.Tensor, op=tdist.ReduceOp.SUM) -> torch.Tensor:
    if tdist.is_available() and tdist.is_initialized():
        tdist.all_reduce(t, op=op)
    return t


def barrier() -> None:
    if tdist.is_available() and tdist.is_initialized():
        tdist.barrier()
