# %% [markdown]
# # 1. The recurrence (순환): one cell, one shared W, applied at every step
#
# A recurrent neural network (순환 신경망, RNN) reads a sequence one element at a time. At time
# step (시점) $t$ it combines the input $x_t$ with its own previous hidden state (은닉 상태)
# $h_{t-1}$:
#
# $$h_t = \tanh(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}), \qquad h_0 = 0$$
#
# and an output layer (출력층) reads $y_t = W_{hy} h_t + b_y$. The same $W_{ih}$, $W_{hh}$
# and biases are used at *every* step: weight sharing (가중치 공유). That is what lets one
# small set of parameters read a sequence of any length.
#
# This notebook writes that loop in a few lines of torch, checks it against `rnnkit.RNN` and
# `torch.nn.RNN`, then trains the notes' "hello" example.

# %%
import matplotlib.pyplot as plt
import torch

import rnnkit

torch.manual_seed(0)

# %% [markdown]
# ## The loop, from scratch
# Shapes follow torch.nn: the input is `(T, B, input_size)` (time first), the weights are
# `W_ih: (H, input_size)` and `W_hh: (H, H)`.


# %%
def rnn_from_scratch(x, W_ih, W_hh, b_ih, b_hh, h0=None):
    """Every hidden state h_1..h_T of a one-layer tanh RNN, and the last one."""
    T, B, _ = x.shape
    h = torch.zeros(B, W_hh.shape[0], dtype=x.dtype) if h0 is None else h0
    outputs = []
    for t in range(T):  # the same W_ih, W_hh at every step
        h = torch.tanh(x[t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh)
        outputs.append(h)
    return torch.stack(outputs), h


# %% [markdown]
# ## The same numbers from rnnkit and torch.nn
# `rnnkit.RNN` takes torch.nn's arguments and has torch.nn's parameter names, so one state
# dict loads into both. We compare in float64 (double precision), where two correct
# implementations agree to round-off.

# %%
ours = rnnkit.RNN(input_size=4, hidden_size=3).double()
theirs = torch.nn.RNN(input_size=4, hidden_size=3).double()
theirs.load_state_dict(ours.state_dict())

x = torch.randn(6, 2, 4, dtype=torch.float64)  # T=6 steps, a batch of 2
mine, mine_last = rnn_from_scratch(
    x, ours.weight_ih_l0, ours.weight_hh_l0, ours.bias_ih_l0, ours.bias_hh_l0
)
out_rnnkit, h_rnnkit = ours(x)
out_torch, h_torch = theirs(x)

gaps = {
    "from scratch vs rnnkit": (mine - out_rnnkit).abs().max().item(),
    "rnnkit vs torch.nn": (out_rnnkit - out_torch).abs().max().item(),
}
gaps

# %%
assert gaps["from scratch vs rnnkit"] < 1e-6, gaps
assert gaps["rnnkit vs torch.nn"] < 1e-6, gaps
assert torch.allclose(mine_last, h_rnnkit[0]) and torch.allclose(h_rnnkit, h_torch)

# %% [markdown]
# The last output row is the final hidden state: `out[-1] == h_n[0]` for a one-layer,
# one-direction RNN. And $h_0 = 0$ when no state is given: passing zeros changes nothing.

# %%
assert torch.equal(out_rnnkit[-1], h_rnnkit[0])
assert torch.equal(ours(x, torch.zeros(1, 2, 3, dtype=torch.float64))[0], out_rnnkit)

# %% [markdown]
# ## The notes' example: "hello"
# The vocabulary is four characters, `h e l o`, each a one-hot vector (원-핫 벡터). Reading
# `h e l l`, the network must predict the next character at every step: `e l l o`. Note
# the two `l`s: after the first the answer is `l`, after the second it is `o`. The input is the
# same, so only the hidden state, which remembers what came before, can tell them apart.

# %%
vocabulary = ["h", "e", "l", "o"]
index = {c: i for i, c in enumerate(vocabulary)}
inputs = torch.eye(4)[[index[c] for c in "hell"]].unsqueeze(1)  # (T=4, B=1, 4)
targets = torch.tensor([index[c] for c in "ello"])

torch.manual_seed(1)
rnn = rnnkit.RNN(input_size=4, hidden_size=3)  # the notes' hidden size
head = torch.nn.Linear(3, 4)  # y_t = W_hy h_t + b_y
optimizer = torch.optim.Adam([*rnn.parameters(), *head.parameters()], lr=0.05)

losses = []
for _ in range(300):
    hidden, _ = rnn(inputs)
    logits = head(hidden[:, 0])  # (T, 4)
    loss = torch.nn.functional.cross_entropy(logits, targets)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    losses.append(loss.item())

plt.figure(figsize=(5, 2.5))
plt.plot(losses)
plt.xlabel("training step")
plt.ylabel("cross-entropy (nats)")
plt.title('"hell" -> "ello"')
plt.tight_layout()

# %%
with torch.no_grad():
    hidden, _ = rnn(inputs)
    predicted = "".join(vocabulary[i] for i in head(hidden[:, 0]).argmax(-1))
print("reads: h e l l\npredicts:", " ".join(predicted))
print("hidden states h_1..h_4:\n", hidden[:, 0].numpy().round(2))

# %%
assert predicted == "ello", predicted
assert losses[-1] < 0.1, losses[-1]
# the two l's are the same input, yet the hidden states after them differ
assert (hidden[2, 0] - hidden[3, 0]).abs().max() > 0.1

# %% [markdown]
# **What to try.** Set `hidden_size=1`: can one number remember enough? Replace `torch.tanh`
# in `rnn_from_scratch` with `torch.relu` and compare against `rnnkit.RNN(...,
# nonlinearity="relu")`.
#
# Next: notebook 2, the five shapes.
