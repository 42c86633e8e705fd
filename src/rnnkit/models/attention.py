"""Attention: a weighted average of the encoder's states, weighted by relevance to the decoder.

For a decoder state s (the query) and encoder states m_1..m_S (the memory):

    additive (Bahdanau et al. 2015):        e_j = vᵀ tanh(W_s s + W_m m_j)
    multiplicative (Luong et al. 2015):     e_j = sᵀ W_a m_j                     ("general")
    α = softmax(e) over the real positions  (padding gets e_j = −∞, so α_j = 0 exactly)
    context = Σ_j α_j m_j

The weights α are returned too: they are the alignment heat map.
"""

import torch
from torch import Tensor, nn

KINDS = ("additive", "multiplicative", "none")


class AdditiveAttention(nn.Module):
    def __init__(self, query_size: int, memory_size: int, attention_size: int) -> None:
        super().__init__()
        self.query = nn.Linear(query_size, attention_size, bias=False)  # W_s
        self.memory = nn.Linear(memory_size, attention_size, bias=True)  # W_m (and a bias)
        self.v = nn.Linear(attention_size, 1, bias=False)

    def precompute(self, memory: Tensor) -> Tensor:
        """W_m m_j for every j: the same at every decoder step, so computed once. (B, S, A)"""
        return self.memory(memory)

    def scores(self, query: Tensor, memory: Tensor, projected: Tensor) -> Tensor:
        return self.v(torch.tanh(self.query(query)[:, None, :] + projected)).squeeze(-1)

    def forward(self, query, memory, mask, projected=None) -> tuple[Tensor, Tensor]:
        projected = self.precompute(memory) if projected is None else projected
        return _attend(self.scores(query, memory, projected), memory, mask)


class MultiplicativeAttention(nn.Module):
    def __init__(self, query_size: int, memory_size: int, attention_size: int = 0) -> None:
        super().__init__()
        self.bilinear = nn.Linear(memory_size, query_size, bias=False)  # W_a

    def precompute(self, memory: Tensor) -> Tensor:
        """W_a m_j for every j, once per source. (B, S, Q)"""
        return self.bilinear(memory)

    def scores(self, query: Tensor, memory: Tensor, projected: Tensor) -> Tensor:
        return torch.bmm(projected, query[:, :, None]).squeeze(-1)  # sᵀ W_a m_j

    def forward(self, query, memory, mask, projected=None) -> tuple[Tensor, Tensor]:
        projected = self.precompute(memory) if projected is None else projected
        return _attend(self.scores(query, memory, projected), memory, mask)


def _attend(scores: Tensor, memory: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """scores (B, S), memory (B, S, M), mask (B, S) True where real -> context (B, M), α (B, S)"""
    weights = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)
    context = torch.bmm(weights[:, None, :], memory).squeeze(1)
    return context, weights


def make_attention(kind: str, query_size: int, memory_size: int, attention_size: int):
    if kind == "additive":
        return AdditiveAttention(query_size, memory_size, attention_size)
    if kind == "multiplicative":
        return MultiplicativeAttention(query_size, memory_size)
    if kind == "none":
        return None
    raise ValueError(f"attention must be one of {', '.join(KINDS)}, got {kind!r}")
