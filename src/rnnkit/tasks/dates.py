"""Many-to-many, encoder–decoder, on generated data: dates as people write them -> ISO 8601.

    "3rd of March 2021" -> "2021-03-03"      "Wed, Mar 3, 2021" -> "2021-03-03"
    "03.03.2021" -> "2021-03-03"             "march 3rd 2021" -> "2021-03-03"

Characters in, characters out: the attention map shows the day, month and year being copied
from where they stand in the input. Dates between 1900-01-01 and 2099-12-31 in 13 formats
(written below) are generated from a fixed seed, so the split is the same for every run:
20,000 train, 1,000 dev, 2,000 test inputs, no input string in two splits. Slash formats are
left out on purpose: "03/04/2021" is March 4th in the US and April 3rd in Europe.
"""

import datetime
import random

from rnnkit.data.tokens import TokenVocabulary
from rnnkit.errors import UsageError
from rnnkit.tasks.base import Splits
from rnnkit.tasks.encoder_decoder import EncoderDecoderTask

DATA_SEED = 2021
SIZES = {"train": 20_000, "dev": 1_000, "test": 2_000}
FIRST, LAST = datetime.date(1900, 1, 1), datetime.date(2099, 12, 31)


def ordinal(day: int) -> str:
    ending = "th" if 11 <= day <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{ending}"


def written(date: datetime.date, style: int) -> str:
    """The date in format number `style` (0-12)."""
    d, y = date.day, date.year
    month, mon = date.strftime("%B"), date.strftime("%b")
    weekday, wd = date.strftime("%A"), date.strftime("%a")
    return [
        f"{ordinal(d)} of {month} {y}",
        f"{d} {month} {y}",
        f"{month} {d}, {y}",
        f"{month} {ordinal(d)}, {y}",
        f"{weekday}, {month} {d}, {y}",
        f"{d} {mon} {y}",
        f"{mon} {d} {y}",
        f"{d:02d}.{date.month:02d}.{y}",
        f"{wd} {d} {mon} {y}",
        f"the {ordinal(d)} of {month.lower()}, {y}",
        f"{month.lower()} {ordinal(d)} {y}",
        f"{weekday} the {ordinal(d)} of {month} {y}",
        f"{y}, {month} {d}",
    ][style]


STYLES = 13


def generate() -> Splits:
    rng = random.Random(DATA_SEED)
    span = (LAST - FIRST).days
    seen: set[str] = set()
    parts = {}
    for name, size in SIZES.items():
        examples = []
        while len(examples) < size:
            date = FIRST + datetime.timedelta(days=rng.randrange(span + 1))
            text = written(date, rng.randrange(STYLES))
            if text in seen:
                continue
            seen.add(text)
            examples.append((list(text), [list(date.isoformat())]))
        parts[name] = examples
    return Splits(parts["train"], parts["dev"], parts["test"])


class Dates(EncoderDecoderTask):
    name = "dates"
    max_output = 16

    def load_splits(self, config):
        return generate()

    def vocabularies(self, train, config):
        return {
            "source": TokenVocabulary.build(s for s, _ in train),
            "target": TokenVocabulary.build(refs[0] for _, refs in train),
        }

    def source_length(self, example) -> int:
        return len(example[0])

    def show(self, tokens):
        return "".join(tokens)

    def parse(self, text, vocabularies, limit):
        text = text.strip()
        if not text:
            raise UsageError("the date is empty: give a date such as '3rd of March 2021'")
        if len(text) > limit:
            raise UsageError(
                f"the text has {len(text)} characters; this model handles at most {limit} "
                "(twice its longest training date)"
            )
        unknown = sorted(set(vocabularies["source"].unknown(list(text))))
        if unknown:
            raise UsageError(
                f"characters the model never saw: {' '.join(map(repr, unknown))}; write the "
                "date with English month and day names, digits, spaces, commas and dots"
            )
        return list(text), [[]]


TASK = Dates()
