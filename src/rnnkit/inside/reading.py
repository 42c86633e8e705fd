"""A character model reading a text: every unit's value at every character, and what the model
expected next. What `rnnkit explore` shows, computed through ``layer.trace``.

For a text x_1..x_T (the state carried across windows of ``window`` characters, as in
training), after reading x_t:

    parts   "h": h_t of every layer;  "c": tanh(c_t) (LSTM; the cell state squashed to (-1, 1)
            as the output gate sees it);  each gate after its nonlinearity: i, f, g, o (LSTM),
            r, z, n (GRU).  Each (L, T, H).
    next    p(x_{t+1} | x_≤t) = softmax(W h_t + b): its 5 most likely symbols, and the rank of
            the symbol that really comes next (1 = the model's first guess).
    loss    −log p(x_t | x_<t) in nats: how surprising each character was (NaN for x_1,
            which nothing predicts).
"""

from dataclasses import dataclass, field

import numpy as np
import torch

from rnnkit.errors import UsageError
from rnnkit.inside.activations import windowed_traces
from rnnkit.inside.cell_ranking import CellRanking, CellScore
from rnnkit.inside.features import FEATURES, feature_values

TOP = 5  # the guesses shown for the next character


@dataclass
class Reading:
    text: str
    parts: dict[str, np.ndarray]  # part name -> (L, T, H): float32 for `value`, else float16
    top_ids: np.ndarray  # (T, TOP) the most likely next symbols, best first
    top_probabilities: np.ndarray  # (T, TOP)
    next_rank: np.ndarray  # (T,) rank of the real next symbol (0 after the last character)
    loss: np.ndarray  # (T,) nats; NaN for the first character
    value: str  # the part the rankings use: "c" for an LSTM, "h" otherwise
    _ranking: CellRanking | None = field(default=None, repr=False)

    @property
    def mean_loss(self) -> float:
        """Nats per character over the characters that have a prediction (NaN for one)."""
        known = self.loss[1:]
        return float(known.mean()) if known.size else float("nan")

    def unit(self, layer: int, index: int) -> dict[str, np.ndarray]:
        """Every part of one unit: name -> (T,) values."""
        layers, _, hidden = self.parts["h"].shape
        if not (0 <= layer < layers and 0 <= index < hidden):
            raise UsageError(
                f"unit {layer}:{index} is out of range: this model has layers 0-{layers - 1} "
                f"and units 0-{hidden - 1} per layer"
            )
        return {name: values[layer, :, index] for name, values in self.parts.items()}

    def meaning(self, top: int = 5) -> dict[str, list[CellScore]]:
        """For each feature of rnnkit.inside.features that varies over this text, the
        ``top`` units whose value (``self.value``) tracks it best (ROC-AUC or |r|)."""
        if self._ranking is None:
            self._ranking = CellRanking(self.parts[self.value])
        ranked = {}
        for name in FEATURES:
            feature = feature_values(self.text, name)
            if feature.std() > 0:
                ranked[name] = self._ranking.rank(feature, name)[:top]
        return ranked


def encode(vocabulary, text: str) -> torch.Tensor:
    if not text:
        raise UsageError("the text is empty: type or paste at least one character")
    if vocabulary.encoding != "utf-8":
        raise UsageError(
            "this run reads bytes (--encoding bytes); reading shows one value per character "
            "and needs a run trained on UTF-8 characters"
        )
    return torch.as_tensor(vocabulary.encode(text).astype("int64"))


@torch.no_grad()
def read(model, vocabulary, text: str, window: int = 1000) -> Reading:
    """Read ``text`` with a character model (rnnkit.models.charlm.CharLM)."""
    ids = encode(vocabulary, text)
    parts: dict[str, list[torch.Tensor]] = {}
    log_probabilities = []
    value = "c" if "c" in model.rnn.cell.states else "h"
    for trace in windowed_traces(model, ids, window):
        found = {"h": trace.hidden[:, 0, :, 0]}
        if trace.cell is not None:
            found["c"] = torch.tanh(trace.cell[:, 0, :, 0])
        found.update({name: gate[:, 0, :, 0] for name, gate in trace.gates.items()})
        for name, values in found.items():
            # float16 halves the memory of what is only shown; the part that units are ranked,
            # selected and matched by keeps float32, as `rnnkit cells` reads it
            parts.setdefault(name, []).append(values.float() if name == value else values.half())
        logits = model.head(trace.hidden[-1, 0, :, 0])  # (T, V)
        log_probabilities.append(torch.log_softmax(logits.float(), dim=-1))
    log_p = torch.cat(log_probabilities)  # (T, V): row t predicts x_{t+1}
    top = log_p.topk(min(TOP, log_p.shape[1]), dim=-1)
    following = ids[1:]
    real = log_p[:-1].gather(1, following[:, None]).squeeze(1)  # log p(x_{t+1} | x_≤t)
    next_rank = torch.zeros(len(ids), dtype=torch.int64)
    next_rank[:-1] = (log_p[:-1] > real[:, None]).sum(1) + 1
    loss = torch.full((len(ids),), float("nan"))
    loss[1:] = -real
    return Reading(
        text=text,
        parts={name: torch.cat(pieces, dim=1).numpy() for name, pieces in parts.items()},
        top_ids=top.indices.numpy(),
        top_probabilities=top.values.exp().numpy(),
        next_rank=next_rank.numpy(),
        loss=loss.numpy(),
        value=value,
    )
