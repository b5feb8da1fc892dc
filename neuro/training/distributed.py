"""Data-parallel training with ``torch.distributed`` (DDP): ``torchrun --nproc_per_node N ...``.

``init_from_env()`` joins the process group that ``torchrun`` describes (``RANK``,
``WORLD_SIZE``, ``MASTER_ADDR``/``PORT``), with the gloo backend on the CPU and nccl on GPUs.
Training loops wrap the model with :func:`wrap` and give each rank every ``world_size``-th batch
of the same shuffled order (:func:`shard`); gradients are averaged by DDP, so the replicas stay
identical. Only rank 0 writes files and logs.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import nn

T = TypeVar("T")


def init_from_env() -> bool:
    """Join the process group when launched by torchrun (``WORLD_SIZE > 1``); return whether."""
    if dist.is_available() and dist.is_initialized():
        return True
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend=backend)
    return True


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def wrap(model: nn.Module) -> nn.Module:
    """``DistributedDataParallel(model)`` when a group is active, else ``model``."""
    if not active():
        return model
    return nn.parallel.DistributedDataParallel(model)  # buffers are synced from rank 0 by default


def shard(items: Iterable[T]) -> Iterator[T]:
    """Every ``world_size``-th item starting at this rank (all ranks see the same order)."""
    r, n = rank(), world_size()
    for i, item in enumerate(items):
        if i % n == r:
            yield item


def sync_buffers(model: nn.Module) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank, as DDP does at the
    start of each forward; call it before evaluating or saving."""
    if active():
        for buf in model.buffers():
            dist.broadcast(buf, src=0)
