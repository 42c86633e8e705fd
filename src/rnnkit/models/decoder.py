"""The decoder of every encoder–decoder task: one rnnkit cell step per output token.

    s_0 = tanh(W_b · summary)                        the encoder's summary starts the decoder
    attention "none":            s_t = cell(E y_{t−1}, s_{t−1});   o_t = s_t
    attention "additive":        c_t, α_t = attend(s_{t−1}, memory)              (Bahdanau)
                                 s_t = cell([E y_{t−1} ; c_t], s_{t−1})
                                 o_t = tanh(W_c [s_t ; c_t])
    attention "multiplicative":  s_t = cell([E y_{t−1} ; o_{t−1}], s_{t−1})      (Luong,
                                 c_t, α_t = attend(s_t, memory)                   input feeding)
                                 o_t = tanh(W_c [s_t ; c_t])
    p(y_t | y_<t, x) = softmax(W_o o_t + b_o)

Teacher forcing: with ratio r, each next input y_{t−1} is the reference token with probability r
and the decoder's own most likely token otherwise (a coin per token, Bengio et al. 2015);
scheduled sampling lowers r from 1 during training. At r = 1 training never sees its own
mistakes, which is the exposure bias the docs measure.
"""

from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from rnnkit.cells import cell_from_spec
from rnnkit.data.tokens import PAD
from rnnkit.models.attention import make_attention
from rnnkit.nn.cells import make_cell


@dataclass
class DecoderState:
    """What one decoder step needs from the last: all batch-first, so rows can be reordered."""

    hidden: Tensor | tuple[Tensor, Tensor]  # (B, H), or (h, c) for an LSTM
    feed: Tensor  # o_{t−1} (B, H), input feeding
    memory: Tensor  # encoder outputs (B, S, M)
    mask: Tensor  # (B, S) True on real source positions
    projected: Tensor | None  # the attention's per-source precomputation

    def select(self, rows: Tensor) -> "DecoderState":
        """The states of `rows` (beam search keeps, drops and copies hypotheses)."""
        pick = lambda t: None if t is None else t.index_select(0, rows)  # noqa: E731
        hidden = (
            tuple(map(pick, self.hidden)) if isinstance(self.hidden, tuple) else pick(self.hidden)
        )
        return replace(
            self,
            hidden=hidden,
            feed=pick(self.feed),
            memory=pick(self.memory),
            mask=pick(self.mask),
            projected=pick(self.projected),
        )


def top(hidden) -> Tensor:
    return hidden[0] if isinstance(hidden, tuple) else hidden


class Decoder(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        memory_size: int,
        summary_size: int,
        embedding_size: int = 64,
        hidden_size: int = 128,
        cell: str = "gru",
        attention: str = "additive",
        attention_size: int = 128,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.kind = attention
        self.hidden_size = hidden_size
        self.embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=PAD)
        self.bridge = nn.Linear(summary_size, hidden_size)
        self.attention = make_attention(attention, hidden_size, memory_size, attention_size)
        extra = {"none": 0, "additive": memory_size, "multiplicative": hidden_size}[attention]
        self.cell = make_cell(cell, embedding_size + extra, hidden_size)
        self.state_names = cell_from_spec(cell).states  # h, and the LSTM's c
        if self.attention is not None:
            self.combine = nn.Linear(hidden_size + memory_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(hidden_size, vocab_size)

    def start(self, memory: Tensor, mask: Tensor, summary: Tensor) -> DecoderState:
        h = torch.tanh(self.bridge(summary))
        others = (torch.zeros_like(h) for _ in self.state_names[1:])  # the LSTM's c_0
        hidden = (h, *others) if len(self.state_names) > 1 else h
        projected = None if self.attention is None else self.attention.precompute(memory)
        return DecoderState(hidden, torch.zeros_like(h), memory, mask, projected)

    def step(self, tokens: Tensor, state: DecoderState):
        """tokens (B,) -> logits (B, V), the next state, attention weights (B, S) or None."""
        out, state, weights = self.attend_and_step(tokens, state)
        return self.output(self.dropout(out)), state, weights

    def attend_and_step(self, tokens: Tensor, state: DecoderState):
        """One step up to o_t (before the output layer): (o_t (B, H), next state, weights)."""
        embedded = self.dropout(self.embedding(tokens))
        weights = None
        if self.kind == "none":
            hidden = self.cell(embedded, state.hidden)
            out = top(hidden)
        else:
            if self.kind == "additive":
                context, weights = self.attention(
                    top(state.hidden), state.memory, state.mask, state.projected
                )
                hidden = self.cell(torch.cat([embedded, context], -1), state.hidden)
            else:
                hidden = self.cell(torch.cat([embedded, state.feed], -1), state.hidden)
                context, weights = self.attention(
                    top(hidden), state.memory, state.mask, state.projected
                )
            out = torch.tanh(self.combine(torch.cat([top(hidden), context], -1)))
        return out, replace(state, hidden=hidden, feed=out), weights

    def forward(
        self,
        state: DecoderState,
        inputs: Tensor,
        teacher_forcing: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """inputs (B, T): <s> then the reference tokens (the targets shifted right).

        Returns logits (B, T, V). With teacher_forcing < 1 some inputs after the first are
        replaced by the decoder's own previous argmax (a coin per token from `generator`).
        """
        outs = []
        token = inputs[:, 0]
        for t in range(inputs.shape[1]):
            out, state, _ = self.attend_and_step(token, state)
            outs.append(out)
            if t + 1 < inputs.shape[1]:
                token = inputs[:, t + 1]
                if teacher_forcing < 1.0:
                    coins = torch.rand(token.shape, generator=generator) >= teacher_forcing
                    with torch.no_grad():  # the model's own guess is an input, not a path
                        guess = self.output(out).argmax(-1)
                    token = torch.where(coins.to(token.device), guess, token)
        # The output layer once for all steps: one large product instead of T small ones.
        return self.output(self.dropout(torch.stack(outs, dim=1)))
