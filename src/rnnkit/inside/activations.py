"""Every cell's activation at every character of a text, from a trained character model.

The text is read in windows of ``window`` characters with the state carried from one to the
next (as in training), each window through ``layer.trace`` (rnnkit.nn.trace). The value of a cell
at character t is its state after reading character t: tanh(c_t) (LSTM, ``value="cell"``, the
cell state squashed to (-1, 1) as the output gate sees it) or h_t (``value="hidden"``, any
cell type).
"""

from pathlib import Path

import torch

from rnnkit.errors import UsageError

VALUES = ("cell", "hidden")


def read_text(path: Path) -> str:
    if not path.is_file():
        raise UsageError(f"{path}: no such file. Give a text file with --text")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise UsageError(
            f"{path} is not valid UTF-8 (byte {error.start}); give a UTF-8 text file"
        ) from None


@torch.no_grad()
def activations(model, vocabulary, text: str, value: str = "cell", window: int = 1000):
    """-> (L, T, H) float32 numpy array: every layer's value at every character.

    Characters the vocabulary does not know are refused with their list (UsageError, from
    the vocabulary's encode).
    """
    if value not in VALUES:
        raise UsageError(f"--value must be one of {', '.join(VALUES)}, got {value!r}")
    if value == "cell" and "c" not in model.rnn.cell.states:
        raise UsageError(
            f"--value cell needs a cell with a cell state c_t (the LSTM's); this run is a "
            f"{model.rnn.kind}: use --value hidden"
        )
    if not text:
        raise UsageError("the text is empty: give a file with at least one character")
    if vocabulary.encoding != "utf-8":
        raise UsageError(
            "this run reads bytes (--encoding bytes); viz and cells show one value per "
            "character and need a run trained on UTF-8 characters"
        )
    ids = torch.as_tensor(vocabulary.encode(text).astype("int64"))
    pieces = []
    for trace in windowed_traces(model, ids, window):
        if value == "cell":
            pieces.append(torch.tanh(trace.cell[:, 0, :, 0]))  # (L, T, H)
        else:
            pieces.append(trace.hidden[:, 0, :, 0])
    return torch.cat(pieces, dim=1).float().numpy()


@torch.no_grad()
def windowed_traces(model, ids: torch.Tensor, window: int = 1000):
    """The character model's layer reading ``ids`` (T,) as one sequence, ``window`` ids at a
    time with the state carried: yields each window's ``layer.trace`` (records (L, D, T, B, ·),
    B = 1, in any layout)."""
    model.eval()
    layer = model.rnn
    state = None
    for start in range(0, len(ids), window):
        inputs = model.embedding(ids[start : start + window])  # (T, E): one sequence
        trace = layer.trace(inputs.unsqueeze(0 if layer.batch_first else 1), state)
        state = trace.state
        yield trace
