"""Many-to-one: a sentence classifier.

    x_t = [Embed(w_t) ; f_t]                   one vector per word, beside its fixed
                                               features f_t when there are any (a lexicon's)
    h→_T, h←_1 = biRNN(x_1..x_T)               packed: each direction stops at the real end
    y = W [h→_T ; h←_1] + b                    the final states of both directions -> classes

Dropout on the word vectors and on the final states is the only regularisation.
"""

import torch
from torch import Tensor, nn

from rnnkit.data.tokens import PAD
from rnnkit.models.encoder import SequenceEncoder


class SentenceClassifier(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        embedding_size: int = 64,
        hidden_size: int = 64,
        cell: str = "lstm",
        num_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.5,
        word_features: int = 0,
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=PAD)
        self.word_features = word_features
        self.encoder = SequenceEncoder(
            embedding_size + word_features, hidden_size, cell, num_layers, bidirectional, dropout
        )
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(self.encoder.output_size, num_classes)

    def forward(self, words: Tensor, lengths: Tensor, features: Tensor | None = None) -> Tensor:
        """words (B, T) ids padded with <pad>, lengths (B,), features (B, T, word_features)
        when the model has them -> logits (B, classes)."""
        vectors = self.dropout(self.embedding(words))
        if self.word_features:
            if features is None or features.shape[-1] != self.word_features:
                raise ValueError(f"this classifier needs {self.word_features} features a word")
            vectors = torch.cat([vectors, features.to(vectors.dtype)], dim=-1)
        _, final = self.encoder(vectors, lengths)
        return self.output(self.dropout(self.encoder.last_layer_final(final)))
