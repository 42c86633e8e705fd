"""Variational dropout: one mask per sequence, shared by every time step of that sequence.

Standard dropout on a recurrent network's inputs and outputs (Zaremba et al. 2014) draws a new
mask at every time step. Variational dropout (Gal & Ghahramani 2016; AWD-LSTM's "locked"
dropout) draws one mask per sequence and call and uses it at every step:

    y[b, t, j] = x[b, t, j] · m[b, j] / (1 − p),      m[b, j] ~ Bernoulli(1 − p)

A unit that is dropped is dropped for the whole chunk (the paper's argument: it is the
dropout that matches a Bayesian reading of the recurrent network). It also draws T times fewer
random numbers: on the CPU, drawing a mask per step (``aten::bernoulli_``) took ~5% of a
training step of the 2×512 character model (torch.profiler, 2-core machine).

The same masks serve the layers (between stacked layers, ``layer.variational_dropout``) and the
character model (its embeddings and the input of its head).
"""

import torch
from torch import Tensor


def sequence_mask(batch: int, features: int, p: float, like: Tensor) -> Tensor:
    """(B, F): m / (1 − p), m ~ Bernoulli(1 − p), with the dtype and device of `like`."""
    keep = 1.0 - p
    mask = torch.empty(batch, features, dtype=like.dtype, device=like.device)
    if keep == 0:  # p = 1 drops everything (as torch.nn's dropout does)
        return mask.zero_()
    return mask.bernoulli_(keep).div_(keep)


def variational_dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """x (B, T, F), batch first -> x with one mask per sequence b, the same at every step t."""
    if not training or p == 0:
        return x
    mask = sequence_mask(x.shape[0], x.shape[-1], p, x)  # (B, F)
    return x * mask.unsqueeze(1)  # (B, 1, F) broadcast over T


def mask_packed_rows(rows: Tensor, mask: Tensor, batch_sizes: list[int]) -> Tensor:
    """rows (N, F) in a layer's time-major packed layout (the first batch_sizes[t] sequences
    at step t, T·B rows when every sequence has the same length) -> rows ⊙ mask of their
    sequence; mask (B, F)."""
    batch = batch_sizes[0]
    if all(size == batch for size in batch_sizes):
        return (rows.view(len(batch_sizes), batch, -1) * mask).view(rows.shape)  # (T, B, F)
    return rows * torch.cat([mask[:size] for size in batch_sizes])
