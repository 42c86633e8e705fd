# %% [markdown]
# # 9. Attention (어텐션): translation models, their alignments, greedy against beam
#
# The encoder–decoder of notebook 2 squeezes the whole source sentence into one vector, the
# encoder's last state. Attention (Bahdanau et al., 2015) lets the decoder look back at *every*
# encoder state $\bar h_1 \dots \bar h_S$ at every output step: it scores each one against its
# own state $h_t$, turns the scores into weights with a softmax, and reads their weighted sum,
# the context vector (문맥 벡터):
#
# $$e_{t,s} = v^\top \tanh(W_1 h_t + W_2 \bar h_s), \qquad \alpha_{t,s} = \frac{\exp e_{t,s}}{\sum_{s'} \exp e_{t,s'}}, \qquad c_t = \sum_s \alpha_{t,s} \bar h_s$$
#
# The weights $\alpha_{t,s}$ say where the model looked to write output word $t$: drawn as a
# heat map they show the alignment between the two sentences.
#
# Then decoding: **greedy** search (탐욕 탐색) takes the most likely word at each step; **beam
# search** (빔 서치) keeps the $k$ most likely partial translations and extends each, so it can
# recover from a first word that looked best but leads nowhere.

# %%
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from rnnkit.data.tokens import BOS, EOS
from rnnkit.tasks import get_task
from rnnkit.tasks.runner import load_run
from rnnkit.tasks.training import train

# %% [markdown]
# ## A model that rewrites dates
# rnnkit's `dates` task translates dates written in many ways ("the 3rd of march 1994",
# "03/03/94", ...) into ISO 8601 ("1994-03-03"), character by character: a bidirectional LSTM
# encoder, an LSTM decoder with additive attention. It learns in 600 steps (about half a
# minute), and its alignments are clean.

# %%
dates = get_task("dates")
dates_run = Path("runs/course-dates")
shutil.rmtree(dates_run, ignore_errors=True)
config = dates.config(max_steps=600, seed=1)  # steps, not seconds: the same run anywhere
test = train(dates, config, dates_run, log=lambda *args: None)["test"]
print(f"exact match on the test dates: {test['exact_match']:.3f}")
assert test["exact_match"] > 0.95

# %% [markdown]
# ## Where the model looked
# `task.translate` returns the output characters and the attention weights, one row per output
# step (the last row is the step that wrote the end symbol `</s>`), one column per source
# character.


# %%
def attention_map(task, run, text, ax):
    model, _, config, vocabularies, _ = load_run(run, task, warn=lambda *args: None)
    example = task.parse(text, vocabularies, 60)
    output, weights = task.translate(model, example, vocabularies, config)
    rows = task.attention_rows(output, weights)
    columns = task.source_labels(example)
    ax.imshow(weights.numpy(), cmap="Greys", vmin=0, vmax=1)
    ax.set_xticks(range(len(columns)), columns, rotation=90 if len(columns) > 12 else 45)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_title(task.show(output), fontsize=10)
    return columns, output, weights


fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
source, output, weights = attention_map(dates, dates_run, "the 3rd of march 1994", axes[0])
attention_map(dates, dates_run, "saturday, july 4, 2026", axes[1])
plt.tight_layout()

# %%
# each row is a softmax over the source positions: non-negative, summing to 1
assert (weights >= 0).all() and torch.allclose(weights.sum(-1), torch.ones(len(weights)))
assert "".join(output) == "1994-03-03", output
# writing the year, the model looks at the year: most of each of the first four rows'
# weight lies on the source's last five characters (" 1994")
assert weights[:4, -5:].sum(-1).min() > 0.5, weights[:4]

# %% [markdown]
# ## English → French
# rnnkit's `translate` task: Tatoeba sentence pairs of up to five words, the same architecture
# over words. A real run trains for about ten minutes (`rnnkit task translate train`); here
# 450 steps (under a minute), with words seen fewer than three times replaced by `<unk>` to keep
# it small, so expect rough French. Its alignments are rougher too.

# %%
task = get_task("translate")
run = Path("runs/course-translate")
shutil.rmtree(run, ignore_errors=True)
config = task.config(max_steps=450, min_count=3, beam_width=5, seed=1)
test = train(task, config, run, log=lambda *args: None)["test"]
fig, ax = plt.subplots(figsize=(5, 4))
attention_map(task, run, "i am happy .", ax)
plt.tight_layout()

# %% [markdown]
# ## Greedy against beam
# Both searches score a translation by the model's own log-probability
# $\sum_t \log p(y_t \mid y_{<t}, x)$. Greedy commits to one word at a time; beam search
# (width 5) keeps five candidates. Below, both on 200 test sentences: how often beam search
# finds a translation the model itself rates as more likely, and the test BLEU (0-100,
# against the human translations) of each search.


# %%
@torch.no_grad()
def log_probability(model, source, tokens):
    """The model's log-probability of the target `tokens` (ids, </s> added) for one source."""
    state = model.start(*source)
    previous, total = torch.tensor([BOS]), 0.0
    for token in [*tokens, EOS]:
        logits, state, _ = model.decoder.step(previous, state)
        total += logits.log_softmax(-1)[0, token].item()
        previous = torch.tensor([token])
    return total


model, _, config, vocabularies, _ = load_run(run, task, warn=lambda *args: None)
examples = task.load_splits(config).test[:200]
scores = {"greedy": [], "beam": []}
for example in examples:
    source = task.source_batch([example[0]], vocabularies)
    state = model.start(*source)
    for search in scores:
        found, _ = task.decode(model, state, config, vocabularies, beam=search == "beam")
        scores[search].append(log_probability(model, source, found[0]))
mean = {search: sum(values) / len(values) for search, values in scores.items()}
better = sum(b > g + 1e-6 for g, b in zip(scores["greedy"], scores["beam"], strict=True))
print(f"mean log-probability: greedy {mean['greedy']:.3f}, beam {mean['beam']:.3f}")
print(f"beam found a more likely translation for {better} of {len(examples)} sentences")
print(f"test BLEU: greedy {test['bleu']:.1f}, beam {test['bleu_beam']:.1f}")

# %%
assert mean["beam"] > mean["greedy"], mean
assert better > 0

# %% [markdown]
# Beam search with length normalisation ranks finished candidates by log-probability divided
# by length (`--length-penalty`), so on an unnormalised score it may rarely pick a candidate
# below greedy's; on average it is above. A higher model score does not always mean a better
# translation: BLEU, which compares with human references, is the judge of that.
#
# **On the command line:** `rnnkit task translate train`, then
# `rnnkit task translate attention RUN --text "i am happy ."` draws the heat map, and
# `rnnkit explore RUN` shows it in the browser.
#
# Next: notebook 10, your own cell.
