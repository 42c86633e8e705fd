"""The character-level language model: embedding -> recurrent layers -> linear head.

    x_t = E[c_t]                          embedding of the current character   (B, T, E)
    h_t = RNN/LSTM/GRU(x_t, h_{t-1})      num_layers of rnnkit's layers        (B, T, H)
    p(c_{t+1} | c_≤t) = softmax(W h_t + b)  the head                           (B, T, V)

Dropout (Zaremba et al. 2014) is applied only to non-recurrent connections: the embeddings, the
outputs between layers (inside the layer) and the last layer's output before the head;
weight_dropout drops out the recurrent weights W_hh instead (one mask per chunk, see
rnnkit.nn.layers), which regularises the recurrent connections too. With variational_dropout
each of these dropouts draws one mask per sequence and chunk, used at every step
(rnnkit.nn.dropout), instead of a new mask at each step. With
tie_weights the head reuses the embedding matrix (Press & Wolf 2017; needs E = H).
"""

from torch import Tensor, nn

from rnnkit.cells import Cell, cell_from_spec
from rnnkit.errors import UsageError
from rnnkit.nn.dropout import variational_dropout
from rnnkit.nn.layers import make_layer

State = Tensor | tuple[Tensor, ...]


class CharLM(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        cell: "str | Cell" = "lstm",
        embedding_size: int = 64,
        hidden_size: int = 512,
        num_layers: int = 1,
        dropout: float = 0.0,
        tie_weights: bool = False,
        weight_dropout: float = 0.0,
        variational_dropout: bool = False,
    ) -> None:
        super().__init__()
        if isinstance(cell, str):
            cell_from_spec(cell)  # an unknown name or a bad file: one clear UsageError
        if tie_weights and embedding_size != hidden_size:
            raise UsageError(
                f"--tie-weights needs embedding_size = hidden_size, got {embedding_size} and "
                f"{hidden_size}: set --embedding-size {hidden_size} or drop --tie-weights"
            )
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        between_layers = dropout if num_layers > 1 else 0.0
        self.rnn = make_layer(
            cell, embedding_size, hidden_size, num_layers, dropout=between_layers, batch_first=True
        )
        self.rnn.weight_dropout = weight_dropout
        self.rnn.variational_dropout = variational_dropout  # drop() reads it from here too
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, vocab_size)
        if tie_weights:
            self.head.weight = self.embedding.weight

    def forward(self, ids: Tensor, state: State | None = None, with_outputs: bool = False):
        """ids (B, T) -> logits (B, T, V) and the state after the last step; with_outputs
        adds the last layer's output before and after dropout, (B, T, H) each (for
        rnnkit.training.activation_penalty)."""
        x = self.drop(self.embedding(ids))  # (B, T, E)
        output, state = self.rnn(x, state)  # (B, T, H)
        dropped = self.drop(output)
        logits = self.head(dropped)  # (B, T, V)
        if with_outputs:
            return logits, state, output, dropped
        return logits, state

    def drop(self, x: Tensor) -> Tensor:
        """The dropout on the embeddings and on the head's input, x (B, T, F)."""
        if self.rnn.variational_dropout:
            return variational_dropout(x, self.dropout.p, self.training)
        return self.dropout(x)


def detach_state(state: State | None) -> State | None:
    """Cut the graph at a chunk border (see the training loop); keep the values."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)  # type: ignore[return-value]
    return state.detach()


def state_tensors(state: State | None) -> dict[str, Tensor]:
    """The carried state as named tensors, for a checkpoint."""
    if state is None:
        return {}
    if isinstance(state, tuple):
        return {f"state.{key}": s for key, s in zip(STATE_KEYS, state, strict=False)}
    return {"state.h": state}


STATE_KEYS = ("h", "c", *(str(k) for k in range(2, 16)))
"""The checkpoint's names of the carried states, in order: h, c (the LSTM's), then numbers."""


def state_from_tensors(tensors: dict[str, Tensor]) -> State | None:
    if "state.h" not in tensors:
        return None
    if "state.c" in tensors:
        found = [tensors[f"state.{key}"] for key in STATE_KEYS if f"state.{key}" in tensors]
        return tuple(found)
    return tensors["state.h"]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())  # a tied weight is listed once
