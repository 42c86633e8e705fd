# %% [markdown]
# # 6. The GRU (게이트 순환 유닛): z and 1 − z, and how far a cell remembers
#
# The gated recurrent unit has no separate cell state. Two gates decide, per unit, how much of
# the old state to keep: the reset gate (리셋 게이트) $r_t$ decides how much of $h_{t-1}$ the
# candidate $n_t$ may look at, and the update gate (업데이트 게이트) $z_t$ mixes old and new:
#
# $$r_t = \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}), \quad
#   z_t = \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz})$$
# $$n_t = \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn})), \quad
#   h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}$$
#
# **Which one is z?** Many textbooks (and the notes) write
# $h_t = (1 - z_t) \odot h_{t-1} + z_t \odot \tilde h_t$: there $z$ is the share of the *new*
# candidate. torch.nn (and rnnkit, which keeps torch.nn's weights) use the opposite convention:
# $z$ is the share of the *old* state. The two are the same model with $z \leftrightarrow
# 1 - z$, i.e. with the sign of the update gate's pre-activation flipped. Below we check both.

# %%
import matplotlib.pyplot as plt
import torch

import rnnkit
from rnnkit.inside.longrange import (
    TaskModel,
    adding_batch,
    evaluate,
    hidden_size_for_budget,
    loss_and_metric,
    make_batch,
)

torch.manual_seed(0)

# %% [markdown]
# ## The step, from scratch, in torch.nn's convention
# torch.nn stacks the three gates' weights in the order $r, z, n$.


# %%
def gru_step(x, h, W_ih, W_hh, b_ih, b_hh):
    gi = x @ W_ih.T + b_ih
    gh = h @ W_hh.T + b_hh
    i_r, i_z, i_n = gi.chunk(3, dim=-1)
    h_r, h_z, h_n = gh.chunk(3, dim=-1)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)  # r scales W_hn h + b_hn, bias included
    return (1 - z) * n + z * h, z


gru = rnnkit.GRU(4, 6).double()
reference = torch.nn.GRU(4, 6).double()
reference.load_state_dict(gru.state_dict())
x = torch.randn(10, 3, 4, dtype=torch.float64)

h = torch.zeros(3, 6, dtype=torch.float64)
mine = []
for t in range(10):
    h, _ = gru_step(x[t], h, gru.weight_ih_l0, gru.weight_hh_l0, gru.bias_ih_l0, gru.bias_hh_l0)
    mine.append(h)
mine = torch.stack(mine)
assert torch.allclose(mine, gru(x)[0], atol=1e-12)
assert torch.allclose(gru(x)[0], reference(x)[0], atol=1e-12)

# %% [markdown]
# ## The textbook's form is the same model with z flipped
# Negate the update gate's weights and biases: $\sigma(-a) = 1 - \sigma(a)$, so the new $z'$ is
# torch's $1 - z$, and the textbook's update $(1 - z') h_{t-1} + z' n_t$ gives the same
# numbers.


# %%
def textbook_gru_step(x, h, W_ih, W_hh, b_ih, b_hh):
    """h_t = (1 - z) ⊙ h_{t-1} + z ⊙ h̃_t: z is the share of the new candidate."""
    i_r, i_z, i_n = (x @ W_ih.T + b_ih).chunk(3, dim=-1)
    h_r, h_z, h_n = (h @ W_hh.T + b_hh).chunk(3, dim=-1)
    r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
    candidate = torch.tanh(i_n + r * h_n)
    return (1 - z) * h + z * candidate


flip = torch.ones(18, 1, dtype=torch.float64)
flip[6:12] = -1  # the z rows
h = torch.zeros(3, 6, dtype=torch.float64)
for t in range(10):
    h = textbook_gru_step(
        x[t],
        h,
        gru.weight_ih_l0 * flip,
        gru.weight_hh_l0 * flip,
        gru.bias_ih_l0 * flip[:, 0],
        gru.bias_hh_l0 * flip[:, 0],
    )
assert torch.allclose(h, mine[-1], atol=1e-12)  # the same model

# %% [markdown]
# ## Reading the gates with `.trace()`
# `layer.trace(x)` returns every gate at every step (layout: layer, direction, time, batch,
# unit). The hidden states it records satisfy the update equation exactly.

# %%
trace = gru.trace(x)
z, n = trace.gates["z"][0, 0], trace.gates["n"][0, 0]  # (T, B, H)
h = trace.hidden[0, 0]
h_before = torch.cat([torch.zeros_like(h[:1]), h[:-1]])  # h_{t-1}, with h_0 = 0
assert torch.allclose(h, (1 - z) * n + z * h_before, atol=1e-12)

# %% [markdown]
# ## How far does each cell remember? The adding problem
# Each of $T$ steps reads a random number and a marker; exactly two steps are marked, one in
# each half. After the last step the model must output the sum of the two marked numbers
# (Hochreiter & Schmidhuber, 1997). Answering the mean, 1, scores a mean squared error of
# $2/12 \approx 0.167$; below 0.01 counts as solved. With $T = 50$ the first marked number must
# be held for up to 50 steps. Both cells get the same number of parameters (about 20,000: the
# RNN gets more units) and the same 800 training steps.


# %%
def train_adding(cell, steps=800, delay=50, seed=0):
    """A cell with about 20,000 parameters trained on the adding problem; rnnkit.inside.longrange
    does the same (train_one) for every cell and delay."""
    torch.manual_seed(seed)
    model = TaskModel(cell, 2, hidden_size_for_budget(cell, 2, 1, 20_000), 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        inputs, targets = make_batch("adding", 64, delay, generator)
        loss, _ = loss_and_metric("adding", model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # notebook 4
        optimizer.step()
    return model, evaluate(model, "adding", delay, size=1000, seed=seed)  # test MSE


models, mse = {}, {}
for cell in ("rnn", "gru"):
    models[cell], mse[cell] = train_adding(cell)
    print(f"{cell.upper()}: {models[cell].rnn.hidden_size} units, test MSE {mse[cell]:.4f}")

# %%
assert mse["gru"] < 0.01, mse  # solved
assert mse["rnn"] > 0.1, mse  # no better than answering the mean

# %% [markdown]
# What does the trained GRU's update gate do? Below, for one sequence, the mean of $z_t$ over
# the units (high: keep the old state; low: write the new candidate), with the two marked
# steps drawn as lines. The cell writes when a marked number arrives and holds it otherwise.

# %%
model = models["gru"]
inputs, _ = adding_batch(200, 50, torch.Generator().manual_seed(5))
with torch.no_grad():
    z = model.rnn.trace(inputs).gates["z"][0, 0]  # (T, B, H)
marked = inputs[:, :, 1] == 1  # (T, B)
mean_z = z.mean(-1)  # (T, B)
print(f"mean z at marked steps {mean_z[marked].mean():.3f}, elsewhere {mean_z[~marked].mean():.3f}")

plt.figure(figsize=(7, 2.5))
plt.plot(mean_z[:, 0].numpy(), label="mean z over the units")
for t in marked[:, 0].nonzero()[:, 0].tolist():
    plt.axvline(t, color="red", linestyle="--")
plt.xlabel("step")
plt.ylabel("z (keep the old state)")
plt.legend()
plt.tight_layout()

# %%
assert mean_z[marked].mean() < mean_z[~marked].mean()  # it writes at the marked steps

# %% [markdown]
# **On the command line:** `rnnkit longrange` runs the adding and copy-memory problems for
# every cell at several delays on the same parameter budget.
#
# Next: notebook 7, teacher forcing.
