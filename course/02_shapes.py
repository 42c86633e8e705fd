# %% [markdown]
# # 2. The five shapes of a sequence problem
#
# The notes draw five boxes-and-arrows pictures. Each is the same recurrent cell wired
# differently between inputs and outputs:
#
# | shape | example | here | rnnkit's real task |
# | --- | --- | --- | --- |
# | one-to-one (일대일) | image classification | no recurrence at all | — |
# | one-to-many (일대다) | image captioning | a number in, its countdown out | `rnnkit task caption` |
# | many-to-one (다대일) | sentiment classification (감성 분류) | bits in, "more ones?" out | `rnnkit task sentiment` |
# | many-to-many, synchronous (다대다) | part-of-speech tagging (품사 태깅) | each step tags the previous input | `rnnkit task pos` |
# | many-to-many, encoder–decoder (인코더–디코더) | machine translation (기계 번역) | reverse a sequence | `rnnkit task translate` |
#
# Each model below is a few lines around `rnnkit.GRU` or `rnnkit.LSTM`, trained for a few
# seconds, and each ends with an assertion that it learned its job.

# %%
import torch
from torch import nn

import rnnkit

F = nn.functional


def fit(model, make_batch, loss_fn, steps=400, lr=1e-2, seed=0):
    """Adam on fresh random batches; returns the last loss."""
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        inputs, targets = make_batch(64)
        loss = loss_fn(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return loss.item()


# %% [markdown]
# ## One-to-one: no sequence
# One input, one output: a feed-forward network. Nothing recurs, so nothing needs a hidden
# state. It is the box the other four grow from.

# %%
one_to_one = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 3))
assert one_to_one(torch.randn(5, 8)).shape == (5, 3)  # a batch of 5 inputs, 5 outputs

# %% [markdown]
# ## One-to-many: one input, a sequence out
# The input sets the initial hidden state $h_0$; the cell then runs on its own for $T$ steps,
# emitting one output per step (here each step is fed its step number; a captioning model
# feeds back its previous word). Task: given $n \in 0..9$, emit $n, n-1, \dots, n-4$
# (stopping at 0).


# %%
class OneToMany(nn.Module):
    def __init__(self, steps=5, hidden=64):
        super().__init__()
        self.steps = steps
        self.start = nn.Linear(10, hidden)  # the input becomes h_0
        self.rnn = rnnkit.GRU(steps, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 10)

    def forward(self, n):  # n: (B,) integers
        h0 = torch.tanh(self.start(F.one_hot(n, 10).float())).unsqueeze(0)
        clock = torch.eye(self.steps).expand(len(n), -1, -1)  # step t's input: t, one-hot
        out, _ = self.rnn(clock, h0)
        return self.head(out)  # (B, T, 10)


def countdown_batch(size):
    n = torch.randint(0, 10, (size,))
    return n, (n.unsqueeze(1) - torch.arange(5)).clamp(min=0)


def sequence_loss(logits, targets):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def accuracy(model, make_batch):
    torch.manual_seed(123)
    inputs, targets = make_batch(1000)
    with torch.no_grad():
        return (model(inputs).argmax(-1) == targets).float().mean().item()


one_to_many = OneToMany()
fit(one_to_many, countdown_batch, sequence_loss)
print("7 ->", one_to_many(torch.tensor([7])).argmax(-1).tolist())
assert accuracy(one_to_many, countdown_batch) > 0.99

# %% [markdown]
# ## Many-to-one: a sequence in, one answer out
# The cell reads the whole sequence; only the last hidden state $h_T$ goes to the output
# layer. Task: are there more ones than zeros among 15 random bits? (Sentiment
# classification is this shape: words in, one label out.)


# %%
class ManyToOne(nn.Module):
    def __init__(self, hidden=32):
        super().__init__()
        self.rnn = rnnkit.LSTM(1, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 2)

    def forward(self, bits):  # (B, T)
        _, (h_n, _) = self.rnn(bits.unsqueeze(-1).float())
        return self.head(h_n[-1])  # (B, 2): from h_T only


def majority_batch(size):
    bits = torch.randint(0, 2, (size, 15))
    return bits, (bits.sum(1) > 7).long()


many_to_one = ManyToOne()
fit(many_to_one, majority_batch, F.cross_entropy)
assert accuracy(many_to_one, majority_batch) > 0.95

# %% [markdown]
# ## Many-to-many, synchronous: one output per input
# Every hidden state $h_t$ goes to the output layer. Task: at each step, say the input of the
# step before (the first step answers 0). Part-of-speech tagging is this shape: one tag per
# word, and the tag depends on the words around it.


# %%
class Tagger(nn.Module):
    def __init__(self, hidden=32):
        super().__init__()
        self.embed = nn.Embedding(10, 16)
        self.rnn = rnnkit.GRU(16, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 10)

    def forward(self, tokens):
        out, _ = self.rnn(self.embed(tokens))
        return self.head(out)  # (B, T, 10): one per step


def previous_batch(size):
    tokens = torch.randint(0, 10, (size, 12))
    return tokens, F.pad(tokens[:, :-1], (1, 0))


tagger = Tagger()
fit(tagger, previous_batch, sequence_loss)
assert accuracy(tagger, previous_batch) > 0.99

# %% [markdown]
# ## Many-to-many, encoder–decoder: a sequence in, another sequence out
# An encoder reads the whole input into its final state (the context vector, 문맥 벡터); a
# decoder starts from it and writes the output, feeding back the previous output token (during
# training the *true* previous token: teacher forcing, notebook 7). Task: reverse 5 digits.
# Translation is this shape: the output's length and order differ from the input's.


# %%
class Seq2Seq(nn.Module):
    def __init__(self, hidden=128):
        super().__init__()
        self.embed = nn.Embedding(11, 32)  # 10 digits and a start symbol, 10
        self.encoder = rnnkit.GRU(32, hidden, batch_first=True)
        self.decoder = rnnkit.GRU(32, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 10)

    def forward(self, pair):
        source, target = pair
        _, context = self.encoder(self.embed(source))
        start = torch.full_like(target[:, :1], 10)
        shifted = torch.cat([start, target[:, :-1]], dim=1)  # teacher forcing
        out, _ = self.decoder(self.embed(shifted), context)
        return self.head(out)

    @torch.no_grad()
    def translate(self, source, length=5):
        _, h = self.encoder(self.embed(source))
        token = torch.full_like(source[:, :1], 10)
        written = []
        for _ in range(length):  # feed back its own output
            out, h = self.decoder(self.embed(token), h)
            token = self.head(out).argmax(-1)
            written.append(token)
        return torch.cat(written, dim=1)


def reverse_batch(size):
    source = torch.randint(0, 10, (size, 5))
    target = source.flip(1)
    return (source, target), target


seq2seq = Seq2Seq()
fit(seq2seq, reverse_batch, sequence_loss, steps=600)
torch.manual_seed(7)
(source, _), target = reverse_batch(500)
written = seq2seq.translate(source)
print(source[0].tolist(), "->", written[0].tolist())
exact = (written == target).all(1).float().mean().item()
exact

# %%
assert exact > 0.8, exact  # whole sequences right, decoding from its own outputs

# %% [markdown]
# Next: notebook 3, the character model: the many-to-many shape trained on text.
