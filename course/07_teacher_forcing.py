# %% [markdown]
# # 7. Teacher forcing (교사 강요), exposure bias (노출 편향) and scheduled sampling
#
# A decoder writes its output one token at a time, and each step takes the previous token as
# input. During training, which previous token? Two choices:
#
# - **teacher forcing**: the *true* previous token from the reference. Every step trains on a
#   correct history, the steps are independent given the reference, training is fast and
#   stable;
# - **free running**: the model's *own* previous output, as it will be at test time, when
#   there is no reference.
#
# A model trained only with teacher forcing never saw its own mistakes during training. At test
# time one wrong token puts it in a history it was never trained on, and errors compound: the
# exposure bias. Scheduled sampling (Bengio et al., 2015) starts with teacher forcing and feeds
# the model its own outputs more and more often as training goes on.
#
# Here: one small decoder, trained three ways on the same budget, each scored two ways.

# %%
import matplotlib.pyplot as plt
import torch
from torch import nn

import rnnkit

F = nn.functional
LENGTH, DIGITS, START = 8, 10, 10

# %% [markdown]
# The task: read 8 digits $x_1 \dots x_8$ and write their running sum modulo 10,
# $y_t = x_1 + \dots + x_t \bmod 10$. The decoder reads $x_t$ and its previous output
# $y_{t-1}$ at each step, so it can learn the shortcut $y_t = y_{t-1} + x_t$: the previous
# token is a perfect cue when it is right, and a decoder that writes one wrong digit carries
# the error into every digit after it.


# %%
def batch(size, generator):
    source = torch.randint(0, DIGITS, (size, LENGTH), generator=generator)
    return source, source.cumsum(1) % DIGITS


class Decoder(nn.Module):
    def __init__(self, hidden=64):
        super().__init__()
        self.hidden = hidden
        self.previous = nn.Embedding(DIGITS + 1, 16)  # the digits and a start symbol
        self.digit = nn.Embedding(DIGITS, 16)
        self.cell = rnnkit.GRUCell(32, hidden)  # one step at a time
        self.head = nn.Linear(hidden, DIGITS)

    def forward(self, source, target=None, teacher_forcing=1.0, generator=None):
        """Logits (B, T, 10). With a target, each step's previous token is the true one with
        probability `teacher_forcing`, else the model's own output; without, always its own."""
        h = torch.zeros(len(source), self.hidden)
        previous = torch.full_like(source[:, 0], START)
        logits = []
        for t in range(LENGTH):
            step_input = torch.cat([self.previous(previous), self.digit(source[:, t])], dim=-1)
            h = self.cell(step_input, h)
            step = self.head(h)
            logits.append(step)
            own = step.argmax(-1)
            if target is None:
                previous = own
            else:
                use_truth = torch.rand(len(own), generator=generator) < teacher_forcing
                previous = torch.where(use_truth, target[:, t], own)
        return torch.stack(logits, 1)


# %% [markdown]
# Three ways to train, each for 60 steps (a short budget: the models stay imperfect, so their
# mistakes show), two seeds each: always teacher-forced (ratio 1), scheduled sampling (the ratio
# falls linearly from 1 to 0 over training), always free-running (ratio 0).


# %%
def train(schedule, seed, steps=60):
    torch.manual_seed(seed)
    model = Decoder()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(seed)
    for step in range(steps):
        source, target = batch(64, generator)
        logits = model(source, target, schedule(step / steps), generator)
        loss = F.cross_entropy(logits.reshape(-1, DIGITS), target.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


@torch.no_grad()
def score(model):
    """Per-position accuracy, teacher-forced and free-running, on 2,000 test sequences."""
    source, target = batch(2000, torch.Generator().manual_seed(999))
    forced = (model(source, target, 1.0).argmax(-1) == target).float().mean(0)
    free = (model(source).argmax(-1) == target).float().mean(0)
    return forced, free


schedules = {
    "teacher forcing": lambda progress: 1.0,
    "scheduled sampling": lambda progress: 1.0 - progress,
    "free running": lambda progress: 0.0,
}
scores = {name: [score(train(s, seed)) for seed in (1, 2)] for name, s in schedules.items()}
forced = {name: torch.stack([f for f, _ in rows]).mean(0) for name, rows in scores.items()}
free = {name: torch.stack([g for _, g in rows]).mean(0) for name, rows in scores.items()}
for name in schedules:
    print(
        f"{name:<20} teacher-forced {forced[name].mean():.3f}   free-running {free[name].mean():.3f}"
    )

# %%
fig, axes = plt.subplots(1, 3, figsize=(11, 3), sharey=True)
for ax, name in zip(axes, schedules, strict=True):
    ax.plot(range(1, LENGTH + 1), forced[name], "o-", label="scored teacher-forced")
    ax.plot(range(1, LENGTH + 1), free[name], "s-", label="scored free-running")
    ax.set_title(f"trained: {name}")
    ax.set_xlabel("output position")
axes[0].set_ylabel("token accuracy (mean of 2 seeds)")
axes[0].legend()
plt.tight_layout()

# %% [markdown]
# Scored with the reference as input, the teacher-forced model looks far better than it is.
# Scored as it is used, on its own outputs, it falls behind along the sequence: each error
# becomes the next step's input. That gap between the two scores is the exposure bias.
# Feeding the model its own outputs during training (scheduled sampling) narrows the gap: the
# model learns to lean on its own hidden state rather than on the previous token.
#
# Narrower is not the same as better. On this task the previous token is such a good cue that
# teacher forcing also reaches the best free-running accuracy in this budget, and always
# free-running training learns slowest of all: a model fed its own mostly wrong digits learns
# from noise, which is why scheduled sampling starts at ratio 1. On rnnkit's captioning task
# partial teacher forcing raised free-running exact match in 3 of 4 seeds
# (`docs/experiments/2026-11-29-tasks.md`): whether it helps is a measurement, not a rule.

# %%
gap = {name: (forced[name] - free[name]).mean().item() for name in schedules}
gap

# %%
assert gap["teacher forcing"] > 0.1, gap  # the teacher-forced score flatters the model
assert gap["scheduled sampling"] < gap["teacher forcing"], gap
# its own errors compound: at the last position it is far worse than when fed the truth
assert free["teacher forcing"][-1] < forced["teacher forcing"][-1] - 0.1
# always free-running from the start learns slowest
assert free["free running"].mean() < free["teacher forcing"].mean()

# %% [markdown]
# **For real:** rnnkit's encoder–decoder tasks take `--teacher-forcing RATIO` and
# `--scheduled-sampling` (`rnnkit task dates train --teacher-forcing 0.5 --scheduled-sampling`),
# and `bench/exposure_bias.py` measures the same two scores on the captioning task.
#
# Next: notebook 8, packed sequences and bidirectional layers.
