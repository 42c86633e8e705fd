"""The character model one character at a time with int8 weights: a quarter of the bytes per
character, for sampling (``rnnkit sample --weights int8``).

At batch 1 a step is bound by reading the weights (a 2×512 LSTM reads three 4 MB matrices per
character), so storing them as int8 makes each matrix product several times faster. Every
matrix the step multiplies by is quantised per output row, symmetrically:

    W ≈ s ⊙ Q,   s_r = max_j |W_rj| / 127,   Q = round(W / s) ∈ [−127, 127]   (int8)

and each product runs torch's dynamically quantised linear (fbgemm on x86, qnnpack on ARM):
the input row is quantised on the fly, the product accumulates in int32 and is scaled back
to float. What stays float: the first layer's folded embedding table (a row lookup reads one
row), the biases and every nonlinearity. The nonlinear part of each step is the cell's own step
(rnnkit.cells), given the quantised products W_ih x_t + b and W_hh h_{t-1} + b_hh, so every
cell, a user's included, samples with int8 weights.

The price is accuracy: `rnnkit eval --weights int8` measures it on the validation split
(docs/performance.md has the figures).
"""

import warnings

import torch
from torch import Tensor

from rnnkit.errors import UsageError
from rnnkit.models.charlm import CharLM
from rnnkit.models.stepping import Stepper


def quantized(weight: Tensor, bias: Tensor | None):
    """The prepacked int8 form of ``x ↦ x Wᵀ + bias`` (per-row symmetric scales)."""
    if not hasattr(torch.ops.quantized, "linear_dynamic"):
        raise UsageError(
            "this PyTorch build has no quantized linear operators: sample with --weights float32"
        )
    weight = weight.detach().float().contiguous()
    scales = (weight.abs().amax(dim=1) / 127).clamp_min(1e-12).double()
    zero_points = torch.zeros(weight.shape[0], dtype=torch.long)
    with warnings.catch_warnings():  # torch 2.13 marks quantised tensors deprecated; they work
        warnings.simplefilter("ignore")
        q = torch.quantize_per_channel(weight, scales, zero_points, 0, torch.qint8)
        return torch.ops.quantized.linear_prepack(
            q, None if bias is None else bias.detach().float()
        )


class Int8Stepper(Stepper):
    """A Stepper whose matrix products read int8 weights; same interface. The nonlinear part
    of each step is the cell's own step, on the int8 products (any cell)."""

    @torch.no_grad()
    def __init__(self, model: CharLM) -> None:
        super().__init__(model)
        if self.table.device.type != "cpu" or self.table.dtype != torch.float32:
            raise UsageError("--weights int8 samples a float32 model on the CPU")
        self.hidden_packed = [
            None if w_hh is None else quantized(w_hh, b_hh)
            for w_hh, b_hh in zip(self.w_hh, self.b_hh, strict=True)
        ]
        self.input_packed = [None] + [
            quantized(w_ih, bias) for w_ih, bias in zip(self.w_ih[1:], self.bias[1:], strict=True)
        ]
        self.head_packed = quantized(self.head_weight, self.head_bias)

    def input_side(self, layer: int, symbols: Tensor, below: Tensor | None) -> Tensor:
        if layer == 0:
            return self.table[symbols]  # (N, G·H): the folded embedding, float
        return torch.ops.quantized.linear_dynamic(below, self.input_packed[layer], True)

    def layer_step(self, layer: int, x_proj: Tensor, state: tuple[Tensor, ...]):
        packed = self.hidden_packed[layer]
        linear = torch.ops.quantized.linear_dynamic
        hh = None if packed is None else linear(state[0].contiguous(), packed, True)
        new_state, _ = self.cell.run_step(x_proj, hh, state, self.extra[layer])
        return new_state

    def head(self, h: Tensor) -> Tensor:
        return torch.ops.quantized.linear_dynamic(h, self.head_packed, True)  # (N, V)
