"""Decoding for the encoder–decoder tasks: greedy, and batched beam search.

greedy: the most likely token at each step, for the whole batch at once.
beam:   the ``width`` best hypotheses per input by total log probability; finished ones are
        ranked by log probability / length ** alpha (width 1 is exactly greedy).
"""

import torch

from rnnkit.errors import UsageError


@torch.no_grad()
def greedy_decode(decoder, state, max_length: int, bos: int, eos: int):
    """The most likely token at each step, for a whole batch at once.

    Returns (token lists without <s>/</s>, attention weights per row: (steps, S) or None).
    """
    rows = state.memory.shape[0]
    token = torch.full((rows,), bos, dtype=torch.long, device=state.memory.device)
    tokens, weights, done = [], [], torch.zeros(rows, dtype=torch.bool, device=token.device)
    for _ in range(max_length):
        logits, state, alpha = decoder.step(token, state)
        token = logits.argmax(-1)
        tokens.append(token)
        weights.append(alpha)
        done |= token == eos
        if done.all():
            break
    steps = torch.stack(tokens, 1).tolist()
    out, alignments = [], []
    for row, sequence in enumerate(steps):
        length = sequence.index(eos) if eos in sequence else len(sequence)
        out.append(sequence[:length])
        alignments.append(
            None if weights[0] is None else torch.stack([w[row] for w in weights[: length + 1]])
        )
    return out, alignments


@torch.no_grad()
def beam_search(decoder, state, width: int, max_length: int, bos: int, eos: int, alpha=1.0):
    """Beam search for every row of an encoded batch at once; same return as greedy_decode.

    Each row keeps `width` hypotheses (rows of the decoder's batch, B·width in all). Each step
    every live hypothesis is extended by every token and the `width` best by total log
    probability are kept; one that ends with </s> is finished and its slot dies (score −∞). A
    row stops when none of its slots lives, so width 1 is exactly greedy. Finished hypotheses
    are ranked by log probability / length**alpha (length normalisation: alpha 0 = none,
    1 = per-token mean; the length counts </s>).
    """
    if width < 1:
        raise UsageError(f"--beam-width must be at least 1, got {width}")
    rows, device = state.memory.shape[0], state.memory.device
    state = state.select(torch.arange(rows, device=device).repeat_interleave(width))
    scores = torch.full((rows, width), float("-inf"), device=device)
    scores[:, 0] = 0.0  # one live hypothesis per row to start with
    tokens = torch.full((rows * width,), bos, dtype=torch.long, device=device)
    history = torch.zeros(rows * width, 0, dtype=torch.long, device=device)
    seen = None  # attention weights so far (B·width, steps, S)
    finished: list[list] = [[] for _ in range(rows)]  # (normalised score, tokens, weights)
    offsets = torch.arange(rows, device=device)[:, None] * width
    for step in range(1, max_length + 1):
        logits, state, weights = decoder.step(tokens, state)
        vocab = logits.shape[-1]
        candidates = scores[:, :, None] + logits.log_softmax(-1).view(rows, width, vocab)
        scores, best = candidates.view(rows, -1).topk(width, dim=-1)  # (B, width)
        parents = (offsets + best // vocab).flatten()
        words = best % vocab
        state = state.select(parents)
        history = torch.cat([history[parents], words.view(-1, 1)], dim=1)
        if weights is not None:
            now = weights[parents][:, None]
            seen = now if seen is None else torch.cat([seen[parents], now], dim=1)
        ended = (words == eos) & torch.isfinite(scores)
        for row, slot in ended.nonzero().tolist():
            index = row * width + slot
            finished[row].append(
                (
                    scores[row, slot].item() / step**alpha,
                    history[index, :-1].tolist(),
                    None if seen is None else seen[index],
                )
            )
        scores = scores.masked_fill(ended, float("-inf"))
        tokens = words.flatten()
        if not torch.isfinite(scores).any():
            break
    else:  # out of length: the live hypotheses count as they are
        for row, slot in torch.isfinite(scores).nonzero().tolist():
            index = row * width + slot
            finished[row].append(
                (
                    scores[row, slot].item() / max_length**alpha,
                    history[index].tolist(),
                    None if seen is None else seen[index],
                )
            )
    best_of_row = [max(found, key=lambda f: f[0]) for found in finished]
    return [b[1] for b in best_of_row], [b[2] for b in best_of_row]
