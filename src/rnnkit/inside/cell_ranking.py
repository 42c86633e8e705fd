"""Rank every cell of a trained model by how well its activation predicts a text feature.

binary feature (quotes, comment):  ROC-AUC of the activation as a score for the feature,
    folded to max(AUC, 1 − AUC) so that a cell that is low inside strings ranks as high
    as one that is high there (the sign is reported: + high inside, − low inside);
    0.5 is no information, 1.0 a perfect separation.
numeric feature (brackets, line-position, indent):  |Pearson correlation| between the
    activation and the feature, with its sign.
"""

import threading
from dataclasses import dataclass

import numpy as np
import torch

from rnnkit.errors import UsageError
from rnnkit.inside.features import BINARY


@dataclass
class CellScore:
    layer: int
    cell: int
    score: float  # AUC folded to >= 0.5, or |correlation|
    sign: int  # +1: the activation rises with the feature; -1: it falls


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """P(score of a random positive > score of a random negative), ties counting half
    (the Mann-Whitney U statistic, from average ranks)."""
    return float(auc_from_ranks(SortedRows(scores[None, :]), labels)[0])


class SortedRows:
    """Every row of (N, T) values sorted once: ``order[n, p]``, the column of row n's p-th
    smallest value, and ``ranks[n, p]``, its 1-based rank there (tied values share the mean
    of their ranks)."""

    def __init__(self, rows: np.ndarray) -> None:
        # torch's sort gives the values and their order in one multi-threaded pass (numpy's
        # argsort then a gather took twice as long); any order of ties will do.
        values, order = torch.from_numpy(np.ascontiguousarray(rows)).sort(dim=1)
        values, self.order = values.numpy(), order.numpy()
        steps = rows.shape[1]
        positions = np.arange(steps)
        starts = np.ones(rows.shape, dtype=bool)  # the first sorted position of each tie group
        starts[:, 1:] = values[:, 1:] != values[:, :-1]
        self.ranks = np.broadcast_to(positions + 1.0, rows.shape)  # without ties: position + 1
        tied = np.flatnonzero(~starts.all(axis=1))  # rows with ties (saturated cells, say)
        if tied.size == 0:
            return
        starts = starts[tied]
        ends = np.ones(starts.shape, dtype=bool)  # the last sorted position of each group
        ends[:, :-1] = starts[:, 1:]
        first = np.maximum.accumulate(np.where(starts, positions, 0), axis=1)
        last = np.minimum.accumulate(np.where(ends, positions, steps)[:, ::-1], axis=1)[:, ::-1]
        self.ranks = self.ranks.copy()
        self.ranks[tied] = (first + last) / 2 + 1


def auc_from_ranks(sorted_rows: SortedRows, labels: np.ndarray) -> np.ndarray:
    """The ROC-AUC of every row's scores (sorted once) for one labelling (T,) -> (N,)."""
    positives = labels > 0.5
    n_positive, n_negative = int(positives.sum()), int((~positives).sum())
    if n_positive == 0 or n_negative == 0:
        raise UsageError(
            "the feature is constant over this text (it never or always holds): pick a text "
            "where it both holds and does not, e.g. source code with strings for --feature quotes"
        )
    labelled = positives.astype(np.float64)[sorted_rows.order]  # (N, T) in sorted order
    rank_sums = np.einsum("np,np->n", labelled, sorted_rows.ranks)
    return (rank_sums - n_positive * (n_positive + 1) / 2) / (n_positive * n_negative)


def correlation(values: np.ndarray, feature: np.ndarray) -> float:
    centred = values - values.mean()
    return float(correlations(centred[None, :], np.sqrt((centred**2).sum()), feature)[0])


def correlations(centred: np.ndarray, norms: np.ndarray, feature: np.ndarray) -> np.ndarray:
    """Pearson's r of every row of centred values (N, T) (norms: each row's Euclidean norm)
    with feature (T,) -> (N,); 0 for a constant row."""
    if feature.std() == 0:
        raise UsageError("the feature is constant over this text: pick a text where it varies")
    feature = feature - feature.mean()
    denominator = norms * np.sqrt((feature**2).sum())
    numerator = centred @ feature
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)


class CellRanking:
    """Every cell of a model over one text, ready to be ranked by any feature: the ranks
    (for ROC-AUC) and the centred values (for correlation) are computed once, so ranking by
    the five features costs little more than by one."""

    def __init__(self, activations: np.ndarray) -> None:
        """activations (L, T, H)."""
        layers, steps, hidden = activations.shape
        self.hidden = hidden
        rows = activations.transpose(0, 2, 1).reshape(layers * hidden, steps)  # (L·H, T)
        # Ranks in the values' own precision (float16 widened to float32), correlations in
        # float64.
        self.rows = rows.astype(np.promote_types(rows.dtype, np.float32))
        self._ranks: SortedRows | None = None
        self._centred_and_norms: tuple[np.ndarray, np.ndarray] | None = None
        # The explorer answers requests on several threads with one ranking per model: the
        # first request to need the ranks or the centred rows makes them while the others wait,
        # and each is stored whole, so none reads a half-made one.
        self._making = threading.Lock()

    def _sorted_rows(self) -> SortedRows:
        with self._making:
            if self._ranks is None:
                self._ranks = SortedRows(self.rows)
            return self._ranks

    def _centred_rows(self) -> tuple[np.ndarray, np.ndarray]:
        with self._making:
            if self._centred_and_norms is None:
                rows = self.rows.astype(np.float64)
                centred = rows - rows.mean(axis=1, keepdims=True)
                self._centred_and_norms = centred, np.sqrt((centred**2).sum(axis=1))
            return self._centred_and_norms

    def rank(self, feature: np.ndarray, name: str) -> list[CellScore]:
        """feature (T,) -> every cell, best first."""
        if name in BINARY:
            auc = auc_from_ranks(self._sorted_rows(), feature)
            scores, signs = np.maximum(auc, 1 - auc), np.where(auc >= 0.5, 1, -1)
        else:
            r = correlations(*self._centred_rows(), feature)
            scores, signs = np.abs(r), np.where(r >= 0, 1, -1)
        order = np.argsort(-scores, kind="stable")
        return [
            CellScore(int(k) // self.hidden, int(k) % self.hidden, float(scores[k]), int(signs[k]))
            for k in order
        ]


def rank_cells(activations: np.ndarray, feature: np.ndarray, name: str) -> list[CellScore]:
    """activations (L, T, H), feature (T,) -> every cell, best first."""
    return CellRanking(activations).rank(feature, name)


def format_ranking(scores: list[CellScore], name: str, top: int) -> str:
    measure = "ROC-AUC" if name in BINARY else "|correlation|"
    lines = [f"{'rank':>4} {'layer':>5} {'cell':>5} {measure:>13} sign"]
    for rank, score in enumerate(scores[:top], start=1):
        sign = "+" if score.sign > 0 else "-"
        lines.append(f"{rank:>4} {score.layer:>5} {score.cell:>5} {score.score:>13.4f} {sign:>4}")
    return "\n".join(lines)
