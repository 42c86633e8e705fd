"""Attention alignment heat maps: which source position each output token looked at.

Rows are the output tokens (ending with </s>), columns the source positions; a cell's shade is
the attention weight α (each row sums to one). A strip image (captioning) is drawn above the
columns it belongs to.
"""

from pathlib import Path

import numpy as np


def draw_attention(source, target, weights, path: Path, title: str = "", image=None) -> None:
    """source: S column labels; target: T row labels; weights: (T, S); image: (H, S) or None."""
    # a Figure of its own, not pyplot: drawing a file never changes the backend of the
    # program that called it (a notebook keeps its inline plots)
    from matplotlib.figure import Figure

    weights = np.asarray(weights, dtype=float)
    rows, columns = weights.shape
    cell = max(0.32, 0.1 * max(len(str(s)) for s in source))  # room for word labels
    width = min(16.0, 2.5 + cell * columns)
    height = min(12.0, 1.5 + 0.32 * rows + (1.2 if image is not None else 0.0))
    if image is None:
        figure = Figure(figsize=(width, height), dpi=110)
        axis = figure.subplots()
    else:
        figure = Figure(figsize=(width, height), dpi=110)
        top, axis = figure.subplots(
            2, 1, sharex=True,
            gridspec_kw={"height_ratios": [np.asarray(image).shape[0], rows]},
        )  # fmt: skip
        top.imshow(np.asarray(image), cmap="gray_r", aspect="auto")
        top.set_yticks([])
    shown = axis.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    axis.set_xticks(range(columns), [str(s) for s in source], rotation=90 if columns > 12 else 0)
    axis.set_yticks(range(rows), [str(t) for t in target])
    axis.set_xlabel("source")
    axis.set_ylabel("output")
    figure.colorbar(shown, ax=axis, fraction=0.04, label="attention weight α")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
