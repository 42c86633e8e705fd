# %% [markdown]
# # 3. The character model (문자 수준 언어 모델)
#
# A character-level language model reads text one character at a time and, at every step,
# predicts the next one: the many-to-many shape of notebook 2 with the target sequence the
# input shifted by one. Its output layer gives scores (logits) $z$ over the vocabulary, a
# softmax turns them into probabilities, and training minimises the cross-entropy
# (교차 엔트로피) $-\log p(\text{next character})$, in nats per character.
#
# To write new text we sample (샘플링): draw a character from $p$, feed it back as the next
# input, repeat. The temperature (온도) $\tau$ reshapes $p$ first:
# $p_i \propto \exp(z_i / \tau)$. Low $\tau$ sharpens it towards the most likely character,
# high $\tau$ flattens it.
#
# Here we train rnnkit's character model on Tiny Shakespeare for about a minute, sample from
# it at three temperatures and check what the notes say about $h_0$.

# %%
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from rnnkit.generation.sampling import generate
from rnnkit.training.config import TrainConfig
from rnnkit.training.language_model import train
from rnnkit.training.run import load_trained_model, validation_ids

# %% [markdown]
# ## Train (about a minute on two cores)
# `rnnkit train` on the command line does the same; here we call its Python function. One
# LSTM layer of 128 units, 800 steps of 32 sequences (batch and sequence length are the
# defaults), the validation loss measured every 200 steps on 20,000 characters of the last
# tenth of the text (held out: never trained on).

# %%
run = Path("runs/course-char")
shutil.rmtree(run, ignore_errors=True)
config = TrainConfig(
    hidden_size=128, num_layers=1, max_steps=800, eval_interval=200, eval_chars=20_000, seed=1
)
result = train(config, run, progress=False, log=lambda message: None)
print(f"{result.steps} steps in {result.train_seconds:.0f} s, validation {result.val_loss:.3f}")

# %%
metrics = np.genfromtxt(run / "metrics.csv", delimiter=",", names=True)
plt.figure(figsize=(6, 3))
plt.plot(metrics["step"], metrics["train_loss"], label="training batch", alpha=0.6)
evaluated = ~np.isnan(metrics["val_loss"])
plt.plot(metrics["step"][evaluated], metrics["val_loss"][evaluated], "o-", label="validation")
plt.xlabel("step")
plt.ylabel("nats per character")
plt.legend()
plt.tight_layout()

# %% [markdown]
# How good is that? A model that ignored the context and only knew how often each character
# occurs (a unigram model) would score the entropy of the character frequencies. The LSTM
# should be far below it: it has learned which characters follow which.

# %%
model, config, vocabulary, _ = load_trained_model(run, warn=lambda message: None)
model.eval()
ids = np.asarray(validation_ids(run, config, vocabulary))
counts = np.bincount(ids, minlength=len(vocabulary)).astype(float)
frequencies = counts[counts > 0] / counts.sum()
unigram = float(-(frequencies * np.log(frequencies)).sum())
print(f"unigram entropy {unigram:.3f}, LSTM {result.val_loss:.3f} nats per character")
assert result.val_loss < unigram - 1.0, (result.val_loss, unigram)

# %% [markdown]
# ## Temperature, from scratch
# Dividing the logits by $\tau$ before the softmax:

# %%
logits = torch.tensor([2.0, 1.0, 0.5, -1.0])
for tau in (0.1, 0.5, 1.0, 2.0):
    p = torch.softmax(logits / tau, dim=0)
    entropy = -(p * p.log()).sum().item()
    print(f"tau={tau:<4} p={p.numpy().round(3)}  entropy {entropy:.2f}")
entropies = [
    -(torch.softmax(logits / t, 0) * torch.softmax(logits / t, 0).log()).sum().item()
    for t in (0.1, 0.5, 1.0, 2.0)
]
assert entropies == sorted(entropies)  # higher temperature, flatter distribution
assert torch.softmax(logits / 0.01, 0).argmax() == logits.argmax()  # tau -> 0: the argmax

# %% [markdown]
# ## Sampling at three temperatures
# The same model and seed; only $\tau$ changes. We also score each sample by the model's own
# mean log-probability per character at $\tau = 1$: how typical the model finds the text.


# %%
def mean_log_probability(text: str) -> float:
    encoded = torch.as_tensor(vocabulary.encode(text).astype("int64")).unsqueeze(0)
    with torch.no_grad():
        logits, _ = model(encoded[:, :-1])
    picked = logits.log_softmax(-1).gather(-1, encoded[:, 1:].unsqueeze(-1))
    return picked.mean().item()


prime = vocabulary.encode("ROMEO:").tolist()
typical = {}
for tau in (0.5, 1.0, 1.5):
    text = "ROMEO:" + vocabulary.decode(list(generate(model, prime, 300, temperature=tau, seed=3)))
    typical[tau] = mean_log_probability(text)
    print(f"--- temperature {tau} (mean log-probability {typical[tau]:.2f}) ---\n{text}\n")

# %%
assert typical[0.5] > typical[1.0] > typical[1.5], typical

# %% [markdown]
# ## $h_0 = 0$
# Every sequence starts from a hidden state (and, for the LSTM, a cell state) of zeros unless
# one is given: passing zeros explicitly changes nothing. So the model's first prediction
# depends on the first character alone; the context builds up from there.

# %%
text = torch.as_tensor(vocabulary.encode("To be, or not to be").astype("int64")).unsqueeze(0)
zeros = torch.zeros(1, 1, model.rnn.hidden_size)  # (layers, batch, units)
with torch.no_grad():
    implicit, _ = model(text)
    explicit, _ = model(text, (zeros, zeros))  # (h_0, c_0) for an LSTM
    other_start, _ = model(torch.cat([text[:, :1], text[:, 5:]], dim=1))
assert torch.equal(implicit, explicit)
# the first step sees only "T": the same prediction whatever follows it
assert torch.allclose(implicit[0, 0], other_start[0, 0])
print(
    "after 'T' the model expects:",
    [vocabulary.decode([int(i)]) for i in implicit[0, 0].topk(5).indices],
)

# %% [markdown]
# **What to try.** Train for longer (`max_steps=5000`) and watch the samples learn words,
# then names, then the play's layout. On the command line: `rnnkit train --time-budget 2`,
# then `rnnkit sample RUN --temperature 0.7`.
#
# Next: notebook 4, backpropagation through time and why gradients vanish.
