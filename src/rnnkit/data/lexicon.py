"""A sentiment lexicon as word features: VADER's valence of each word (Hutto & Gilbert 2014).

VADER's lexicon rates 7,500 English words, emoticons and slang from -4 (most negative) to +4
(most positive), each the mean of ten human ratings. It ships inside the `vaderSentiment`
package (MIT licence), which rnnkit installs; only its word list is read, never its rules.

Each token becomes two numbers beside its learned word vector:

    f(w) = [ valence(w) / 4 ,  1 if w is rated else 0 ]          (0, 0) for unrated words

so a word the training sentences never had ("dreadful", "superb") still carries its polarity,
and the encoder learns what negation and contrast do to it from the labelled data.
"""

from collections.abc import Sequence
from functools import cache
from importlib import resources

import torch

from rnnkit.errors import UsageError

FEATURES = 2
"""Numbers per token: the scaled valence and whether the word is rated at all."""
MAX_VALENCE = 4.0


@cache
def valences() -> dict[str, float]:
    """Word -> valence in [-4, 4], from the lexicon file of the installed vaderSentiment."""
    try:
        text = resources.files("vaderSentiment").joinpath("vader_lexicon.txt").read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        raise UsageError(
            "the sentiment lexicon comes from the vaderSentiment package, which is not "
            "installed: pip install vaderSentiment (or train with --no-lexicon)"
        ) from None
    table = {}
    for line in text.splitlines():
        word, valence, *_ = line.split("\t")
        table[word] = float(valence)
    return table


def token_features(sentences: Sequence[Sequence[str]], length: int) -> torch.Tensor:
    """(B, length, FEATURES): each token's lexicon features; zeros past a sentence's end."""
    table = valences()
    rows = [
        [[table[t] / MAX_VALENCE, 1.0] if t in table else [0.0, 0.0] for t in tokens[:length]]
        + [[0.0, 0.0]] * (length - len(tokens[:length]))
        for tokens in sentences
    ]
    return torch.tensor(rows, dtype=torch.float32).reshape(len(sentences), length, FEATURES)
