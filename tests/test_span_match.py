"""LSTMVis's select and match (rnnkit.inside.span_match) on values made by hand."""

import numpy as np
import pytest

from rnnkit.errors import UsageError
from rnnkit.inside.span_match import find_matches, select_units

TEXT = "ab(cde)fg(hi)jk"


def values_of(*units) -> np.ndarray:
    """(1, T, H) from per-unit lists of T values."""
    return np.asarray(units, dtype=np.float32).T[None]


ON_IN_BRACKETS = [1 if 2 <= t <= 6 or 9 <= t <= 12 else 0 for t in range(len(TEXT))]
LOW_IN_BRACKETS = [-v for v in ON_IN_BRACKETS]
ALWAYS_ON = [1] * len(TEXT)
RAMP = [0, 0, 0.2, 0.6, 0.7, 0.8, 0.9, 0, 0, 0, 0, 0, 0, 0, 0]  # low on the first bracket


def test_select_finds_units_on_inside_and_off_just_around_with_their_sign():
    values = values_of(ON_IN_BRACKETS, LOW_IN_BRACKETS, ALWAYS_ON, RAMP)
    units = select_units(values, 2, 7, threshold=0.5)
    assert {(u.index, u.sign) for u in units} == {(0, 1), (1, -1)}  # not the always-on one
    assert all(u.inside == 1 and u.around == 0 for u in units)


def test_coverage_and_margins_let_a_ramping_unit_through():
    values = values_of(ON_IN_BRACKETS, LOW_IN_BRACKETS, ALWAYS_ON, RAMP)
    assert 3 not in {u.index for u in select_units(values, 2, 7, threshold=0.5)}
    ramp = {u.index for u in select_units(values, 2, 7, threshold=0.5, coverage=0.8)}
    assert 3 in ramp  # on at 4 of the 5 characters
    assert 2 in {u.index for u in select_units(values, 2, 7, 0.5, before=0, after=0)}


def test_match_finds_every_stretch_where_the_units_are_on_together_longest_first():
    values = values_of(ON_IN_BRACKETS, LOW_IN_BRACKETS, RAMP)
    matches = find_matches(values, TEXT, [(0, 0, 1), (0, 1, -1)], threshold=0.5)
    assert [(m.start, m.end, m.span) for m in matches] == [(2, 7, "(cde)"), (9, 13, "(hi)")]
    assert matches[0].before == "ab" and matches[0].after == "fg(hi)jk"
    both = find_matches(values, TEXT, [(0, 0, 1), (0, 2, 1)], threshold=0.5)
    assert [(m.start, m.end) for m in both] == [(3, 7)]
    either = find_matches(values, TEXT, [(0, 0, 1), (0, 2, 1)], threshold=0.5, need=1)
    assert [(m.start, m.end) for m in either] == [(2, 7), (9, 13)]


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda v: select_units(v, 5, 3, 0.5), "not a stretch"),
        (lambda v: select_units(v, 0, 99, 0.5), "not a stretch"),
        (lambda v: select_units(v, 0, 3, 0.5, coverage=0), "coverage must be"),
        (lambda v: find_matches(v, TEXT, [], 0.5), "no units"),
        (lambda v: find_matches(v, TEXT, [(0, 7, 1)], 0.5), "not a unit of this model"),
        (lambda v: find_matches(v, TEXT, [(0, 0, 2)], 0.5), "sign +1 or -1"),
        (lambda v: find_matches(v, TEXT, [(0, 0, 1)], 0.5, need=2), "need must be"),
    ],
)
def test_bad_selections_are_clear_errors(call, words):
    with pytest.raises(UsageError, match=words.replace("+", r"\+")):
        call(values_of(ON_IN_BRACKETS, RAMP))
