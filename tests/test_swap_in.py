"""Programs written for torch.nn, unmodified, with rnnkit's classes swapped in for torch.nn's
(``torch.nn.LSTM = rnnkit.LSTM``): they run and give torch.nn's losses step for step."""

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnkit


class WordModel(nn.Module):
    """A language model written the way torch.nn's users write one: the recurrent layer is
    looked up on torch.nn by name, its hidden state built from a weight, repackaged between
    chunks, parameters flattened, gradients clipped."""

    def __init__(self, kind: str, vocabulary: int, size: int, layers: int):
        super().__init__()
        self.encoder = nn.Embedding(vocabulary, size)
        self.rnn = getattr(nn, kind)(size, size, layers, dropout=0.2)
        self.decoder = nn.Linear(size, vocabulary)
        self.kind, self.layers, self.size = kind, layers, size

    def init_hidden(self, batch):
        weight = next(self.parameters())
        zeros = weight.new_zeros(self.layers, batch, self.size)
        return (zeros, zeros.clone()) if self.kind == "LSTM" else zeros

    def forward(self, tokens, hidden):
        self.rnn.flatten_parameters()
        output, hidden = self.rnn(self.encoder(tokens), hidden)
        return self.decoder(output), hidden


def repackage(hidden):
    return hidden.detach() if isinstance(hidden, torch.Tensor) else tuple(map(repackage, hidden))


def train_word_model(kind: str) -> list[float]:
    torch.manual_seed(0)
    model = WordModel(kind, vocabulary=50, size=16, layers=2)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    data = torch.randint(0, 50, (41, 4))  # (time, batch)
    hidden, losses = model.init_hidden(4), []
    for start in range(0, 40, 8):
        inputs, targets = data[start : start + 8], data[start + 1 : start + 9]
        hidden = repackage(hidden)
        model.zero_grad()
        logits, hidden = model(inputs, hidden)
        loss = nn.functional.cross_entropy(logits.view(-1, 50), targets.reshape(-1))
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        optimizer.step()
        losses.append(loss.item())
    return losses


def train_packed_classifier(kind: str) -> list[float]:
    torch.manual_seed(0)
    embedding = nn.Embedding(30, 8)
    rnn = getattr(nn, kind)(8, 12, batch_first=True, bidirectional=True)
    head = nn.Linear(24, 2)
    parameters = [*embedding.parameters(), *rnn.parameters(), *head.parameters()]
    optimizer = torch.optim.Adam(parameters, lr=1e-2)
    tokens = torch.randint(1, 30, (6, 9))
    lengths = torch.tensor([9, 3, 7, 5, 9, 2])
    labels = torch.randint(0, 2, (6,))
    losses = []
    for _ in range(4):
        packed = pack_padded_sequence(embedding(tokens), lengths, batch_first=True,
                                      enforce_sorted=False)  # fmt: skip
        output, hidden = rnn(packed)
        padded, _ = pad_packed_sequence(output, batch_first=True)
        h_n = hidden[0] if kind == "LSTM" else hidden
        logits = head(torch.cat([h_n[0], h_n[1]], dim=1)) + 0 * padded.sum()
        loss = nn.functional.cross_entropy(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("program", [train_word_model, train_packed_classifier])
def test_a_torch_nn_program_gives_the_same_losses_with_rnnkit_swapped_in(
    program, kind, monkeypatch
):
    expected = program(kind)
    monkeypatch.setattr(nn, kind, getattr(rnnkit, kind))
    got = program(kind)
    assert got == pytest.approx(expected, rel=1e-4, abs=1e-5)
