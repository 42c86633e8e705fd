"""Many-to-one: a sentence classifier.

    x_t = [Embed(w_t) ; f_t]                   one vector per word, beside its fixed
                                               features f_t when there are any (a lexicon's)
    o_1..o_T, h→_T, h←_1 = biRNN(x_1..x_T)     packed: each direction stops at the real end
    s = [h→_T ; h←_1]                          pooling "final": the final states of both
    s = [h→_T ; h←_1 ; max_t o_t ; mean_t o_t] pooling "concat" (ULMFiT's concat pooling): also
                                               the largest and the mean value of each output
                                               unit over the sentence's real positions
    y = W s + b                                -> classes

Dropout on the word vectors and on s is the only regularisation.
"""

import torch
from torch import Tensor, nn

from rnnkit.data.tokens import PAD
from rnnkit.models.encoder import SequenceEncoder

POOLINGS = ("final", "concat")


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
        pooling: str = "final",
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, not {pooling!r}")
        self.pooling = pooling
        self.embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=PAD)
        self.word_features = word_features
        self.encoder = SequenceEncoder(
            embedding_size + word_features, hidden_size, cell, num_layers, bidirectional, dropout
        )
        self.dropout = nn.Dropout(dropout)
        pooled_size = self.encoder.output_size * (3 if pooling == "concat" else 1)
        self.output = nn.Linear(pooled_size, num_classes)

    def forward(self, words: Tensor, lengths: Tensor, features: Tensor | None = None) -> Tensor:
        """words (B, T) ids padded with <pad>, lengths (B,), features (B, T, word_features)
        when the model has them -> logits (B, classes)."""
        vectors = self.dropout(self.embedding(words))
        if self.word_features:
            if features is None or features.shape[-1] != self.word_features:
                raise ValueError(f"this classifier needs {self.word_features} features a word")
            vectors = torch.cat([vectors, features.to(vectors.dtype)], dim=-1)
        outputs, final = self.encoder(vectors, lengths)
        return self.output(self.dropout(self.pooled(outputs, final, lengths)))

    def pooled(self, outputs: Tensor, final: Tensor, lengths: Tensor) -> Tensor:
        """s: the encoder's outputs (B, T, D·H) and final states -> (B, D·H), or (B, 3·D·H)
        with concat pooling; padded positions count in neither the max nor the mean."""
        last = self.encoder.last_layer_final(final)
        if self.pooling == "final":
            return last
        real = torch.arange(outputs.shape[1], device=lengths.device) < lengths[:, None]
        real = real[..., None].to(outputs.device)  # (B, T, 1)
        largest = outputs.masked_fill(~real, float("-inf")).amax(dim=1)
        mean = outputs.masked_fill(~real, 0.0).sum(dim=1) / lengths[:, None].to(outputs)
        return torch.cat([last, largest, mean], dim=-1)
