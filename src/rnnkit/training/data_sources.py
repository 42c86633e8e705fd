"""Where the trainer's batches come from: two sources behind one interface.

    batch(step)         the batch of optimizer step `step` (0-based), this rank's rows of it
    carry(state)        after a successful step: what the next batch continues from (or None)
    starts_epoch(step)  whether `step` is the first step of an epoch
    epoch(step)         the epoch (1-based) that step `step` belongs to
    state_tensors()     what a checkpoint must hold to continue exactly (gathered over ranks)
    load_state(t)       the inverse, on resume

Both are addressed by the step number: which text or which examples step i reads follows from
i and the seed alone, so a resumed run reads exactly what the uninterrupted one would have.

StreamBatches (the language model): `batch_size` streams through the text, cut into chunks of
`seq_len` characters (data/batches.py); the hidden state at the end of one chunk is carried into
the next (truncated BPTT), so it is part of the source's state.

ShuffledBatches (the tasks): each epoch visits the training examples in an order drawn from
(seed, epoch), in batches of `batch_size` that the task pads itself.
"""

import math
from collections.abc import Callable

import torch

from rnnkit.errors import UsageError
from rnnkit.models.charlm import detach_state, state_from_tensors, state_tensors
from rnnkit.training.distributed import Ranks


class StreamBatches:
    def __init__(self, chunks, rows: slice, device: torch.device, ranks: Ranks) -> None:
        self.chunks = chunks  # data.batches.TrainingChunks: chunk i of every stream, this rank's
        self.rows = rows
        self.device = device
        self.ranks = ranks
        self.state = None  # the hidden state carried from one chunk to the next

    def batch(self, step: int):
        """(inputs, targets, carried state): the state keeps its value but not its history,
        so backward stops at the chunk's border instead of running back to step 0."""
        if self.chunks.starts_epoch(step):
            self.state = None  # the streams start again from their beginning
        inputs, targets = (t.to(self.device) for t in self.chunks[step])
        return inputs, targets, detach_state(self.state)

    def carry(self, state) -> None:
        self.state = state

    def starts_epoch(self, step: int) -> bool:
        return self.chunks.starts_epoch(step)

    def epoch(self, step: int) -> int:
        return step // self.chunks.chunks_per_epoch + 1

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The whole batch's carried state, every rank's rows in rank order."""
        return {k: self.ranks.gather_rows(v, dim=1) for k, v in state_tensors(self.state).items()}

    def load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        state = state_from_tensors(tensors)  # the whole batch's; keep our rows
        if state is None:
            self.state = None
        elif isinstance(state, tuple):
            self.state = tuple(s.to(self.device)[:, self.rows] for s in state)
        else:
            self.state = state.to(self.device)[:, self.rows]


class ShuffledBatches:
    def __init__(
        self,
        examples: list,
        make_batches: Callable,
        batch_size: int,
        seed: int,
        ranks: Ranks,
    ) -> None:
        """make_batches(examples, batch_size, generator) yields the padded batches of
        `examples` in the order the generator draws (a task's `batches`)."""
        self.examples = examples
        self.make_batches = make_batches
        self.batch_size = batch_size
        self.seed = seed
        self.ranks = ranks
        ranks.rows(batch_size)  # a clear error now if it does not split over the ranks
        self.steps_per_epoch = math.ceil(len(examples) / batch_size)
        if 0 < len(examples) % batch_size < ranks.world_size:
            self.steps_per_epoch -= 1  # a last batch too short to give every rank a row
        if self.steps_per_epoch == 0:
            raise UsageError(
                f"{len(examples)} training example(s) make no batch for {ranks.world_size} "
                "process(es): use more examples (--train-examples 0 uses all) or fewer processes"
            )
        self._epoch, self._next, self._batches = None, 0, None

    def batch(self, step: int):
        epoch, index = divmod(step, self.steps_per_epoch)
        if (epoch, index) != (self._epoch, self._next):  # a new epoch, or a resumed run
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._batches = self.make_batches(self.examples, self.batch_size, generator)
            for _ in range(index):
                next(self._batches)
            self._epoch = epoch
        self._next = index + 1
        batch = next(self._batches)
        return split_rows(batch, self.ranks) if self.ranks.active else batch

    def carry(self, state) -> None:
        pass

    def starts_epoch(self, step: int) -> bool:
        return step % self.steps_per_epoch == 0

    def epoch(self, step: int) -> int:
        return step // self.steps_per_epoch + 1

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {}  # the step number says it all

    def load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        pass


def split_rows(batch, ranks: Ranks):
    """This rank's share of a batch: every tensor (first dimension) and list in it is cut into
    `world_size` near-equal parts of consecutive rows (the last batch of an epoch may be short).
    """
    size = _batch_rows(batch)
    share = math.ceil(size / ranks.world_size)
    rows = slice(ranks.rank * share, min(size, (ranks.rank + 1) * share))
    return _take_rows(batch, rows, size)


def _batch_rows(batch) -> int:
    if isinstance(batch, torch.Tensor):
        return batch.shape[0]
    if isinstance(batch, tuple):
        return _batch_rows(batch[0])
    return len(batch)


def _take_rows(part, rows: slice, size: int):
    if isinstance(part, torch.Tensor) and part.dim() and part.shape[0] == size:
        return part[rows]
    if isinstance(part, tuple):
        return tuple(_take_rows(p, rows, size) for p in part)
    if isinstance(part, list) and len(part) == size:
        return part[rows]
    return part
