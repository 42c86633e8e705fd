"""A bidirectional word language model: the sentence encoder of the classifier, pre-trained.

    x_t = Embed(w_t)
    h→_t, h←_t = biRNN(x_1..x_T)          packed, as in the classifier (encoder.py)
    p(w_{t+1} | w_1..w_t)  = softmax(V→ h→_t + b→)      the forward direction reads the past
    p(w_{t-1} | w_t..w_T)  = softmax(V← h←_t + b←)      the backward direction reads the future

Each direction sees only its own side of the sentence (one layer: the two never mix before the
heads), so neither can copy the word it predicts: the ELMo-style objective. The embedding and
the encoder have the names and shapes of SentenceClassifier's, so a classifier starts from them
(`rnnkit task sentiment train --pretrained RUN`). Only real positions are scored (no padding).
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.data.tokens import PAD
from rnnkit.models.encoder import SequenceEncoder


class BidirectionalLM(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        embedding_size: int = 64,
        hidden_size: int = 64,
        cell: str = "lstm",
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=PAD)
        self.encoder = SequenceEncoder(embedding_size, hidden_size, cell, 1, True, 0.0)
        self.dropout = nn.Dropout(dropout)
        self.forward_head = nn.Linear(hidden_size, vocab_size)
        self.backward_head = nn.Linear(hidden_size, vocab_size)

    def forward(self, words: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """words (B, T) padded ids, lengths (B,) -> (forward logits (N→, V), their targets,
        backward logits (N←, V), their targets): one row per scored position."""
        outputs, _ = self.encoder(self.dropout(self.embedding(words)), lengths)
        outputs = self.dropout(outputs)
        size = self.encoder.hidden_size
        real = words != PAD
        ahead = real[:, :-1] & real[:, 1:]  # t and t+1 both words: h→_t predicts w_{t+1}
        forward = self.forward_head(outputs[:, :-1, :size][ahead])
        behind = real[:, 1:] & real[:, :-1]  # t and t-1 both words: h←_t predicts w_{t-1}
        backward = self.backward_head(outputs[:, 1:, size:][behind])
        return forward, words[:, 1:][ahead], backward, words[:, :-1][behind]

    def scored(self, words: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Both directions' logits (N→ + N←, V) and the words they predict (N→ + N←,)."""
        forward, ahead, backward, behind = self(words, lengths)
        return torch.cat([forward, backward]), torch.cat([ahead, behind])

    def loss(self, words: Tensor, lengths: Tensor, reduction: str = "mean") -> Tensor:
        """Cross-entropy over every scored position of both directions (nats per word)."""
        return F.cross_entropy(*self.scored(words, lengths), reduction=reduction)

    @torch.no_grad()
    def next_words(self, words: Tensor, count: int = 5) -> tuple[Tensor, Tensor]:
        """The `count` most likely words after a sentence (1, T): (probabilities, ids)."""
        lengths = torch.tensor([words.shape[1]])
        outputs, _ = self.encoder(self.embedding(words), lengths)
        last = outputs[0, -1, : self.encoder.hidden_size]
        return self.forward_head(last).softmax(-1).topk(count)
