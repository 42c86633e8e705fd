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
@pytest.mark.parametrize("context", [None, 0, 3, 1000])
def test_evaluation_predicts_every_symbol_after_the_first_exactly_once(
    length, batch, seq_len, context
):
    ids = np.arange(length)
    predicted = []
    for inputs, targets, mask in evaluation_chunks(ids, batch, seq_len, context):
        assert torch.equal(targets[mask], inputs[mask] + 1)
        predicted += targets[mask].tolist()
    assert sorted(predicted) == list(range(1, length))


@pytest.mark.parametrize("context", [0, 5, 30])
def test_each_evaluation_segment_reads_its_context_before_it_is_scored(context):
    ids = np.arange(101)  # 100 predictions: segments of 25 scored inputs at 0, 25, 50, 75
    chunks = list(evaluation_chunks(ids, batch_size=4, seq_len=7, context=context))
    inputs = torch.cat([chunk[0] for chunk in chunks], dim=1)
    mask = torch.cat([chunk[2] for chunk in chunks], dim=1)
    for row, start in enumerate([0, 25, 50, 75]):
        reads_from = max(0, start - context)
        read = inputs[row, : start - reads_from + 25]
        assert read.tolist() == list(range(reads_from, start + 25))  # contiguous, no gap
        assert inputs[row][mask[row]].tolist() == list(range(start, start + 25))


def test_with_the_whole_text_as_context_a_batched_evaluation_is_one_stream():
    from rnnkit.models.charlm import CharLM
    from rnnkit.training.evaluate import evaluate

    torch.manual_seed(0)
    model = CharLM(7, "lstm", 5, 6).double()
    ids = np.random.default_rng(0).integers(0, 7, 300)
    one_stream = evaluate(model, ids, batch_size=1, seq_len=16)
    batched = evaluate(model, ids, batch_size=8, seq_len=16, context=len(ids))
    assert batched.characters == one_stream.characters == 299
    assert batched.loss == pytest.approx(one_stream.loss, rel=1e-12)


def test_shifted_epochs_start_elsewhere_and_still_continue_each_row():
    ids = np.arange(1000)
    plain = TrainingChunks(ids, batch_size=4, seq_len=10)
    shifted = TrainingChunks(ids, batch_size=4, seq_len=10, shift=True, seed=3)
    per_epoch = shifted.chunks_per_epoch
    assert all(torch.equal(shifted[i][0], plain[i][0]) for i in range(per_epoch))  # epoch 0
    offsets = {shifted.offset(epoch) for epoch in range(1, 6)}
    assert len(offsets) > 1 and 0 not in offsets
    for epoch in range(1, 4):
        first = epoch * per_epoch
        inputs = torch.cat([shifted[first + i][0] for i in range(per_epoch)], dim=1)
        targets = torch.cat([shifted[first + i][1] for i in range(per_epoch)], dim=1)
        ring_step = (inputs[:, 1:] - inputs[:, :-1]) % len(ids)
        assert bool((ring_step == 1).all())  # each row reads on along the ring, across batches
        assert torch.equal(targets, (inputs + 1) % len(ids))
        assert len(set(inputs.flatten().tolist())) == inputs.numel()  # no character read twice
        assert inputs[0, 0] == shifted.offset(epoch)


def test_the_shift_of_an_epoch_depends_on_the_seed_and_the_epoch_alone():
    ids = np.arange(1000)
    one = TrainingChunks(ids, batch_size=4, seq_len=10, shift=True, seed=3)
    again = TrainingChunks(ids, batch_size=4, seq_len=10, shift=True, seed=3)
    other = TrainingChunks(ids, batch_size=4, seq_len=10, shift=True, seed=4)
    assert [one.offset(e) for e in range(8)] == [again.offset(e) for e in range(8)]
    assert [one.offset(e) for e in range(1, 8)] != [other.offset(e) for e in range(1, 8)]
    assert torch.equal(
        one[one.chunks_per_epoch * 5 + 7][0], again[again.chunks_per_epoch * 5 + 7][0]
    )
