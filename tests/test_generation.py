"""Sampling: greedy, temperature, top-k, top-p, seeds, and bad parameters."""

import math

import pytest
import torch

from rnnkit.errors import UsageError
from rnnkit.generation.sampling import (
    check_sampling,
    generate,
    generate_many,
    generate_traced,
    next_symbol,
)
from rnnkit.models.charlm import CharLM


def draws(logits, n=2000, **kwargs):
    generator = torch.Generator().manual_seed(0)
    batch = logits.expand(n, -1)
    return next_symbol(batch, generator=generator, **kwargs)


def test_temperature_zero_is_greedy():
    logits = torch.tensor([[0.1, 2.0, 0.3]])
    assert draws(logits, temperature=0, top_k=None, top_p=None).unique().tolist() == [1]


def test_top_k_keeps_only_the_k_most_likely():
    logits = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    assert sorted(draws(logits, temperature=1, top_k=2, top_p=None).unique().tolist()) == [2, 3]


def test_top_p_keeps_the_smallest_set_with_enough_mass():
    probabilities = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    logits = probabilities.log()
    kept = draws(logits, temperature=1, top_k=None, top_p=0.75).unique().tolist()
    assert sorted(kept) == [0, 1]  # 0.5 < 0.75 needs the second; 0.8 >= 0.75 stops there
    assert draws(logits, temperature=1, top_k=None, top_p=0.4).unique().tolist() == [0]


def test_temperature_sharpens_and_flattens():
    logits = torch.tensor([[0.0, 1.0]])
    cold = draws(logits, temperature=0.25, top_k=None, top_p=None).float().mean()
    hot = draws(logits, temperature=4.0, top_k=None, top_p=None).float().mean()
    expected_cold = 1 / (1 + math.exp(-4))
    assert abs(cold - expected_cold) < 0.03 and abs(hot - 0.5) < 0.1


def test_same_seed_same_text():
    torch.manual_seed(0)
    model = CharLM(10, hidden_size=8, embedding_size=4)
    first = list(generate(model, [1, 2], 30, temperature=1.0, seed=3))
    second = list(generate(model, [1, 2], 30, temperature=1.0, seed=3))
    assert first == second and len(first) == 30


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_several_samples_at_once_are_the_samples_one_at_a_time(cell, temperature):
    """Each row of generate_many draws from its own seed: the same text as generate with that
    seed, however many rows run beside it."""
    torch.manual_seed(0)
    model = CharLM(10, cell, hidden_size=8, embedding_size=4, num_layers=2).double()
    seeds = [3, 4, 5]
    alone = [list(generate(model, [1, 2], 25, temperature, seed=seed)) for seed in seeds]
    together = torch.stack(list(generate_many(model, [1, 2], 25, seeds, temperature)), dim=1)
    assert together.shape == (3, 25) and together.tolist() == alone


def test_a_model_with_non_finite_weights_is_refused():
    model = CharLM(10, hidden_size=8, embedding_size=4)
    with torch.no_grad():
        model.head.bias.fill_(float("nan"))
    with pytest.raises(UsageError, match="non-finite"):
        list(generate(model, [1], 5))


@pytest.mark.parametrize(
    ("temperature", "top_k", "top_p", "message"),
    [
        (-1.0, None, None, "temperature"),
        (float("nan"), None, None, "temperature"),
        (1.0, 0, None, "top-k"),
        (1.0, 11, None, "top-k"),
        (1.0, None, 0.0, "top-p"),
        (1.0, None, 1.5, "top-p"),
        (1.0, None, float("nan"), "top-p"),
    ],
)
def test_bad_sampling_parameters_are_named(temperature, top_k, top_p, message):
    with pytest.raises(UsageError, match=message):
        check_sampling(temperature, top_k, top_p, vocab_size=10)


def test_traced_generation_gives_the_same_text_and_the_state_after_each_character():
    model = CharLM(7, "lstm", 4, 6, 2).eval()
    plain = list(generate(model, [1, 2], 12, temperature=0.9, seed=3))
    traced = list(generate_traced(model, [1, 2], 12, seed=3, temperature=0.9))
    assert [symbol for symbol, _ in traced] == plain
    _, state = model(torch.tensor([[1, 2, *plain]]))  # the whole text read at once
    torch.testing.assert_close(traced[-1][1][0], state[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(traced[-1][1][1], state[1], rtol=1e-5, atol=1e-6)
