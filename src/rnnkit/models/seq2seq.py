"""Many-to-many, encoder–decoder: the decoder starts after the input ends.

    memory m_1..m_S = biRNN(Embed(x_1..x_S))        packed; m_j = [h→_j ; h←_j]
    summary = [h→_S ; h←_1]                         the final states of both directions
    y_1..y_T = Decoder(summary, memory)             decoder.py: attention, teacher forcing

The same EncoderDecoder serves translation (words), dates (characters) and, with the image
encoder of captioner.py in place of the token encoder, captioning.
"""

from torch import Tensor, nn

from rnnkit.data.tokens import PAD, lengths_mask
from rnnkit.models.decoder import Decoder, DecoderState
from rnnkit.models.encoder import SequenceEncoder


class TokenEncoder(nn.Module):
    """Tokens -> (memory (B, S, D·H), mask (B, S), summary (B, D·H))."""

    def __init__(
        self,
        vocab_size: int,
        embedding_size: int,
        hidden_size: int,
        cell: str = "gru",
        num_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=PAD)
        self.rnn = SequenceEncoder(
            embedding_size, hidden_size, cell, num_layers, bidirectional, dropout
        )
        self.dropout = nn.Dropout(dropout)
        self.memory_size = self.summary_size = self.rnn.output_size

    def forward(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        memory, final = self.rnn(self.dropout(self.embedding(tokens)), lengths)
        mask = lengths_mask(lengths.to(tokens.device), tokens.shape[1])
        return memory, mask, self.rnn.last_layer_final(final)


class EncoderDecoder(nn.Module):
    def __init__(self, encoder: nn.Module, decoder: Decoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def start(self, *source) -> DecoderState:
        """Encode a source batch; returns the decoder's first state."""
        return self.decoder.start(*self.encoder(*source))

    def forward(self, source: tuple, inputs: Tensor, teacher_forcing=1.0, generator=None):
        """Logits (B, T, V) for decoder inputs (B, T) (<s> + the reference shifted right)."""
        return self.decoder(self.start(*source), inputs, teacher_forcing, generator)
