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

After the last whole chunk of a stream the epoch ends and the streams start again from their
beginning (with a fresh zero state).
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

    def __init__(self, ids: np.ndarray, batch_size: int, seq_len: int, rows: slice | None = None):
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
        # Under data parallelism each process takes its own rows of the global batch.
        self.rows = np.arange(batch_size)[rows if rows is not None else slice(None)]

    def starts_epoch(self, index: int) -> bool:
        """True when batch `index` is the first of an epoch (the carried state must be reset)."""
        return index % self.chunks_per_epoch == 0

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        chunk = index % self.chunks_per_epoch
        starts = self.rows * self.stream_length + chunk * self.seq_len  # (B,)
        window = np.asarray(self.ids[starts[:, None] + np.arange(self.seq_len + 1)])  # (B, T+1)
        window = torch.from_numpy(window.astype(np.int64))
        return window[:, :-1], window[:, 1:]


def evaluation_chunks(ids: np.ndarray, batch_size: int, seq_len: int):
    """Every id of `ids` after the first, predicted exactly once: yields (inputs, targets, mask).

    The ids are cut into `batch_size` contiguous segments (lengths differ by at most one), read
    in windows of `seq_len` with the state carried along each segment; mask (B, T) is False on
    the padding of the shorter segments. The first id of each segment is context only.
    """
    predictions = len(ids) - 1
    if predictions < 1:
        raise UsageError(f"cannot evaluate on {len(ids)} symbol(s): at least 2 are needed")
    batch_size = min(batch_size, predictions)
    lengths = np.full(batch_size, predictions // batch_size)
    lengths[: predictions % batch_size] += 1
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    longest = int(lengths[0])
    for offset in range(0, longest, seq_len):
        steps = min(seq_len, longest - offset)
        position = offset + np.arange(steps)  # (T,)
        mask = position[None, :] < lengths[:, None]  # (B, T)
        index = np.where(mask, starts[:, None] + position[None, :], 0)
        inputs = torch.from_numpy(np.asarray(ids[index]).astype(np.int64))
        targets = torch.from_numpy(np.asarray(ids[index + 1]).astype(np.int64))
        yield inputs, targets, torch.from_numpy(mask)
