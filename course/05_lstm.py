# %% [markdown]
# # 5. The LSTM (장단기 메모리): gates, the cell state, and a cell that tracks quotes
#
# The long short-term memory keeps a second state beside $h_t$: the cell state (셀 상태)
# $c_t$, the long memory, changed only by elementwise gates. torch.nn's gate order is
# $i, f, g, o$:
#
# $$i_t = \sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi}) \quad \text{input gate (입력 게이트)}$$
# $$f_t = \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf}) \quad \text{forget gate (망각 게이트)}$$
# $$g_t = \tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg}) \quad \text{candidate (후보 셀), } \tilde C_t$$
# $$o_t = \sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho}) \quad \text{output gate (출력 게이트)}$$
# $$c_t = f_t \odot c_{t-1} + i_t \odot g_t, \qquad h_t = o_t \odot \tanh(c_t)$$
#
# The forget gate decides what to keep of the old memory, the input gate what to write, the
# output gate what to show. Because $c_t$ is updated by addition, the gradient along it is
# multiplied by $f_t$ per step rather than by $W_{hh}$ (notebook 4).
#
# This notebook checks the equations against `rnnkit.LSTM` and `torch.nn.LSTM`, reads the gates
# with `.trace()`, then trains a character model on Python source code and finds a cell that
# switches on inside string literals, as Karpathy, Johnson & Fei-Fei (2015) found in their
# models of C code and novels.

# %%
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

import rnnkit
from rnnkit.inside.activations import activations
from rnnkit.inside.cell_ranking import rank_cells
from rnnkit.inside.features import feature_values
from rnnkit.training.config import TrainConfig
from rnnkit.training.language_model import train
from rnnkit.training.run import build_model, load_trained_model, run_corpus

torch.manual_seed(0)

# %% [markdown]
# ## The equations, from scratch


# %%
def lstm_step(x, h, c, W_ih, W_hh, b_ih, b_hh):
    i, f, g, o = (x @ W_ih.T + b_ih + h @ W_hh.T + b_hh).chunk(4, dim=-1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c = f * c + i * g  # the long memory: keep some, write some
    h = o * torch.tanh(c)  # the filtered view
    return h, c


lstm = rnnkit.LSTM(4, 6).double()
reference = torch.nn.LSTM(4, 6).double()
reference.load_state_dict(lstm.state_dict())
x = torch.randn(12, 3, 4, dtype=torch.float64)
h = c = torch.zeros(3, 6, dtype=torch.float64)
steps = []
for t in range(12):
    h, c = lstm_step(
        x[t], h, c, lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0
    )
    steps.append(h)
output, (h_n, c_n) = lstm(x)
assert torch.allclose(torch.stack(steps), output, atol=1e-12)
assert torch.allclose(c, c_n[0], atol=1e-12)
assert torch.allclose(output, reference(x)[0], atol=1e-12)

# %% [markdown]
# ## Every gate at every step: `.trace()`
# `lstm.trace(x)` runs the same forward pass and records $h_t$, $c_t$ and the four gates (each
# shaped layer, direction, time, batch, unit). The recorded values satisfy the equations.

# %%
trace = lstm.trace(x)
i, f, g, o = (trace.gates[name][0, 0] for name in "ifgo")  # (T, B, H)
c = trace.cell[0, 0]
c_before = torch.cat([torch.zeros_like(c[:1]), c[:-1]])
assert torch.allclose(c, f * c_before + i * g, atol=1e-12)
assert torch.allclose(trace.hidden[0, 0], o * torch.tanh(c), atol=1e-12)
print({name: round(trace.gates[name].mean().item(), 3) for name in "ifgo"}, "mean of each gate")

# %% [markdown]
# ## A model of Python source code
# `--data python-stdlib` trains on the source of Python's standard library, which every machine
# with Python has. One LSTM layer of 128 units, 800 steps: about a minute on two cores. A
# model this small and short-trained already has cells with a meaning.

# %%
run = Path("runs/course-python")
shutil.rmtree(run, ignore_errors=True)
config = TrainConfig(
    data="python-stdlib",
    hidden_size=128,
    max_steps=800,
    eval_interval=800,
    eval_chars=20_000,
    seed=1,
)
result = train(config, run, progress=False, log=lambda message: None)
print(f"validation {result.val_loss:.3f} nats per character after {result.steps} steps")

# %% [markdown]
# ## Which cell tracks quotes?
# On 20,000 characters of held-out source we take every cell's $\tanh(c_t)$ after each
# character, and a feature: 1 inside a string literal, else 0. Each cell is ranked by how well
# its value separates the two (ROC AUC: 1 is perfect, 0.5 is chance; a cell that is *low*
# inside strings counts too).

# %%
model, config, vocabulary, _ = load_trained_model(run, warn=lambda message: None)
corpus, split = run_corpus(run, config, vocabulary)
start, _ = split.val
text = vocabulary.decode(np.asarray(corpus.ids[start : start + 20_000]))
values = activations(model, vocabulary, text, value="cell")  # (layers, T, units)
ranking = {
    name: rank_cells(values, feature_values(text, name), name)[:3] for name in ("quotes", "comment")
}
for name, best in ranking.items():
    print(name, [(f"cell {s.cell}", round(s.score, 3)) for s in best])
quote_cell = ranking["quotes"][0]

# %% [markdown]
# Is that the training, or would some cell of any network separate strings this well by
# chance? The same ranking for the same model freshly initialised, before any training:

# %%
torch.manual_seed(0)
untrained = build_model(config, vocabulary).eval()
fresh_values = activations(untrained, vocabulary, text, value="cell")
fresh_best = rank_cells(fresh_values, feature_values(text, "quotes"), "quotes")[0]
print(f"best quotes cell: trained {quote_cell.score:.3f}, untrained {fresh_best.score:.3f}")

# %%
assert quote_cell.score >= 0.75, quote_cell  # a cell that separates "inside a string" well
assert quote_cell.score >= fresh_best.score + 0.1  # and training made it
assert ranking["comment"][0].score >= 0.75, ranking["comment"][0]

# %% [markdown]
# ## Seeing it
# The text coloured by that one cell: red where $\tanh(c_t)$ is high, blue where it is low (the
# sign flipped if the cell is low inside strings). A small model trained for a minute has
# mixed cells: this one is high inside strings and comments and in the indentation before
# code, low on the code itself. Sharper cells need a bigger model and longer training:
# `docs/inside.md` ranks a 512-unit model trained for ten minutes, whose best string cell
# reaches an AUC of 0.90 and best comment cell 0.94.


# %%
def show(text, values, lines=14, width=72):
    """Each character of `text` on a grid, its cell coloured by `values` (one per character)."""
    rows = text.split("\n")[:lines]
    grid = np.full((len(rows), width), np.nan)
    index = 0
    _, ax = plt.subplots(figsize=(12, 0.32 * len(rows)))
    for r, row in enumerate(rows):
        for col, char in enumerate(row[:width]):
            grid[r, col] = values[index + col]
            ax.text(col, r, char, ha="center", va="center", fontsize=8, family="monospace")
        index += len(row) + 1
    ax.imshow(grid, cmap="coolwarm", vmin=-1, vmax=1, aspect="auto")
    ax.axis("off")
    plt.tight_layout()


# a stretch with a docstring and quoted strings
where = text.find('"""', 2000)
begin = text.rfind("\n", 0, where) + 1
cell_values = values[quote_cell.layer, :, quote_cell.cell] * quote_cell.sign
show(text[begin:], cell_values[begin:])

# %% [markdown]
# **On the command line:** `rnnkit cells RUN --text FILE` ranks the cells for every feature,
# `rnnkit viz RUN --text FILE` writes this colouring as a web page, and `rnnkit explore RUN`
# lets you pick any unit and gate and watch it as you type.
#
# Next: notebook 6, the GRU.
