"""torch's own RNN kernels, called with rnnkit's parameters exactly as torch.nn calls them.

This is torch's code, not ours (the "fused" engine of engine/dispatch.py): ``_VF.lstm``,
``_VF.gru``, ``_VF.rnn_tanh`` and ``_VF.rnn_relu`` take the flat list of weights in torch.nn's
order, which is rnnkit's registration order. Three things make it worth calling:
- on the CPU a float32 LSTM runs oneDNN's fused primitive, which is faster than rnnkit's own
  loops for training and inference (the figures: docs/performance.md, from
  ``bench/speed.py --engine auto bptt``); on CUDA every kind runs cuDNN;
- exporters know these ops, so an exported rnnkit layer behaves as an exported torch.nn layer:
  the TorchScript ONNX exporter writes one ONNX LSTM / GRU / RNN node that runs at any length
  and batch; torch.export (and the dynamo ONNX exporter) keep the batch dynamic and fix the
  length, for torch.nn's layers too (docs/compatibility.md);
- under autocast they run in the precisions torch.nn runs in.
"""

import functools

import torch
from torch import _VF, Tensor

_KERNELS = {"LSTM": _VF.lstm, "GRU": _VF.gru, "RNN_TANH": _VF.rnn_tanh, "RNN_RELU": _VF.rnn_relu}


def fused_rnn(
    mode: str,
    flat_weights: list[Tensor],
    has_biases: bool,
    data: Tensor,
    batch_sizes: Tensor | None,
    initial_state: tuple[Tensor, ...],
    num_layers: int,
    dropout: float,
    training: bool,
    bidirectional: bool,
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """mode: "LSTM", "GRU", "RNN_TANH" or "RNN_RELU". data: (T, B, I) time-major, or the
    (N, I) data of a PackedSequence with its ``batch_sizes``; initial_state each (L·D, B, ·).

    Returns the last layer's output ((T, B, D·P) or packed (N, D·P)) and the final states,
    each (L·D, B, ·). dropout is applied between layers in training with the same random draws
    as torch.nn; ``training`` is the module's mode, passed as torch.nn passes it.
    """
    kernel = _KERNELS[mode]
    hx = initial_state if len(initial_state) > 1 else initial_state[0]  # LSTM: (h, c)
    settings = (has_biases, num_layers, dropout, training, bidirectional)
    if batch_sizes is None:
        result = kernel(data, hx, flat_weights, *settings, False)  # batch_first=False
    else:
        result = kernel(data, batch_sizes, hx, flat_weights, *settings)
    output, *final = result
    return output, tuple(final)


def runs_under_autocast(mode: str, states: int, gates: int, device: torch.device) -> bool:
    """Whether torch's kernel for ``mode`` runs under the autocast now active on ``device``:
    tried once per dtype on the smallest call, with the cell's number of states and of gates.

    On CUDA it does. On the CPU, oneDNN's fused LSTM in bfloat16 needs instructions that some
    processors lack (AVX-512 BF16 or AMX): there torch.nn's own LSTM fails under autocast
    ("could not create a primitive descriptor"), and rnnkit runs the cell's step instead,
    whose matrix products autocast lowers as it lowers any torch.nn.Linear."""
    if device.type != "cpu":
        return True
    return _runs_on_cpu(mode, states, gates, torch.get_autocast_dtype("cpu"))


@functools.cache
def _runs_on_cpu(mode: str, states: int, gates: int, dtype: torch.dtype) -> bool:
    x = torch.zeros(1, 1, 1)
    hx = tuple(torch.zeros(1, 1, 1) for _ in range(states))
    weights = [torch.zeros(gates, 1), torch.zeros(gates, 1), torch.zeros(gates), torch.zeros(gates)]
    try:
        with torch.autocast("cpu", dtype), torch.no_grad():
            fused_rnn(mode, weights, True, x, None, hx, 1, 0.0, False, False)
    except RuntimeError:
        return False
    return True
