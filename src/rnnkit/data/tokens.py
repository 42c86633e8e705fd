"""Token vocabularies (words, tags, characters) and padded batches for the task models.

Ids 0-3 are reserved in every vocabulary that has them: <pad> 0 (never scored, never attended
to), <unk> 1 (a token the training data did not have often enough), <s> 2 and </s> 3 (start and
end of a decoder's output). A vocabulary is plain JSON in the run directory.
"""

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from rnnkit.errors import UsageError

PAD, UNK, BOS, EOS = 0, 1, 2, 3
SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")

# A word, a number (with inner . or ,), a contraction's tail ('s, n't), or one other symbol.
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?|\d+(?:[.,]\d+)*|n't|'\w+|\S", re.UNICODE)


def words(text: str, lowercase: bool = True) -> list[str]:
    """Split a sentence into words and punctuation marks (the tokenizer of every word task)."""
    return _WORD.findall(text.lower() if lowercase else text)


@dataclass(frozen=True)
class TokenVocabulary:
    """Tokens in id order; `specials` of them (from SPECIALS) come first."""

    tokens: tuple[str, ...]
    specials: int = 4

    @classmethod
    def build(
        cls, sequences: Iterable[Sequence[str]], min_count: int = 1, specials: int = 4
    ) -> "TokenVocabulary":
        """Every token seen at least `min_count` times, most frequent first (ties by name)."""
        counts = Counter(token for sequence in sequences for token in sequence)
        kept = sorted(
            (t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t)
        )
        reserved = SPECIALS[:specials]
        return cls(tuple(reserved) + tuple(t for t in kept if t not in reserved), specials)

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self._index

    @property
    def _index(self) -> dict[str, int]:
        index = self.__dict__.get("_cached_index")
        if index is None:
            index = {t: i for i, t in enumerate(self.tokens)}
            object.__setattr__(self, "_cached_index", index)
        return index

    def id(self, token: str) -> int:
        if self.specials < 2:
            return self._index[token]
        return self._index.get(token, UNK)

    def encode(self, tokens: Sequence[str]) -> list[int]:
        return [self.id(t) for t in tokens]

    def decode(self, ids: Iterable[int], stop_at_end: bool = True) -> list[str]:
        """Tokens of `ids`, leaving out <pad> and <s> and stopping at </s>."""
        out = []
        for i in ids:
            if stop_at_end and self.specials > EOS and i == EOS:
                break
            if i >= self.specials or i == UNK:
                out.append(self.tokens[i])
        return out

    def unknown(self, tokens: Sequence[str]) -> list[str]:
        return [t for t in tokens if t not in self._index]

    def to_json(self) -> dict:
        return {"tokens": list(self.tokens), "specials": self.specials}

    @classmethod
    def from_json(cls, document: dict) -> "TokenVocabulary":
        tokens, specials = document["tokens"], document["specials"]
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise TypeError("tokens should be a list of strings")
        if not isinstance(specials, int) or isinstance(specials, bool):
            raise TypeError(f"specials should be an integer, got {type(specials).__name__}")
        return cls(tuple(tokens), specials)


def pad(sequences: Sequence[Sequence[int]], value: int = PAD) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T) LongTensor padded with `value`, and the (B,) lengths (each at least 1)."""
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    if (lengths == 0).any():
        raise UsageError("an empty sequence cannot be batched: every sentence needs a token")
    padded = torch.full((len(sequences), int(lengths.max())), value, dtype=torch.long)
    for row, sequence in enumerate(sequences):
        padded[row, : len(sequence)] = torch.as_tensor(sequence, dtype=torch.long)
    return padded, lengths


def lengths_mask(lengths: torch.Tensor, width: int) -> torch.Tensor:
    """(B, width) bool: True at real positions, False on padding."""
    return torch.arange(width, device=lengths.device)[None, :] < lengths[:, None]
