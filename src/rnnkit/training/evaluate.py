"""Full-pass evaluation: the loss on every character of a split, not on random batches."""

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from rnnkit.data.batches import evaluation_chunks
from rnnkit.models.charlm import CharLM, detach_state


@dataclass
class CharacterScore:
    loss: float  # mean negative log-likelihood, nats per character
    characters: int  # how many predictions were scored

    @property
    def bits_per_character(self) -> float:
        return self.loss / math.log(2)

    @property
    def perplexity(self) -> float:
        return math.exp(self.loss)


@torch.no_grad()
def evaluate(
    model: CharLM,
    ids: np.ndarray,
    batch_size: int = 64,
    seq_len: int = 128,
    device="cpu",
    should_stop=lambda: False,
    context: int | None = None,
) -> CharacterScore | None:
    """Score every id of `ids` after the first (see `evaluation_chunks`, which `context` is
    passed to); None if stopped."""
    was_training = model.training
    model.eval()
    total, count, state = 0.0, 0, None
    try:
        for inputs, targets, mask in evaluation_chunks(ids, batch_size, seq_len, context):
            if should_stop():
                return None
            logits, state = model(inputs.to(device), state)
            state = detach_state(state)
            losses = F.cross_entropy(
                logits.flatten(0, 1), targets.to(device).flatten(), reduction="none"
            )
            mask = mask.to(device).flatten()
            total += losses[mask].double().sum().item()
            count += int(mask.sum())
    finally:
        model.train(was_training)
    return CharacterScore(loss=total / count, characters=count)


@torch.no_grad()
def evaluate_stepped(
    stepper, ids: np.ndarray, batch_size: int = 64, seq_len: int = 128
) -> CharacterScore:
    """:func:`evaluate`'s score, one character at a time through a Stepper (e.g. the int8 one:
    what sampling with it costs in nats/char). The same predictions, with the same warm-up,
    as :func:`evaluate` with the same batch_size and seq_len."""
    total, count, state = 0.0, 0, None
    for inputs, targets, mask in evaluation_chunks(ids, batch_size, seq_len, None):
        for t in range(inputs.shape[1]):
            logits, state = stepper.step(inputs[:, t], state)
            losses = F.cross_entropy(logits.float(), targets[:, t], reduction="none")
            total += losses[mask[:, t]].double().sum().item()
            count += int(mask[:, t].sum())
    return CharacterScore(loss=total / count, characters=count)
