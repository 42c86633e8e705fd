"""The sentence encoder every task model shares: vectors per token -> a (bi)directional rnnkit
layer over a *packed* batch, so padding is never computed on and never leaks into a state.

    x_1..x_T (B, T, E), lengths (B,)
      -> pack (sorted by length inside torch's PackedSequence; no step runs on padding)
      -> rnnkit RNN / LSTM / GRU, `num_layers` deep, forward and backward directions
      -> outputs (B, T, D·H), zero on padding;  final (L·D, B, H) states at each sentence's end
"""

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit.cells import cell_from_spec
from rnnkit.errors import UsageError
from rnnkit.nn.layers import make_layer


class SequenceEncoder(nn.Module):
    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        cell: str = "lstm",
        num_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        try:
            cell_from_spec(cell)
        except UsageError as error:
            raise ValueError(str(error)) from None
        self.cell = cell
        self.directions = 2 if bidirectional else 1
        self.hidden_size = hidden_size
        self.output_size = self.directions * hidden_size
        self.rnn = make_layer(
            cell,
            input_size,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )

    def forward(self, vectors: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """vectors (B, T, E), lengths (B,) -> outputs (B, T, D·H), final hidden (L·D, B, H).

        For an LSTM the final *hidden* state h is returned (the cell state c stays inside).
        """
        packed = pack_padded_sequence(
            vectors, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        output, final = self.rnn(packed)
        outputs, _ = pad_packed_sequence(output, batch_first=True, total_length=vectors.shape[1])
        hidden = final[0] if isinstance(final, tuple) else final
        return outputs, hidden

    def last_layer_final(self, hidden: Tensor) -> Tensor:
        """The last layer's final state of each direction side by side: (B, D·H)."""
        return torch.cat(list(hidden[-self.directions :]), dim=-1)
