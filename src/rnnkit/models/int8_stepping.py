"""The character model one character at a time with int8 weights: a quarter of the bytes per
character, for sampling (``rnnkit sample --weights int8``).

At batch 1 a step is bound by reading the weights (a 2×512 LSTM reads three 4 MB matrices per
character), so storing them as int8 makes each matrix product several times faster. Every
matrix the step multiplies by is quantised per output row, symmetrically:

    W ≈ s ⊙ Q,   s_r = max_j |W_rj| / 127,   Q = round(W / s) ∈ [−127, 127]   (int8)

and each product runs torch's dynamically quantised linear (fbgemm on x86, qnnpack on ARM):
the input row is quantised on the fly, the product accumulates in int32 and is scaled back
to float. What stays float: the first layer's folded embedding table (a row lookup reads one
row), the biases and every nonlinearity; the equations are the Stepper's
(rnnkit.models.stepping), written out per gate here because the quantised product replaces
the engine's loop:

    LSTM  a = x_proj + W_hh h;  i, f, o = σ(a_i, a_f, a_o),  g = tanh(a_g)
          c' = f ⊙ c + i ⊙ g,   h' = o ⊙ tanh(c')
    GRU   r = σ(x_r + (W_hh h + b_hh)_r),  z = σ(x_z + (W_hh h + b_hh)_z),
          n = tanh(x_n + r ⊙ (W_hh h + b_hh)_n),  h' = (1 − z) ⊙ n + z ⊙ h
    RNN   h' = tanh(x_proj + W_hh h)   (or relu)

The price is accuracy: `rnnkit eval --weights int8` measures it on the validation split
(docs/performance.md has the figures).
"""

import warnings

import torch
from torch import Tensor

from rnnkit.errors import UsageError
from rnnkit.models.charlm import CharLM, State
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
    """A Stepper whose matrix products read int8 weights; same interface."""

    @torch.no_grad()
    def __init__(self, model: CharLM) -> None:
        super().__init__(model)
        if self.table.device.type != "cpu" or self.table.dtype != torch.float32:
            raise UsageError("--weights int8 samples a float32 model on the CPU")
        self.hidden_packed = [
            quantized(w_hh, b_hh if self.kind == "GRU" else None)
            for w_hh, b_hh in zip(self.w_hh, self.b_hh, strict=True)
        ]
        self.input_packed = [None] + [
            quantized(w_ih, bias) for w_ih, bias in zip(self.w_ih[1:], self.bias[1:], strict=True)
        ]
        self.head_packed = quantized(self.head_weight, self.head_bias)

    @torch.no_grad()
    def step(self, symbols: int | Tensor, state: State | None) -> tuple[Tensor, State]:
        symbols = torch.as_tensor(symbols).reshape(-1)  # (N,)
        if state is None:
            state = self.initial_state(symbols.shape[0])
        hs, cs = state if self.kind == "LSTM" else (state, None)  # each (L, N, H)
        linear = torch.ops.quantized.linear_dynamic
        new_h, new_c = [], []
        h = None
        for layer, hidden_packed in enumerate(self.hidden_packed):
            if layer == 0:
                x_proj = self.table[symbols]  # (N, G·H): the folded embedding, float
            else:
                x_proj = linear(h, self.input_packed[layer], True)
            from_state = linear(hs[layer].contiguous(), hidden_packed, True)
            if self.kind == "LSTM":
                a_i, a_f, a_g, a_o = (x_proj + from_state).chunk(4, dim=1)
                c = torch.sigmoid(a_f) * cs[layer] + torch.sigmoid(a_i) * torch.tanh(a_g)
                h = torch.sigmoid(a_o) * torch.tanh(c)
                new_c.append(c)
            elif self.kind == "GRU":
                x_r, x_z, x_n = x_proj.chunk(3, dim=1)
                h_r, h_z, h_n = from_state.chunk(3, dim=1)  # h_n includes b_hn
                r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
                h = (1 - z) * torch.tanh(x_n + r * h_n) + z * hs[layer]
            else:
                pre = x_proj + from_state
                h = torch.relu(pre) if self.relu else torch.tanh(pre)
            new_h.append(h)
        logits = linear(h, self.head_packed, True)  # (N, V)
        h_state = torch.stack(new_h)
        return logits, ((h_state, torch.stack(new_c)) if self.kind == "LSTM" else h_state)
