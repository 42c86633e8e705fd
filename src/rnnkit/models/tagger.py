"""Many-to-many, synchronous: a tagger with one output per input token.

    x_t = [Embed_word(w_t) ; Embed_suffix(s_t) ; Embed_shape(c_t)]   word + spelling features
    h_t = [h→_t ; h←_t] = biRNN(x_1..x_T)_t                          packed: padding never runs
    y_t = W h_t + b                                                  tag scores at every step

The spelling features carry the words the vocabulary lacks: an unknown word still has its
suffix ("-ing", "-ly") and its shape ("Xx" capitalised, "d" a number, "x-x" hyphenated). The
loss and the accuracy skip padding (ignore_index), so padding is never scored.
"""

import torch
from torch import Tensor, nn

from rnnkit.data.tokens import PAD
from rnnkit.models.encoder import SequenceEncoder


class Tagger(nn.Module):
    def __init__(
        self,
        feature_sizes: dict[str, tuple[int, int]],
        num_tags: int,
        hidden_size: int = 128,
        cell: str = "lstm",
        num_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.3,
    ) -> None:
        """feature_sizes: feature name -> (vocabulary size, embedding size), in input order."""
        super().__init__()
        self.features = list(feature_sizes)
        self.embeddings = nn.ModuleDict(
            {
                name: nn.Embedding(n, size, padding_idx=PAD)
                for name, (n, size) in feature_sizes.items()
            }
        )
        input_size = sum(size for _, size in feature_sizes.values())
        self.encoder = SequenceEncoder(
            input_size, hidden_size, cell, num_layers, bidirectional, dropout
        )
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(self.encoder.output_size, num_tags)

    def forward(self, features: Tensor, lengths: Tensor) -> Tensor:
        """features (B, T, F) ids in the order of `feature_sizes`, lengths (B,) -> (B, T, tags)."""
        vectors = torch.cat(
            [self.embeddings[name](features[..., i]) for i, name in enumerate(self.features)],
            dim=-1,
        )
        outputs, _ = self.encoder(self.dropout(vectors), lengths)
        return self.output(self.dropout(outputs))
