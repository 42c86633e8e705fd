# %% [markdown]
# # 10. Your own cell (셀)
#
# The RNN, the LSTM and the GRU are three answers to one question: what should a cell compute
# from $x_t$ and $h_{t-1}$? rnnkit lets you write your own answer as a *definition*: the gate
# blocks that $W_{ih}$ and $W_{hh}$ produce, the states it carries, and one step in plain torch
# operations. Autograd differentiates the step; rnnkit gives it layers with torch.nn's
# interface, packing, `.trace()`, compile and export, the command line and the explorer
# (`docs/cells.md`).
#
# Our cell: an LSTM with only a forget gate (JANET, van der Westhuizen & Lasenby, 2018). The
# input gate is tied to the forget gate, $i = 1 - f$, the output gate dropped, $h = c$:
#
# $$f_t = \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf}), \quad
#   g_t = \tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg})$$
# $$h_t = f_t \odot h_{t-1} + (1 - f_t) \odot g_t$$
#
# Half the LSTM's parameters, and a gradient path $\partial h_t / \partial h_{t-1}$ that
# contains $f_t$ directly, as the LSTM's cell path does.

# %%
import torch

from rnnkit import Cell, Recurrent, RecurrentCell
from rnnkit.inside.longrange import adding_batch, loss_and_metric, make_batch

σ, tanh = torch.sigmoid, torch.tanh


class ForgetGateOnly(Cell):
    gates = ("f", "g")  # W_ih is (2H, I) and W_hh (2H, H), stacked in this order
    states = ("h",)

    def step(self, x, hh, state, p):
        (h,) = state
        f, g = (x + hh).chunk(2, dim=-1)  # x = W_ih x_t + b_ih, hh = W_hh h_{t-1} + b_hh
        f, g = σ(f), tanh(g)
        h = f * h + (1 - f) * g
        return (h,), {"f": f, "g": g}


# %% [markdown]
# ## A layer of it, checked against its own definition
# `rnnkit.Recurrent(cell, input_size, hidden_size, ...)` takes torch.nn.LSTM's other
# arguments. First check: the layer's output equals the equations run step by step in a plain
# loop, in float64.

# %%
torch.manual_seed(0)
layer = Recurrent(ForgetGateOnly(), 3, 5, num_layers=1).double()
print({name: tuple(p.shape) for name, p in layer.named_parameters()})

x = torch.randn(20, 4, 3, dtype=torch.float64)  # (T, B, input)
h = torch.zeros(4, 5, dtype=torch.float64)
by_hand = []
for t in range(20):
    pre = (
        x[t] @ layer.weight_ih_l0.T + layer.bias_ih_l0 + h @ layer.weight_hh_l0.T + layer.bias_hh_l0
    )
    f, g = torch.sigmoid(pre[:, :5]), torch.tanh(pre[:, 5:])
    h = f * h + (1 - f) * g
    by_hand.append(h)
output, h_n = layer(x)
assert torch.allclose(output, torch.stack(by_hand), atol=1e-12)
assert torch.allclose(h_n[0], h, atol=1e-12)

# %% [markdown]
# ## Exact gradients, first and second order
# `gradcheck` compares autograd's gradient with finite differences; `gradgradcheck` does the
# same for the gradient of the gradient (what a gradient penalty or a Hessian-vector product
# needs).

# %%
small = Recurrent(ForgetGateOnly(), 2, 3).double()
inputs = torch.randn(6, 2, 2, dtype=torch.float64, requires_grad=True)
assert torch.autograd.gradcheck(lambda v: small(v)[0], (inputs,))
assert torch.autograd.gradgradcheck(lambda v: small(v)[0], (inputs,))

# %% [markdown]
# ## Its gates, under its own names
# `.trace()` records every gate the step returns, by the names it gave them.

# %%
trace = layer.trace(x)
print(sorted(trace.gates), tuple(trace.gates["f"].shape))  # (layer, direction, T, B, H)
f = trace.gates["f"][0, 0]
assert ((f > 0) & (f < 1)).all()

# %% [markdown]
# ## Does it remember? The adding problem of notebook 6
# The same 800 steps, learning rate and delay (50) as the GRU there, with fewer parameters:
# 80 units make $2 \cdot 80 \cdot (2 + 80 + 2) + 81 = 13{,}521$, against the GRU's 19,751.
# A common initialisation for such gates opens the forget gate at the start (bias +1), as in
# notebook 4.


# %%
class AddingModel(torch.nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.rnn = Recurrent(ForgetGateOnly(), 2, hidden)
        self.head = torch.nn.Linear(hidden, 1)
        with torch.no_grad():
            self.rnn.bias_ih_l0[:hidden] = 1.0  # f: keep the state at the start

    def forward(self, inputs):
        return self.head(self.rnn(inputs)[0])


torch.manual_seed(0)
model = AddingModel(80)
assert sum(p.numel() for p in model.parameters()) == 13_521
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
generator = torch.Generator().manual_seed(0)
for _ in range(800):
    inputs, targets = make_batch("adding", 64, 50, generator)
    loss, _ = loss_and_metric("adding", model(inputs), targets)
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()

with torch.no_grad():
    inputs, targets = adding_batch(1000, 50, torch.Generator().manual_seed(1_000_003))
    _, mse = loss_and_metric("adding", model(inputs), targets)
print(f"test MSE {mse:.4f} (answering the mean: 0.167; solved below 0.01)")
assert mse < 0.01, mse

# %% [markdown]
# ## One step at a time, and the command line
# `RecurrentCell` is the one-step form (as `torch.nn.LSTMCell` is to `torch.nn.LSTM`): the
# same weights give the same states.

# %%
cell = RecurrentCell(ForgetGateOnly(), 3, 5).double()
cell.load_state_dict({k.removesuffix("_l0"): v for k, v in layer.state_dict().items()})
h = torch.zeros(4, 5, dtype=torch.float64)
for t in range(20):
    h = cell(x[t], h)
assert torch.allclose(h, output[-1], atol=1e-12)

# %% [markdown]
# Saved in a file, the same class trains a character model and everything else runs on it:
#
# ```sh
# rnnkit train --cell my_cell.py:ForgetGateOnly --out runs/janet --time-budget 2
# rnnkit sample runs/janet --prime "ROMEO:"
# rnnkit explore runs/janet      # the unit picker offers h, f, g
# ```
#
# rnnkit's library has eight more (`rnnkit train --cell layernorm_lstm`, `mingru`, `indrnn`,
# ...): `docs/cells.md` lists them with their papers and their scores.
