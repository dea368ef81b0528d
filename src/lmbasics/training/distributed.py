"""Several processes under torchrun (chapter 7): the process group and this process's place in it.

With DistributedDataParallel (gloo on CPU, nccl on CUDA) the trainer's `run.batch_size` is the global
batch: every rank draws the same window positions and keeps its own slice of them, so a run on N
processes follows the single-process run at the same global batch. Rank 0 logs and saves.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Distributed:
    """Where this process sits in a torchrun job (rank 0 of 1 when run alone)."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def mean(self, value: torch.Tensor) -> float:
        """The mean of a scalar tensor over all ranks (the value itself when run alone)."""
        value = value.detach().float()
        if self.world_size > 1:
            dist.all_reduce(value, op=dist.ReduceOp.SUM)
            value /= self.world_size
        return float(value)

    def close(self) -> None:
        if self.world_size > 1 and dist.is_initialized():
            dist.destroy_process_group()


def init_distributed(device: torch.device) -> tuple[Distributed, torch.device]:
    """Join the process group that torchrun describes in the environment, if any; returns this
    process's place and its device (on CUDA, the GPU of its local rank)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Distributed(), device
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return Distributed(rank=dist.get_rank(), world_size=dist.get_world_size()), device
