"""Data-parallel training across processes: `torchrun --nproc_per_node=N -m rnnkit train ...`
(or `... -m rnnkit task NAME train ...`).

Each process (rank) takes its own rows of the global batch and, after each backward, the
gradients are averaged over the ranks (one all-reduce of all of them, `average_gradients`), so
N processes compute the same update as one process on the whole batch. The weights start equal
because rank 0's are sent to the others (`broadcast_module`). Averaging after backward, rather
than inside DistributedDataParallel's forward, works for any model, whichever of its methods a
task's loss calls. Only rank 0 writes files. Every decision that changes the control
flow (a non-finite loss, a stop signal, the end of the time budget) is agreed on by all ranks
with an all-reduce, so no rank is left waiting in a collective the others skipped.
gloo on CPU, NCCL on GPU.
"""

import os
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist

from rnnkit.errors import UsageError


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def rows(self, batch_size: int) -> slice:
        """This rank's rows of the global batch."""
        if batch_size % self.world_size:
            raise UsageError(
                f"--batch-size {batch_size} does not split evenly over {self.world_size} "
                f"processes: use a multiple of {self.world_size}"
            )
        share = batch_size // self.world_size
        return slice(self.rank * share, (self.rank + 1) * share)

    def any(self, flag: bool) -> bool:
        """True on every rank if `flag` is True on any rank."""
        if not self.active:
            return flag
        value = torch.tensor([1.0 if flag else 0.0], device=_device())
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def mean(self, number: float) -> float:
        if not self.active:
            return number
        value = torch.tensor([number], dtype=torch.float64, device=_device())
        dist.all_reduce(value)
        return value.item() / self.world_size

    def from_main(self, number: float) -> float:
        """Rank 0's `number`, on every rank."""
        if not self.active:
            return number
        value = torch.tensor([number], dtype=torch.float64, device=_device())
        dist.broadcast(value, src=0)
        return value.item()

    def gather_rows(self, tensor: torch.Tensor, dim: int) -> torch.Tensor:
        """Concatenate every rank's `tensor` along `dim` (rank order)."""
        if not self.active:
            return tensor
        parts = [torch.empty_like(tensor) for _ in range(self.world_size)]
        dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts, dim=dim)

    def average_gradients(self, parameters: list[torch.Tensor]) -> None:
        """Replace each parameter's gradient by its mean over the ranks (one flat all-reduce).

        A parameter that got a gradient on some ranks only counts as zero on the others, so
        every rank sends the same layout; one that got none on any rank keeps none, as in a
        single process (AdamW then leaves it alone)."""
        if not self.active:
            return
        has_gradient = torch.tensor(
            [float(p.grad is not None) for p in parameters], device=_device()
        )
        dist.all_reduce(has_gradient, op=dist.ReduceOp.MAX)
        parameters = [p for p, used in zip(parameters, has_gradient.tolist(), strict=True) if used]
        for parameter in parameters:
            if parameter.grad is None:
                parameter.grad = torch.zeros_like(parameter)
        flat = torch.cat([p.grad.reshape(-1) for p in parameters])
        dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for parameter in parameters:
            count = parameter.numel()
            parameter.grad.copy_(flat[offset : offset + count].view_as(parameter))
            offset += count

    def broadcast_module(self, module: torch.nn.Module) -> None:
        """Rank 0's parameters and buffers, on every rank."""
        if not self.active:
            return
        with torch.no_grad():
            for tensor in [*module.parameters(), *module.buffers()]:
                dist.broadcast(tensor.data, src=0)

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


def _device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def start(device_name: str) -> Ranks:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); else one process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Ranks()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_name == "cuda" or (device_name == "auto" and torch.cuda.is_available())
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return Ranks(rank=rank, world_size=world_size, local_rank=local_rank)


def stop() -> None:
    """Leave the process group. gloo's worker threads free the last collectives' tensors a
    moment after the main thread has moved on, and need the GIL for it; the process group's
    destructor joins those threads while the main thread holds the GIL. Torn down at once,
    the two wait for each other forever (a hang at exit, seen as an intermittent test
    timeout). So: a last barrier, then a pause that lets the threads finish, then the
    teardown."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        time.sleep(0.2)  # releases the GIL to gloo's threads
        dist.destroy_process_group()
