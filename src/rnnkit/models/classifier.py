"""Many-to-one: a sentence classifier.

    x_t = Embed(w_t)                           one vector per word
    h→_T, h←_1 = biRNN(x_1..x_T)               packed: each direction stops at the real end
    y = W [h→_T ; h←_1] + b                    the final states of both directions -> classes

Dropout on the word vectors and on the final states is the only regularisation.
"""

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
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=PAD)
        self.encoder = SequenceEncoder(
            embedding_size, hidden_size, cell, num_layers, bidirectional, dropout
        )
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(self.encoder.output_size, num_classes)

    def forward(self, words: Tensor, lengths: Tensor) -> Tensor:
        """words (B, T) ids padded with <pad>, lengths (B,) -> logits (B, classes)."""
        _, final = self.encoder(self.dropout(self.embedding(words)), lengths)
        return self.output(self.dropout(self.encoder.last_layer_final(final)))
