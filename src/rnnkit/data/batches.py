"""Ids into batches: the contiguous split, truncated-BPTT training chunks, full-pass evaluation.

Training uses the "batchify" layout of char-rnn and PyTorch's word_language_model: the training
ids are cut into B equal streams, one per batch row, and each batch is the next T steps of every
stream. Row b of batch i+1 continues row b of batch i, which is why the hidden state can be
carried from one batch to the next (truncated BPTT)::

    ids:    a b c d e f g h i j k l m n o p q r s t u v w x        (N = 24, B = 3, T = 3)

    stream 0: a b c | d e f  g h        batch 0 = [[a b c],     batch 1 = [[d e f],
    stream 1: i j k | l m n  o p                   [i j k],                [l m n],
    stream 2: q r s | t u v  w x                   [q r s]]                [t u v]]

    targets are the same windows shifted by one: batch 0's are [[b c d], [j k l], [r s t]].

After the last whole chunk of a stream the epoch ends and the streams start again (with a fresh
zero state). With ``shift=True`` every epoch after the first starts them at another offset into
the text, read as a ring (after x comes a again): the streams, the chunk borders and so which
characters share a batch change from epoch to epoch, as AWD-LSTM's variable BPTT length does.
The offset of an epoch is drawn from (seed, epoch) alone, so a resumed run reads what an
uninterrupted one would.
"""

from dataclasses import dataclass

import numpy as np
import torch

from rnnkit.errors import UsageError


@dataclass(frozen=True)
class Split:
    """Where each part of a corpus lies: [start, end) ranges of ids."""

    train: tuple[int, int]
    val: tuple[int, int]
    test: tuple[int, int] | None


def contiguous_split(length: int, val_fraction: float, test_fraction: float) -> Split:
    """First part train, then validation, then (when test_fraction > 0) test, all contiguous.

    With val_fraction 0.1 and no test this is char-rnn's and nanoGPT's split of Tiny
    Shakespeare (the first 90% of characters train, the last 10% validate), so validation losses
    are comparable with theirs.
    """
    test_size = int(length * test_fraction)
    val_size = int(length * val_fraction)
    train_end = length - val_size - test_size
    test = (length - test_size, length) if test_size else None
    return Split(train=(0, train_end), val=(train_end, length - test_size), test=test)


class TrainingChunks:
    """Batch i of truncated BPTT: (inputs, targets), each (B, T) int64, from B parallel streams."""

    def __init__(
        self,
        ids: np.ndarray,
        batch_size: int,
        seq_len: int,
        rows: slice | None = None,
        shift: bool = False,
        seed: int = 0,
    ):
        usable = len(ids) - 1  # the last id has no target
        self.stream_length = usable // batch_size
        self.chunks_per_epoch = self.stream_length // seq_len
        if self.chunks_per_epoch == 0:
            raise UsageError(
                f"the training text has {len(ids)} symbols, too few for batch_size {batch_size} x "
                f"seq_len {seq_len} (needs at least {batch_size * seq_len + 1}). For this text "
                f"use --seq-len {max(1, usable // batch_size)} or less with this batch size, or "
                f"--batch-size {max(1, usable // seq_len)} or less with this sequence length"
            )
        self.ids = ids
        self.batch_size = batch_size
        self.seq_len = seq_len
        self.shift = shift
        self.seed = seed
        # Under data parallelism each process takes its own rows of the global batch.
        self.rows = np.arange(batch_size)[rows if rows is not None else slice(None)]

    def starts_epoch(self, index: int) -> bool:
        """True when batch `index` is the first of an epoch (the carried state must be reset)."""
        return index % self.chunks_per_epoch == 0

    def offset(self, epoch: int) -> int:
        """Where the streams of `epoch` begin: 0, or with `shift` a draw from (seed, epoch)."""
        if not self.shift or epoch == 0:
            return 0
        return int(np.random.default_rng([self.seed, epoch]).integers(len(self.ids)))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, chunk = divmod(index, self.chunks_per_epoch)
        starts = self.offset(epoch) + self.rows * self.stream_length + chunk * self.seq_len  # (B,)
        positions = (starts[:, None] + np.arange(self.seq_len + 1)) % len(self.ids)  # (B, T+1)
        window = torch.from_numpy(np.asarray(self.ids[positions]).astype(np.int64))
        return window[:, :-1], window[:, 1:]


def evaluation_chunks(ids: np.ndarray, batch_size: int, seq_len: int, context: int | None = None):
    """Every id of `ids` after the first, predicted exactly once: yields (inputs, targets, mask).

    The predictions are cut into `batch_size` contiguous segments (lengths differ by at most
    one), each read in windows of `seq_len` with the state carried along it. Every segment but
    the first starts `context` ids early (default `seq_len`): those ids warm the state up and
    are not scored, so a segment's first predictions have context as they would in one stream
    read from the start, and the loss hardly depends on `batch_size`. mask (B, T) is True where
    a prediction is scored (False on the warm-up and on the padding of the shorter segments).
    """
    predictions = len(ids) - 1
    if predictions < 1:
        raise UsageError(f"cannot evaluate on {len(ids)} symbol(s): at least 2 are needed")
    batch_size = min(batch_size, predictions)
    context = seq_len if context is None else context
    lengths = np.full(batch_size, predictions // batch_size)  # scored predictions per segment
    lengths[: predictions % batch_size] += 1
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])  # first scored input
    reads_from = np.maximum(starts - context, 0)
    warmup = starts - reads_from
    total = warmup + lengths
    longest = int(total.max())
    for offset in range(0, longest, seq_len):
        steps = min(seq_len, longest - offset)
        position = offset + np.arange(steps)  # (T,)
        inside = position[None, :] < total[:, None]  # (B, T)
        mask = inside & (position[None, :] >= warmup[:, None])
        index = np.where(inside, reads_from[:, None] + position[None, :], 0)
        inputs = torch.from_numpy(np.asarray(ids[index]).astype(np.int64))
        targets = torch.from_numpy(np.asarray(ids[index + 1]).astype(np.int64))
        yield inputs, targets, torch.from_numpy(mask)
