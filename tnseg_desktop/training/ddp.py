"""Data-parallel training when the worker is launched by ``torchrun --nproc_per_node N``.

Without torchrun's environment (WORLD_SIZE unset or 1) nothing here does
anything. Under torchrun each process trains on its own shard of the training
frames; gradients are averaged across processes during the backward pass (one
all-reduce per parameter as its gradient is ready), so every process takes the
same optimizer step and the weights stay identical. Stop and budget decisions
are agreed by all processes, so none waits alone in a collective. Only rank 0
reports progress and writes the model. Validation runs on every process (the
sets are small); only rank 0's result is kept.

Moving training to a server: ``training.server_job.pack_job`` writes a
self-contained job folder; run it there with
``torchrun --nproc_per_node N -m tnseg_desktop.training.worker job.json > progress.jsonl``
and bring the folder back to ``server_job.import_result``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Sequence, TypeVar

import torch

T = TypeVar("T")


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env() -> DistContext | None:
    """Join the process group torchrun set up; None for a plain single-process run."""
    if not launched_by_torchrun():
        return None
    import torch.distributed as dist

    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), backend)


def device_for(ctx: DistContext | None, chosen: torch.device) -> torch.device:
    """Each process of a GPU run takes the GPU torchrun assigned to it (LOCAL_RANK)."""
    if ctx is not None and chosen.type == "cuda":
        torch.cuda.set_device(ctx.local_rank)
        return torch.device("cuda", ctx.local_rank)
    return chosen


def shard(items: Sequence[T], ctx: DistContext | None) -> list[T]:
    """This process's share, like DistributedSampler: every world_size-th item from its rank."""
    if ctx is None:
        return list(items)
    part = list(items[ctx.rank :: ctx.world_size])
    return part if part else list(items[:1])  # fewer frames than processes: reuse one rather than starve


def agree_any(ctx: DistContext | None, flag: bool, device: torch.device) -> bool:
    """True on every process when it is true on any (stop requests, budget reached)."""
    if ctx is None:
        return flag
    import torch.distributed as dist

    t = torch.tensor([1.0 if flag else 0.0], device=device if ctx.backend == "nccl" else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def barrier(ctx: DistContext | None) -> None:
    if ctx is not None:
        import torch.distributed as dist

        dist.barrier()


def synced_stop(ctx: DistContext | None, local: Callable[[], bool], device: torch.device) -> Callable[[], bool]:
    if ctx is None:
        return local
    return lambda: agree_any(ctx, local(), device)


def distribute(trainer: Any, ctx: DistContext | None) -> None:
    """Make a LiteTrainer data-parallel: same start weights, averaged gradients, agreed budget end."""
    if ctx is None:
        return
    import torch.distributed as dist

    model = trainer.model
    with torch.no_grad():
        for tensor in list(model.parameters()) + list(model.buffers()):
            dist.broadcast(tensor.data, src=0)
        if getattr(trainer, "ema_model", None) is not None:
            trainer.ema_model.load_state_dict(model.state_dict())
    world = float(ctx.world_size)

    def average(param: torch.Tensor) -> None:
        if param.grad is not None:
            dist.all_reduce(param.grad, op=dist.ReduceOp.SUM)
            param.grad.div_(world)

    for p in model.parameters():
        if p.requires_grad:
            p.register_post_accumulate_grad_hook(average)
    # a minutes budget ends on each process's own clock; all must end on the same step
    local_done = trainer._done
    trainer._done = lambda elapsed: agree_any(ctx, local_done(elapsed), trainer.device)


def shutdown() -> None:
    """Leave the process group if this process joined one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
