"""Select a stretch of text, find the units that are on exactly there, and find where else that
same set of units is on: the core move of LSTMVis (Strobelt et al. 2018), computed live.

A unit is *on* at character t when its signed value s·v_t ≥ θ (threshold θ; sign s = +1 for a
unit that rises over the stretch, −1 for one that falls: a unit low inside strings tracks them
as well as one that is high there). For a selected stretch [a, b):

    selected units:  s·v_t ≥ θ for every t in [a, b), and s·v_t < θ for every t in the margin
                     [a − m, a) and [b, b + m) where they exist;  ranked by
                     min over the stretch − max over the margin (how clearly the unit switches).
    matches:         the maximal runs of characters where at least ``need`` of the selected
                     units are on together (default: all of them), longest first.
"""

from dataclasses import dataclass

import numpy as np

from rnnkit.errors import UsageError

CONTEXT = 30  # characters shown either side of a match


@dataclass
class SelectedUnit:
    layer: int
    index: int
    sign: int  # +1 on when high, -1 on when low
    inside: float  # the smallest signed value over the stretch
    around: float  # the largest signed value in the margin (-inf without one)


@dataclass
class Match:
    start: int
    end: int  # exclusive
    before: str
    span: str
    after: str


def check_stretch(start: int, end: int, length: int) -> None:
    if not 0 <= start < end <= length:
        raise UsageError(
            f"the selection [{start}, {end}) is not a stretch of this {length}-character text: "
            "select at least one character of the text shown"
        )


def select_units(
    values: np.ndarray, start: int, end: int, threshold: float, margin: int = 1, limit: int = 30
) -> list[SelectedUnit]:
    """values (L, T, H): the units on over [start, end) and off in the margin, best first."""
    steps = values.shape[1]
    check_stretch(start, end, steps)
    inside = values[:, start:end, :].astype(np.float32)  # (L, S, H)
    around_steps = [*range(max(0, start - margin), start), *range(end, min(steps, end + margin))]
    around = values[:, around_steps, :].astype(np.float32)
    found = []
    for sign in (1, -1):
        low_inside = (sign * inside).min(axis=1)  # (L, H)
        high_around = (
            (sign * around).max(axis=1) if around_steps else np.full_like(low_inside, -np.inf)
        )
        chosen = (low_inside >= threshold) & (high_around < threshold)
        for layer, index in zip(*np.nonzero(chosen), strict=True):
            found.append(
                SelectedUnit(
                    int(layer),
                    int(index),
                    sign,
                    float(low_inside[layer, index]),
                    float(high_around[layer, index]),
                )
            )
    found.sort(key=lambda u: -(u.inside - max(u.around, -1.0)))
    return found[:limit]


def find_matches(
    values: np.ndarray,
    text: str,
    units: list[tuple[int, int, int]],
    threshold: float,
    need: int | None = None,
    limit: int = 20,
) -> list[Match]:
    """values (L, T, H) of ``text``; units: (layer, index, sign). The runs where at least
    ``need`` (default: all) of the units are on, longest first, each with its context."""
    if not units:
        raise UsageError("no units to match: select a stretch and pick units first")
    layers, steps, hidden = values.shape
    for layer, index, sign in units:
        if not (0 <= layer < layers and 0 <= index < hidden) or sign not in (1, -1):
            raise UsageError(
                f"unit {layer}:{index} (sign {sign}) is not a unit of this model: layers "
                f"0-{layers - 1}, units 0-{hidden - 1}, sign +1 or -1"
            )
    need = len(units) if need is None else need
    if not 1 <= need <= len(units):
        raise UsageError(f"need must be between 1 and the {len(units)} units, got {need}")
    on = np.zeros(steps, dtype=np.int32)
    for layer, index, sign in units:
        on += sign * values[layer, :, index].astype(np.float32) >= threshold
    together = np.concatenate([[False], on >= need, [False]])
    edges = np.flatnonzero(together[1:] != together[:-1])  # alternating starts and ends
    runs = sorted(zip(edges[::2], edges[1::2], strict=True), key=lambda r: (r[0] - r[1], r[0]))
    return [
        Match(
            int(a),
            int(b),
            text[max(0, a - CONTEXT) : a],
            text[a:b],
            text[b : b + CONTEXT],
        )
        for a, b in runs[:limit]
    ]
