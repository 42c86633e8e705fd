"""Sampling text from a character model: temperature, top-k, top-p (nucleus), priming, seeds;
one sample streamed (generate) or several at once, one row each (generate_many); the weights
read as trained (float32) or as int8 (``weights="int8"``: faster at batch 1, at a measured cost
in nats/char). The prime is always read with the weights as trained.

p = softmax(logits / temperature)        temperature 0 means greedy (argmax)
top-k: keep the k most likely symbols;   top-p: keep the smallest set whose mass >= p
then renormalise and draw with a seeded torch.Generator (same seed, same text).
"""

import math
from collections.abc import Iterator

import torch

from rnnkit.errors import UsageError
from rnnkit.models.charlm import CharLM, State
from rnnkit.models.stepping import Stepper


def check_sampling(temperature: float, top_k: int | None, top_p: float | None, vocab_size: int):
    if not math.isfinite(temperature) or temperature < 0:
        raise UsageError(
            f"--temperature must be a finite number >= 0 (0 means greedy), got {temperature}"
        )
    if top_k is not None and not 1 <= top_k <= vocab_size:
        raise UsageError(
            f"--top-k must be between 1 and the vocabulary size {vocab_size}, got {top_k}"
        )
    if top_p is not None and (not math.isfinite(top_p) or not 0 < top_p <= 1):
        raise UsageError(f"--top-p must be in (0, 1], got {top_p}")


def next_symbol(
    logits: torch.Tensor,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    generator: torch.Generator,
) -> torch.Tensor:
    """Draw one id per row from logits (B, V) -> (B,)."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        # Drop a symbol when the mass before it already reaches p (the first always stays).
        drop_sorted = (cumulative - sorted_logits.softmax(-1)) >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    probabilities = logits.softmax(-1)
    return torch.multinomial(probabilities, 1, generator=generator).squeeze(-1)


@torch.no_grad()
def generate(
    model: CharLM,
    prime: list[int],
    length: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    should_stop=lambda: False,
    weights: str = "float32",
) -> Iterator[int]:
    """Yield `length` ids, one at a time, continuing the ids of `prime` (at least one)."""
    for symbols in generate_many(
        model, prime, length, [seed], temperature, top_k, top_p, should_stop, weights
    ):
        yield int(symbols[0])


@torch.no_grad()
def generate_many(
    model: CharLM,
    prime: list[int],
    length: int,
    seeds: list[int | None],
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    should_stop=lambda: False,
    weights: str = "float32",
) -> Iterator[torch.Tensor]:
    """Several samples at once, one row per seed: yield `length` times the ids (N,) of the
    next character of every row. Each row draws from its own generator (seeded like
    :func:`generate`), so a row's text does not depend on how many rows run beside it."""
    for symbols, _ in sample_with_states(
        model, prime, length, seeds, temperature, top_k, top_p, should_stop, weights
    ):
        yield symbols


@torch.no_grad()
def generate_traced(
    model: CharLM,
    prime: list[int],
    length: int,
    seed: int | None,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    weights: str = "float32",
) -> Iterator[tuple[int, State]]:
    """One sample (the same text as :func:`generate` with the same seed), yielding each id
    with the model's state after reading it: h and c (LSTM) as (L, 1, H)."""
    for symbols, state in sample_with_states(
        model, prime, length, [seed], temperature, top_k, top_p, weights=weights
    ):
        yield int(symbols[0]), state


@torch.no_grad()
def sample_with_states(
    model: CharLM,
    prime: list[int],
    length: int,
    seeds: list[int | None],
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    should_stop=lambda: False,
    weights: str = "float32",
) -> Iterator[tuple[torch.Tensor, State]]:
    """The sampling loop: yield `length` times the ids (N,) drawn, one row per seed, and the
    state (each (L, N, H)) after reading them."""
    if not prime:
        raise UsageError("the priming text is empty: give at least one character")
    model.eval()
    generators = seeded(seeds)
    rows = len(seeds)
    device = next(model.parameters()).device
    logits, state = model(torch.tensor([prime], device=device))  # the prime, read once
    logits = logits[:, -1].expand(rows, -1)  # (N, V)
    state = tuple(s.expand(-1, rows, -1).contiguous() for s in _as_tuple(state))  # (L, N, H)
    state = state if len(state) == 2 else state[0]
    stepper = stepper_for(model, weights)  # then one character at a time, no module call
    for _ in range(length):
        if should_stop():
            return
        symbols = draw(logits, generators, temperature, top_k, top_p)  # (N,)
        logits, state = stepper.step(symbols.to(device), state)
        yield symbols, state


WEIGHTS = ("float32", "int8")


def stepper_for(model: CharLM, weights: str) -> Stepper:
    """The Stepper that reads the weights as ``weights``: float32 (as trained) or int8 (a
    quarter of the bytes per character; rnnkit.models.int8_stepping)."""
    if weights == "int8":
        from rnnkit.models.int8_stepping import Int8Stepper

        return Int8Stepper(model)
    if weights != "float32":
        raise UsageError(f"--weights must be one of {', '.join(WEIGHTS)}, got {weights!r}")
    return Stepper(model)


def seeded(seeds: list[int | None]) -> list[torch.Generator]:
    """One generator per seed (None: a fresh random seed)."""
    generators = []
    for seed in seeds:
        generator = torch.Generator()
        generator.manual_seed(seed if seed is not None else torch.seed())
        generators.append(generator)
    return generators


def draw(logits, generators, temperature, top_k, top_p) -> torch.Tensor:
    """One id per row of logits (N, V), each row from its own generator."""
    if not torch.isfinite(logits).all():
        raise UsageError(
            "the model produced non-finite scores (NaN/inf): its weights are broken; "
            "sample from an earlier checkpoint"
        )
    scores = logits.float().cpu()
    return torch.cat(
        [
            next_symbol(scores[row : row + 1], temperature, top_k, top_p, generator)
            for row, generator in enumerate(generators)
        ]
    )


def _as_tuple(state) -> tuple[torch.Tensor, ...]:
    return state if isinstance(state, tuple) else (state,)
