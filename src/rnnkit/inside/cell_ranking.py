"""Rank every cell of a trained model by how well its activation predicts a text feature.

binary feature (quotes, comment):  ROC-AUC of the activation as a score for the feature,
    folded to max(AUC, 1 − AUC) so that a cell that is low inside strings ranks as high
    as one that is high there (the sign is reported: + high inside, − low inside);
    0.5 is no information, 1.0 a perfect separation.
numeric feature (brackets, line-position, indent):  |Pearson correlation| between the
    activation and the feature, with its sign.
"""

from dataclasses import dataclass

import numpy as np

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
    positives = labels > 0.5
    n_positive, n_negative = int(positives.sum()), int((~positives).sum())
    if n_positive == 0 or n_negative == 0:
        raise UsageError(
            "the feature is constant over this text (it never or always holds): pick a text "
            "where it both holds and does not, e.g. source code with strings for --feature quotes"
        )
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    # average ranks over ties
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(scores)]])
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2  # ranks are 1-based
    rank_sum = ranks[positives].sum()
    return float((rank_sum - n_positive * (n_positive + 1) / 2) / (n_positive * n_negative))


def correlation(values: np.ndarray, feature: np.ndarray) -> float:
    values = values - values.mean()
    feature = feature - feature.mean()
    denominator = np.sqrt((values**2).sum() * (feature**2).sum())
    if feature.std() == 0:
        raise UsageError("the feature is constant over this text: pick a text where it varies")
    return float((values * feature).sum() / denominator) if denominator > 0 else 0.0


def rank_cells(activations: np.ndarray, feature: np.ndarray, name: str) -> list[CellScore]:
    """activations (L, T, H), feature (T,) -> every cell, best first."""
    scores = []
    for layer in range(activations.shape[0]):
        for cell in range(activations.shape[2]):
            values = activations[layer, :, cell].astype(np.float64)
            if name in BINARY:
                auc = roc_auc(values, feature)
                scores.append(CellScore(layer, cell, max(auc, 1 - auc), 1 if auc >= 0.5 else -1))
            else:
                r = correlation(values, feature)
                scores.append(CellScore(layer, cell, abs(r), 1 if r >= 0 else -1))
    return sorted(scores, key=lambda s: -s.score)


def format_ranking(scores: list[CellScore], name: str, top: int) -> str:
    measure = "ROC-AUC" if name in BINARY else "|correlation|"
    lines = [f"{'rank':>4} {'layer':>5} {'cell':>5} {measure:>13} sign"]
    for rank, score in enumerate(scores[:top], start=1):
        sign = "+" if score.sign > 0 else "-"
        lines.append(f"{rank:>4} {score.layer:>5} {score.cell:>5} {score.score:>13.4f} {sign:>4}")
    return "\n".join(lines)
