"""Many-to-many, synchronous: a part-of-speech tag for every word (UD English EWT, UPOS).

The official train / dev / test split of Universal Dependencies English EWT 2.16 (12,544 /
2,001 / 2,077 sentences; multiword tokens such as "don't" are already split into "do" "n't").

Unknown words: a word is an input feature in three ways (models/tagger.py): the lower-cased
word itself, its last three letters, and its shape (capitals, digits, punctuation). Words seen
only once in training are <unk> as words, so the <unk> vector is learned on rare words, and an
unknown word at test time is tagged from its suffix, its shape and its context. "Unknown" in
the metrics means a word (lower-cased) that does not occur in the training split at all.
Baseline: each word's most frequent training tag (by exact form, then lower-cased); an unknown
word gets the most frequent tag overall.
"""

import gzip
import re
from collections import Counter, defaultdict

import torch
import torch.nn.functional as F

from rnnkit.data.tokens import PAD, TokenVocabulary
from rnnkit.errors import UsageError
from rnnkit.models.tagger import Tagger
from rnnkit.tasks.base import Splits, Task, asset, shuffled

FEATURES = ("words", "suffixes", "shapes")
# The 17 universal part-of-speech tags.
UPOS = "ADJ ADP ADV AUX CCONJ DET INTJ NOUN NUM PART PRON PROPN PUNCT SCONJ SYM VERB X".split()  # noqa: SIM905
# Clitics split the way UD does ("don't" -> "do n't", "I'm" -> "I 'm"), numbers and
# abbreviations kept whole, any other symbol alone.
_TOKEN = re.compile(r"\w+(?=n't\b)|n't\b|'\w+|\w+(?:[-.']\w+)*|\S")


def read_split(part: str) -> list[tuple[list[str], list[str]]]:
    sentences, forms, tags = [], [], []
    with gzip.open(asset("pos", f"en_ewt-ud-{part}.tsv.gz"), "rt", encoding="utf-8") as file:
        for line in file:
            line = line.rstrip("\n")
            if line.startswith("#") and "\t" not in line:  # "# sent_id = ..." (a "#" word has tabs)
                continue
            if not line:
                if forms:
                    sentences.append((forms, tags))
                forms, tags = [], []
                continue
            form, upos, _ = line.split("\t")
            forms.append(form)
            tags.append(upos)
    if forms:
        sentences.append((forms, tags))
    return sentences


def suffix(form: str) -> str:
    return form.lower()[-3:]


def shape(form: str) -> str:
    """'Zaman' -> 'Xx', '2021' -> 'd', 'U.S.' -> 'X.X.', 'e-mail' -> 'x-x' (runs collapsed)."""
    out = []
    for char in form:
        kind = "X" if char.isupper() else "x" if char.isalpha() else "d" if char.isdigit() else char
        if not out or out[-1] != kind:
            out.append(kind)
    return "".join(out)[:6]


class PartOfSpeech(Task):
    name = "pos"
    metric = "accuracy"

    def load_splits(self, config):
        return Splits(read_split("train"), read_split("dev"), read_split("test"))

    def vocabularies(self, train, config):
        forms = [[f.lower() for f in forms] for forms, _ in train]
        return {
            "words": TokenVocabulary.build(forms, config.min_count),
            "suffixes": TokenVocabulary.build([[suffix(f) for f in fs] for fs, _ in train], 2),
            "shapes": TokenVocabulary.build([[shape(f) for f in fs] for fs, _ in train], 2),
            "tags": TokenVocabulary(("<pad>", *UPOS), specials=1),
            "seen": TokenVocabulary.build(forms, specials=0),  # every training word
        }

    def source_length(self, example) -> int:
        return len(example[0])

    def features(self, forms: list[str], vocabularies) -> list[list[int]]:
        return [
            [
                vocabularies["words"].id(f.lower()),
                vocabularies["suffixes"].id(suffix(f)),
                vocabularies["shapes"].id(shape(f)),
            ]
            for f in forms
        ]

    def batches(self, examples, vocabularies, batch_size, generator=None):
        order = shuffled(len(examples), generator)
        tags = vocabularies["tags"]
        for start in range(0, len(examples), batch_size):
            chosen = [examples[i] for i in order[start : start + batch_size]]
            lengths = torch.tensor([len(forms) for forms, _ in chosen])
            features = torch.zeros(len(chosen), int(lengths.max()), len(FEATURES), dtype=torch.long)
            targets = torch.full(features.shape[:2], PAD, dtype=torch.long)
            unknown = torch.zeros(features.shape[:2], dtype=torch.bool)
            for row, (forms, row_tags) in enumerate(chosen):
                features[row, : len(forms)] = torch.tensor(self.features(forms, vocabularies))
                targets[row, : len(forms)] = torch.tensor([tags.id(t) for t in row_tags])
                unknown[row, : len(forms)] = torch.tensor(
                    [f.lower() not in vocabularies["seen"] for f in forms]
                )
            yield features, lengths, targets, unknown

    def build_model(self, config, vocabularies):
        sizes = {
            "words": (len(vocabularies["words"]), config.embedding_size),
            "suffixes": (len(vocabularies["suffixes"]), 32),
            "shapes": (len(vocabularies["shapes"]), 16),
        }
        return Tagger(
            sizes,
            len(vocabularies["tags"]),
            config.hidden_size,
            config.cell,
            config.num_layers,
            config.bidirectional,
            config.dropout,
        )

    def loss(self, model, batch, config, teacher_forcing, generator):
        features, lengths, targets, _ = batch
        logits = model(features, lengths)
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=PAD)

    @torch.no_grad()
    def evaluate(self, model, examples, vocabularies, config, beam=True):
        model.eval()
        total, correct, count, unknown_correct, unknown_count = 0.0, 0, 0, 0, 0
        for features, lengths, targets, unknown in self.model_batches(
            model, examples, vocabularies, 256
        ):
            logits = model(features, lengths)
            real = targets != PAD  # padding is never scored
            total += F.cross_entropy(
                logits.flatten(0, 1), targets.flatten(), ignore_index=PAD, reduction="sum"
            ).item()
            right = (logits.argmax(-1) == targets) & real
            correct += right.sum().item()
            count += real.sum().item()
            unknown_correct += (right & unknown).sum().item()
            unknown_count += unknown.sum().item()
        model.train()
        return {
            "loss": total / count,
            "accuracy": correct / count,
            "unknown_accuracy": unknown_correct / max(unknown_count, 1),
            "unknown_words": unknown_count,
        }

    def baseline(self, splits, vocabularies, config):
        by_form, by_lower, overall = defaultdict(Counter), defaultdict(Counter), Counter()
        for forms, tags in splits.train:
            for form, tag in zip(forms, tags, strict=True):
                by_form[form][tag] += 1
                by_lower[form.lower()][tag] += 1
                overall[tag] += 1
        fallback = overall.most_common(1)[0][0]
        correct = count = unknown_correct = unknown_count = 0
        for forms, tags in splits.test:
            for form, tag in zip(forms, tags, strict=True):
                table = by_form.get(form) or by_lower.get(form.lower())
                guess = table.most_common(1)[0][0] if table else fallback
                count += 1
                correct += guess == tag
                if table is None:
                    unknown_count += 1
                    unknown_correct += guess == tag
        return {
            "name": "most frequent tag per word",
            "accuracy": correct / count,
            "unknown_accuracy": unknown_correct / max(unknown_count, 1),
        }

    def parse(self, text, vocabularies, limit):
        forms = _TOKEN.findall(text)
        if not forms:
            raise UsageError("the sentence is empty: give at least one word")
        if len(forms) > limit:
            raise UsageError(
                f"the sentence has {len(forms)} tokens; this model handles at most {limit} "
                "(twice its longest training sentence): split it"
            )
        # Unknown words are fine here: the tagger reads their suffix and shape too.
        return forms, ["X"] * len(forms)

    @torch.no_grad()
    def predict(self, model, example, vocabularies, config):
        features, lengths, _, _ = next(self.model_batches(model, [example], vocabularies, 1))
        scores = model(features, lengths)[0]
        scores[:, PAD] = float("-inf")  # <pad> is not a tag
        tags = scores.argmax(-1).tolist()
        names = vocabularies["tags"].tokens
        return " ".join(f"{form}/{names[t]}" for form, t in zip(example[0], tags, strict=True))


TASK = PartOfSpeech()
