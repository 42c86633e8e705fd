# %% [markdown]
# # 4. Backpropagation through time (시간에 따른 역전파, BPTT) and vanishing gradients
#
# Training an RNN is ordinary backpropagation on the network unrolled over time: step $t$'s
# copy of the cell passes $h_t$ forward and receives $\partial L / \partial h_t$ back. Because
# every copy shares the same weights, each weight's gradient is the **sum over the steps** of
# its per-step gradients.
#
# Part 1 writes BPTT by hand (in numpy, in the style of Karpathy's min-char-rnn) and checks it
# against autograd. Part 2 measures what the notes warn about: the gradient reaching step $t$
# is multiplied by $\partial h_s / \partial h_{s-1} = \operatorname{diag}(1 - h_s^2)\,W_{hh}$
# once per step of distance, so it shrinks geometrically (vanishing gradient, 기울기 소실) or
# grows (exploding gradient, 기울기 폭주). Part 3 shows what gradient clipping
# (그래디언트 클리핑) does about it, and what it does not.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

import rnnkit
from rnnkit.inside.gradflow import fresh_flows, fresh_layer, measure

# %% [markdown]
# ## 1. BPTT by hand
# A vanilla RNN with an output layer, the loss the sum over steps of the cross-entropy of
# $y_t = W_{hy} h_t + b_y$ against the target $k_t$. Forward, keeping every $h_t$:
#
# $a_t = W_{xh} x_t + W_{hh} h_{t-1} + b_h$, $\quad h_t = \tanh(a_t)$,
# $\quad p_t = \operatorname{softmax}(y_t)$, $\quad L = -\sum_t \log p_t[k_t]$.
#
# Backward, from the last step to the first, carrying $\delta_{t} = \partial L/\partial h_t$
# that arrives from the future:
#
# $\partial L / \partial y_t = p_t - \text{onehot}(k_t)$, $\quad
# \partial L/\partial h_t = W_{hy}^\top (p_t - \text{onehot}(k_t)) + W_{hh}^\top \partial L/\partial a_{t+1}$,
# $\quad \partial L / \partial a_t = (1 - h_t^2) \odot \partial L/\partial h_t$,
#
# and each shared weight adds up its step's share: $\partial L/\partial W_{hh} \mathrel{+}=
# \partial L/\partial a_t\, h_{t-1}^\top$, and so on.


# %%
def bptt_by_hand(xs, targets, Wxh, Whh, bh, Why, by):
    """(loss, gradients) of a tanh RNN by explicit backpropagation through time."""
    T = len(xs)
    hs = {-1: np.zeros(Whh.shape[0])}
    ps = {}
    loss = 0.0
    for t in range(T):  # forward
        hs[t] = np.tanh(Wxh @ xs[t] + Whh @ hs[t - 1] + bh)
        y = Why @ hs[t] + by
        ps[t] = np.exp(y - y.max()) / np.exp(y - y.max()).sum()
        loss -= np.log(ps[t][targets[t]])
    dWxh, dWhh, dbh = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(bh)
    dWhy, dby = np.zeros_like(Why), np.zeros_like(by)
    da_next = np.zeros_like(bh)
    for t in reversed(range(T)):  # backward through time
        dy = ps[t].copy()
        dy[targets[t]] -= 1  # softmax + cross-entropy
        dWhy += np.outer(dy, hs[t])
        dby += dy
        dh = Why.T @ dy + Whh.T @ da_next  # from the output and from step t+1
        da = (1 - hs[t] ** 2) * dh  # through tanh
        dWxh += np.outer(da, xs[t])
        dWhh += np.outer(da, hs[t - 1])  # the shared W: summed over steps
        dbh += da
        da_next = da
    return loss, {"Wxh": dWxh, "Whh": dWhh, "bh": dbh, "Why": dWhy, "by": dby}


# %% [markdown]
# The same model in rnnkit (`rnnkit.RNN` and a linear head) and autograd's gradients, in
# float64. `bias_ih + bias_hh` is the $b_h$ above; its gradient goes to both.

# %%
torch.manual_seed(0)
T, V, H = 25, 10, 16
rnn = rnnkit.RNN(V, H).double()
head = torch.nn.Linear(H, V).double()
ids = torch.randint(0, V, (T + 1,))
inputs = torch.nn.functional.one_hot(ids[:-1], V).double().unsqueeze(1)  # (T, 1, V)
targets = ids[1:]

out, _ = rnn(inputs)
loss = torch.nn.functional.cross_entropy(head(out[:, 0]), targets, reduction="sum")
loss.backward()

numpy_of = {
    "Wxh": rnn.weight_ih_l0,
    "Whh": rnn.weight_hh_l0,
    "Why": head.weight,
    "by": head.bias,
}
hand_loss, hand = bptt_by_hand(
    inputs[:, 0].numpy(),
    targets.numpy(),
    *(numpy_of[k].detach().numpy() for k in ("Wxh", "Whh")),
    (rnn.bias_ih_l0 + rnn.bias_hh_l0).detach().numpy(),
    *(numpy_of[k].detach().numpy() for k in ("Why", "by")),
)
autograd = {name: p.grad.numpy() for name, p in numpy_of.items()} | {
    "bh": rnn.bias_ih_l0.grad.numpy()
}
errors = {
    name: float(np.abs(hand[name] - autograd[name]).max() / np.abs(autograd[name]).max())
    for name in hand
}
print(f"loss by hand {hand_loss:.12f}, autograd {loss.item():.12f}")
errors

# %%
assert abs(hand_loss - loss.item()) < 1e-10
assert max(errors.values()) < 1e-10, errors  # hand BPTT = autograd, to round-off
assert np.allclose(rnn.bias_ih_l0.grad.numpy(), rnn.bias_hh_l0.grad.numpy())

# %% [markdown]
# ## 2. How far back does the gradient reach?
# `rnnkit.inside.gradflow` measures $\lVert \partial L / \partial h_t \rVert$ for a loss on
# the **last** step only, as a function of the distance $T - t$, averaged over a batch (the
# layers' gradient probe: `layer.trace(x, probe_gradients=True)`). A straight line on a log
# scale is a geometric decay; its slope per step is printed as "decay/step".
#
# First three freshly initialised cells, 100 steps, then the vanilla RNN with its $W_{hh}$
# rescaled to a spectral radius (스펙트럼 반경) $\rho$ below and above 1, on small inputs
# where tanh is nearly linear and $\rho$ alone decides.

# %%
cells = fresh_flows(["rnn", "lstm", "gru"], [], steps=100)
radii = fresh_flows([], [0.9, 1.5], steps=100, input_scale=0.1)

fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
for ax, flows in zip(axes, (cells, radii), strict=True):
    for flow in flows:
        norms = flow.norms[0] / flow.norms[0, 0]
        ax.semilogy(norms.numpy(), label=f"{flow.label} ({flow.decay_per_step[0]:.2f}/step)")
    ax.set_xlabel("distance from the loss, T - t (steps)")
    ax.legend()
axes[0].set_ylabel("‖∂L/∂h_t‖ relative to t = T")
axes[0].set_title("fresh cells")
axes[1].set_title("vanilla RNN, small inputs")
plt.tight_layout()

# %%
decay = {flow.label: flow.decay_per_step[0] for flow in cells + radii}
decay

# %%
# the LSTM's and the GRU's gradients decay slower than the vanilla RNN's
assert decay["LSTM"] > decay["RNN"] and decay["GRU"] > decay["RNN"], decay
assert decay["RNN ρ=0.9"] < 1 < decay["RNN ρ=1.5"], decay  # vanishing below 1, exploding above

# %% [markdown]
# The LSTM's advantage is its cell path: $\partial c_t / \partial c_{t-1} = f_t$, the forget
# gate, which the network can hold near 1. A common trick opens it at the start: a forget-gate
# bias of +1 or more (Jozefowicz et al., 2015). rnnkit's LSTM keeps torch.nn's gate order
# $i, f, g, o$, so the forget bias is the second quarter of `bias_ih_l0`.

# %%
lstm = fresh_layer("lstm", 32, 64, 1, seed=0)
with torch.no_grad():
    lstm.bias_ih_l0[64:128] = 3.0  # f = σ(... + 3) ≈ 0.95
inputs = torch.randn(100, 16, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
direction = torch.randn(64, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
opened = measure(lstm, inputs, lambda h: (h @ direction).sum(), "LSTM, forget bias 3")
print(
    f"LSTM decay per step: {decay['LSTM']:.3f} fresh, {opened.decay_per_step[0]:.3f} with the forget gate open"
)
assert opened.decay_per_step[0] > 0.9 > decay["LSTM"]

# %% [markdown]
# ## 3. Gradient clipping
# Clipping by the global norm rescales the whole gradient when its norm exceeds a threshold
# $c$: every $\partial L / \partial \theta$ is multiplied by $\min(1, c / \lVert g \rVert)$.
# That tames an exploding step, but the factor is the same for near and far steps: it cannot
# bring back a gradient that has vanished.

# %%
rnn = fresh_layer("rnn", 32, 64, 1, seed=0, spectral_radius=1.5)
small = inputs * 0.1
out, _ = rnn(small)
(out[-1] @ direction).sum().backward()
before = torch.cat([p.grad.flatten() for p in rnn.parameters()]).norm().item()
torch.nn.utils.clip_grad_norm_(rnn.parameters(), max_norm=1.0)
after = torch.cat([p.grad.flatten() for p in rnn.parameters()]).norm().item()
print(f"‖g‖ = {before:.1f} before clipping, {after:.3f} after (threshold 1)")
assert before > 100 and abs(after - 1.0) < 1e-6

exploding = radii[1]
factor = exploding.clipped_factor(1.0)
ratio_before = (exploding.norms[0, 50] / exploding.norms[0, 1]).item()
ratio_after = (factor * exploding.norms[0, 50] / (factor * exploding.norms[0, 1])).item()
assert abs(ratio_before - ratio_after) < 1e-9  # far vs near: unchanged by clipping

# %% [markdown]
# **On the command line:** `rnnkit gradflow` draws this comparison (`--spectral-radius 0.9
# 1.5` adds the rescaled RNNs), and `rnnkit gradflow RUN_DIR` measures a trained character
# model.
#
# Next: notebook 5, the LSTM's gates and what its cells learn.
