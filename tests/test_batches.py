"""The batchify layout of truncated BPTT, the contiguous split, and the full-pass evaluation."""

import numpy as np
import pytest
import torch

from rnnkit.data.batches import TrainingChunks, contiguous_split, evaluation_chunks
from rnnkit.errors import UsageError


def test_layout_is_the_one_in_the_picture():
    ids = np.arange(24)  # a..x
    chunks = TrainingChunks(ids, batch_size=3, seq_len=3)
    inputs, targets = chunks[0]
    assert inputs.tolist() == [[0, 1, 2], [7, 8, 9], [14, 15, 16]]
    assert targets.tolist() == [[1, 2, 3], [8, 9, 10], [15, 16, 17]]
    inputs, _ = chunks[1]
    assert inputs.tolist() == [[3, 4, 5], [10, 11, 12], [17, 18, 19]]
    assert chunks.chunks_per_epoch == 2
    assert chunks.starts_epoch(2) and not chunks.starts_epoch(1)
    assert torch.equal(chunks[2][0], chunks[0][0])


def test_each_row_continues_the_previous_batch():
    ids = np.arange(1000)
    chunks = TrainingChunks(ids, batch_size=4, seq_len=10)
    first, second = chunks[0][0], chunks[1][0]
    assert torch.equal(second[:, 0], first[:, -1] + 1)


def test_data_parallel_rows_partition_the_global_batch():
    ids = np.arange(1000)
    whole = TrainingChunks(ids, 4, 10)[3][0]
    halves = [TrainingChunks(ids, 4, 10, rows=slice(r * 2, r * 2 + 2))[3][0] for r in range(2)]
    assert torch.equal(torch.cat(halves), whole)


def test_text_shorter_than_one_batch_gives_the_numbers_that_would_fit():
    with pytest.raises(UsageError, match=r"100 symbols.*--seq-len 24 .*--batch-size 3 "):
        TrainingChunks(np.arange(100), batch_size=4, seq_len=30)


def test_split_is_contiguous_with_validation_last():
    split = contiguous_split(1000, 0.1, 0.0)
    assert split.train == (0, 900) and split.val == (900, 1000) and split.test is None
    split = contiguous_split(1000, 0.1, 0.05)
    assert split.train == (0, 850) and split.val == (850, 950) and split.test == (950, 1000)


@pytest.mark.parametrize(("length", "batch", "seq_len"), [(101, 4, 7), (10, 64, 128), (2, 3, 1)])
def test_evaluation_predicts_every_symbol_after_the_first_exactly_once(length, batch, seq_len):
    ids = np.arange(length)
    predicted = []
    for inputs, targets, mask in evaluation_chunks(ids, batch, seq_len):
        assert torch.equal(targets[mask], inputs[mask] + 1)
        predicted += targets[mask].tolist()
    assert sorted(predicted) == list(range(1, length))
