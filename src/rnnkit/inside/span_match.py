"""Select a stretch of text, find the units that are on exactly there, and find where else that
same set of units is on: the core move of LSTMVis (Strobelt et al. 2018), computed live.

A unit is *on* at character t when its signed value s·v_t ≥ θ (threshold θ; sign s = +1 for a
unit that rises over the stretch, −1 for one that falls: a unit low inside strings tracks them
as well as one that is high there). For a selected stretch [a, b):

    selected units:  s·v_t ≥ θ for every t in [a, b) (or for a share ``coverage`` of them),
                     and s·v_t < θ for every t in the margin [a − m₁, a) and [b, b + m₂) where
                     it exists (m₁ = ``before``, m₂ = ``after``, 1 each by default; 0 drops the
                     condition on that side);  ranked by the (covered) minimum over the
                     stretch − the maximum over the margin: how clearly the unit switches.
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
    inside: float  # the smallest signed value over the (covered part of the) stretch
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
    values: np.ndarray,
    start: int,
    end: int,
    threshold: float,
    coverage: float = 1.0,
    before: int = 1,
    after: int = 1,
    limit: int = 30,
) -> list[SelectedUnit]:
    """values (L, T, H): the units on over [start, end) and off in the margin, best first.

    coverage: the share of the stretch's characters a unit must be on at (1: every one, as
    LSTMVis; less lets through a unit that ramps up or dips once inside a long stretch).
    before, after: the margin's width on each side (0: no condition there)."""
    steps = values.shape[1]
    check_stretch(start, end, steps)
    if not 0 < coverage <= 1:
        raise UsageError(f"coverage must be in (0, 1], got {coverage}")
    if before < 0 or after < 0:
        raise UsageError("the margins before and after must be 0 or more characters")
    inside = values[:, start:end, :].astype(np.float32)  # (L, S, H)
    around_steps = [*range(max(0, start - before), start), *range(end, min(steps, end + after))]
    around = values[:, around_steps, :].astype(np.float32)
    needed = int(np.ceil(coverage * (end - start) - 1e-9))  # characters that must be on
    found = []
    for sign in (1, -1):
        signed = sign * inside
        # the needed-th highest signed value: at least `needed` characters are at or above it
        low_inside = np.sort(signed, axis=1)[:, end - start - needed, :]  # (L, H)
        high_around = np.full_like(low_inside, -np.inf)
        if around_steps:
            high_around = (sign * around).max(axis=1)
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
    """values (L, T, H) of ``text``; units: (layer, index, sign). The first ``limit`` runs of
    :func:`matching_runs`, each with its context."""
    return in_context(text, matching_runs(values, units, threshold, need)[:limit])


def in_context(text: str, runs: list[tuple[int, int]]) -> list[Match]:
    """Each run [start, end) of ``text`` with CONTEXT characters either side."""
    return [
        Match(a, b, text[max(0, a - CONTEXT) : a], text[a:b], text[b : b + CONTEXT])
        for a, b in runs
    ]


def matching_runs(
    values: np.ndarray, units: list[tuple[int, int, int]], threshold: float, need: int | None
) -> list[tuple[int, int]]:
    """Every maximal run [start, end) where at least ``need`` (default: all) of the units are
    on together, longest first (then in text order)."""
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
    runs = [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]
    return sorted(runs, key=lambda run: (run[0] - run[1], run[0]))
