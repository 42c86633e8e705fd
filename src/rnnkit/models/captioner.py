"""One-to-many: an image in, a sequence of words out.

image (B, 8, W) pixels 0..16 (a strip of 8×8 digits side by side)
  -> two 3×3 convolutions + ReLU                      (B, C, 8, W): local strokes
  -> each column's 8 rows flattened, a linear map     (B, W, F): one feature per column
  -> a bidirectional GRU along the columns            memory m_1..m_W (image regions in order)
summary = [h→_W ; h←_1] starts the decoder (the image's one input), which attends over the
columns while it writes the words "three one four" (decoder.py).
"""

import torch
from torch import Tensor, nn

from rnnkit.models.encoder import SequenceEncoder


class ImageEncoder(nn.Module):
    def __init__(
        self, channels: int = 32, hidden_size: int = 128, cell: str = "gru", dropout: float = 0.2
    ) -> None:
        super().__init__()
        self.convolutions = nn.ModuleList(
            [nn.Conv2d(1, channels, 3, padding=1), nn.Conv2d(channels, channels, 3, padding=1)]
        )
        self.columns = nn.Linear(channels * 8, hidden_size)
        self.rnn = SequenceEncoder(hidden_size, hidden_size, cell, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.memory_size = self.summary_size = self.rnn.output_size

    def forward(self, images: Tensor, widths: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """images (B, 8, W) padded with 0 on the right, widths (B,) -> memory, mask, summary."""
        mask = torch.arange(images.shape[2], device=images.device) < widths[:, None].to(
            images.device
        )  # (B, W) True on real columns
        features = images[:, None] / 16.0  # (B, 1, 8, W)
        for convolution in self.convolutions:
            # Zero the padding columns after each layer, as the image's border would be: a
            # strip's last digit then sees the same neighbours alone or beside a wider strip.
            features = torch.relu(convolution(features)) * mask[:, None, None, :]
        columns = features.permute(0, 3, 1, 2).flatten(2)  # (B, W, C·8)
        vectors = self.dropout(torch.relu(self.columns(columns)))
        memory, final = self.rnn(vectors, widths)
        return memory, mask, self.rnn.last_layer_final(final)
