"""torch's own fused LSTM kernel, called for the one case where it is the fastest path we have.

On the CPU, ``torch.nn.LSTM`` in float32 runs through oneDNN's fused RNN primitive, forward and
backward. rnnkit's hand-written BPTT (:mod:`rnnkit.engine.lstm`, C++ loops) does the same
arithmetic but its per-step matrix products go through the general BLAS call, and measured
side by side it took 1.17-1.28x the time of the fused kernel for a training step and
1.5-1.9x for inference (``bench/speed.py --quick``, 2-core machine, torch 2.13). So for a
plain float32 LSTM (no projection, every sequence of the same length, nothing traced) the
default engine calls that kernel, with rnnkit's own parameters, exactly as torch.nn.LSTM
does. This is torch's code, not ours: ``layer.engine = "bptt"`` runs rnnkit's hand-written
BPTT instead and ``"reference"`` the equations step by step; tests hold all three to each
other. The GRU and the RNN have no fused kernel on the CPU, and rnnkit's BPTT beats torch.nn
there (docs/performance.md).
"""

import torch
from torch import _VF, Tensor


def fused_lstm_applies(dtype: torch.dtype) -> bool:
    return dtype == torch.float32


def fused_lstm(
    flat_weights: list[Tensor],
    has_biases: bool,
    data: Tensor,
    steps: int,
    initial_state: tuple[Tensor, Tensor],
    num_layers: int,
    dropout: float,
    training: bool,
    bidirectional: bool,
) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """data (T·B, I), every sequence T steps; initial_state each (L·D, B, H).

    Returns the last layer's output (T·B, D·H) and the final (h, c), each (L·D, B, H).
    dropout is applied between layers in training, with the same random draws as
    torch.nn.LSTM; ``training`` is the module's mode, passed as torch.nn passes it.
    """
    x = data.view(steps, -1, data.shape[-1])  # (T, B, I)
    output, h, c = _VF.lstm(
        x,
        initial_state,
        flat_weights,
        has_biases,
        num_layers,
        dropout,
        training,
        bidirectional,
        False,  # batch_first: x is time-major here
    )
    return output.reshape(-1, output.shape[-1]), (h, c)
