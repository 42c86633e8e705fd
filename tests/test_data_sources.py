"""The shuffled batches of the tasks: addressed by step, and shared out between ranks."""

import pytest
import torch

from rnnkit.errors import UsageError
from rnnkit.training.data_sources import ShuffledBatches, split_rows
from rnnkit.training.distributed import Ranks


def batches_of(examples, size, generator):
    order = torch.randperm(len(examples), generator=generator).tolist()
    for start in range(0, len(examples), size):
        chosen = [examples[i] for i in order[start : start + size]]
        yield torch.tensor(chosen), chosen  # a tensor and a list, both one row per example


def test_a_step_reads_the_same_batch_in_order_or_alone():
    source = ShuffledBatches(list(range(10)), batches_of, 4, seed=7, ranks=Ranks())
    in_order = [source.batch(step)[1] for step in range(6)]  # two epochs of 3 batches
    alone = ShuffledBatches(list(range(10)), batches_of, 4, seed=7, ranks=Ranks()).batch(4)[1]
    assert alone == in_order[4]  # as a resumed run starting at step 4 reads it
    assert sorted(n for batch in in_order[:3] for n in batch) == list(range(10))  # every one
    assert in_order[:3] != in_order[3:]  # and the next one in another order
    assert [source.epoch(s) for s in range(6)] == [1, 1, 1, 2, 2, 2]


def test_ranks_share_each_batch_and_a_too_short_last_batch_is_left_out():
    tensor, names = torch.arange(10).view(5, 2), ["a", "b", "c", "d", "e"]
    first = split_rows((tensor, names, 3.0), Ranks(rank=0, world_size=2))
    second = split_rows((tensor, names, 3.0), Ranks(rank=1, world_size=2))
    assert first[1] == ["a", "b", "c"] and second[1] == ["d", "e"]  # near-equal, in order
    assert torch.equal(torch.cat([first[0], second[0]]), tensor) and first[2] == 3.0
    # 9 examples in batches of 4 leave a last batch of 1: no row for the second rank
    assert ShuffledBatches(list(range(9)), batches_of, 4, 0, Ranks(0, 2)).steps_per_epoch == 2
    assert ShuffledBatches(list(range(9)), batches_of, 4, 0, Ranks()).steps_per_epoch == 3
    with pytest.raises(UsageError, match="does not split evenly over 2"):
        ShuffledBatches(list(range(9)), batches_of, 3, 0, Ranks(0, 2))
