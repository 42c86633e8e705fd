"""Many-to-many, encoder–decoder: English -> French (Tatoeba pairs of at most 5 words a side).

44,609 sentence pairs; an English sentence may have several French translations. The split
keeps every translation of an English sentence together: the CRC-32 of the lower-cased English
sentence modulo 40 puts 0-1 in test (~5%), 2 in dev (~2.5%), the rest in train. Training sees
each pair on its own; scoring accepts any reference translation of the sentence (exact match)
and computes BLEU (sacrebleu, 13a tokenisation) against all of them. Both sides are lower-cased
words and punctuation; words seen once in training are <unk>.
"""

import gzip
import zlib

from rnnkit.data.tokens import UNK, TokenVocabulary, words
from rnnkit.errors import UsageError
from rnnkit.tasks.base import Splits, asset
from rnnkit.tasks.encoder_decoder import EncoderDecoderTask


def read_pairs() -> Splits:
    groups: dict[str, list] = {}
    with gzip.open(asset("translate", "eng-fra.max5words.tsv.gz"), "rt", encoding="utf-8") as f:
        for line in f:
            english, french = line.rstrip("\n").split("\t")
            source, target = words(english), words(french)
            key = " ".join(source)
            if key not in groups:
                groups[key] = [source, []]
            if target not in groups[key][1]:
                groups[key][1].append(target)
    splits = Splits([], [], [])
    for key, (source, targets) in groups.items():
        bucket = zlib.crc32(key.encode("utf-8")) % 40
        if bucket < 2:
            splits.test.append((source, targets))
        elif bucket == 2:
            splits.dev.append((source, targets))
        else:
            splits.train += [(source, [target]) for target in targets]
    return splits


class Translate(EncoderDecoderTask):
    name = "translate"
    bleu = True
    max_output = 24

    def load_splits(self, config):
        return read_pairs()

    def vocabularies(self, train, config):
        return {
            "source": TokenVocabulary.build((s for s, _ in train), config.min_count),
            "target": TokenVocabulary.build((refs[0] for _, refs in train), config.min_count),
        }

    def source_length(self, example) -> int:
        return len(example[0])

    def parse(self, text, vocabularies, limit):
        tokens = words(text)
        if not tokens:
            raise UsageError("the sentence is empty: give an English sentence to translate")
        if len(tokens) > limit:
            raise UsageError(
                f"the sentence has {len(tokens)} words and marks; this model handles at most "
                f"{limit} (twice its longest training sentence): split it"
            )
        if all(i == UNK for i in vocabularies["source"].encode(tokens)):
            raise UsageError(
                f"every word of the sentence is unknown to the model ({', '.join(tokens[:10])});"
                " it would translate any such sentence the same way. Use common English words"
            )
        return tokens, [[]]


TASK = Translate()
