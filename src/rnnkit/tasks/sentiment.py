"""Many-to-one: is a sentence positive or negative? (UCI Sentiment Labelled Sentences)

3,000 sentences from Amazon, IMDb and Yelp reviews, 500 positive and 500 negative from each.
The split is fixed and stratified by source: in each file, lines 9 and 10 of every ten go to dev
and test, the rest to train (2,400 / 300 / 300). Words are lower-cased; words seen once in
training become <unk>. Baseline: a logistic regression on the bag of words (which words occur),
its L2 strength chosen on dev.

With `--pretrained RUN` (a run of `rnnkit task english train`) the classifier takes that run's
vocabulary, and its word vectors and encoder start from the run's best checkpoint; only the
output layer (and the lexicon's input columns) start from random.

By default (`--no-lexicon` turns it off) each word also brings its sentiment valence from VADER's
lexicon (rnnkit/data/lexicon.py) beside its word vector: a rated word the training sentences
never had still says whether it is praise or blame.

The output layer reads the encoder's final states beside the max and the mean of its outputs
over the sentence (`--pooling concat`, the default here; `--pooling final`: the final states
only; models/classifier.py).
"""

from pathlib import Path

import torch
import torch.nn.functional as F

from rnnkit.data import lexicon
from rnnkit.data.tokens import UNK, TokenVocabulary, pad, words
from rnnkit.errors import UsageError
from rnnkit.models.classifier import SentenceClassifier
from rnnkit.tasks import get_task
from rnnkit.tasks.base import Splits, Task, asset, shuffled

SOURCES = ("amazon_cells", "imdb", "yelp")
LABELS = ("negative", "positive")
# Windows-1252 punctuation left as C1 control characters in imdb_labelled.txt.
C1_FIXES = {"\x85": "...", "\x96": "-", "\x97": "-", "\x91": "'", "\x92": "'"}


def read_sentences() -> Splits:
    splits = Splits([], [], [])
    for source in SOURCES:
        lines = asset("sentiment", f"{source}_labelled.txt").read_text(encoding="utf-8")
        for index, line in enumerate(lines.split("\n")):  # not splitlines(): U+0085 is in text
            if not line.strip():
                continue
            text, label = line.rsplit("\t", 1)  # the last tab: sentences may hold quotes
            for bad, good in C1_FIXES.items():
                text = text.replace(bad, good)
            example = (words(text.strip()), int(label.strip()))
            part = {8: splits.dev, 9: splits.test}.get(index % 10, splits.train)
            part.append(example)
    return splits


class Sentiment(Task):
    name = "sentiment"
    metric = "accuracy"

    def load_splits(self, config):
        return read_sentences()

    def vocabularies(self, train, config):
        if config.pretrained:
            return pretrained_run(config)[1]
        return {"words": TokenVocabulary.build((w for w, _ in train), config.min_count)}

    def initialise(self, model, config, log):
        if not config.pretrained:
            return
        from rnnkit.tasks.runner import load_run

        language_model, path = load_run(config.pretrained, get_task("english"), warn=log)[:2]
        shared = {k: v for k, v in language_model.state_dict().items()
                  if k.startswith(("embedding.", "encoder."))}  # fmt: skip
        own = model.state_dict()
        with torch.no_grad():
            for name, value in shared.items():
                # With --lexicon the first layer reads more inputs than the language model's:
                # its word-vector columns come from the run, the lexicon columns start random.
                own[name][..., : value.shape[-1]].copy_(value)
        log(f"word vectors and encoder from {path} ({len(shared)} tensors)")

    def source_length(self, example) -> int:
        return len(example[0])

    def batches(self, examples, vocabularies, batch_size, generator=None):
        order = shuffled(len(examples), generator)
        for start in range(0, len(examples), batch_size):
            chosen = [examples[i] for i in order[start : start + batch_size]]
            ids, lengths = pad([vocabularies["words"].encode(w) for w, _ in chosen])
            labels = torch.tensor([label for _, label in chosen])
            features = lexicon.token_features([w for w, _ in chosen], ids.shape[1])
            yield ids, lengths, labels, features  # a model without --lexicon ignores features

    def build_model(self, config, vocabularies):
        return SentenceClassifier(
            len(vocabularies["words"]),
            len(LABELS),
            config.embedding_size,
            config.hidden_size,
            config.cell,
            config.num_layers,
            config.bidirectional,
            config.dropout,
            word_features=lexicon.FEATURES if config.lexicon else 0,
            pooling=config.pooling,
        )

    def loss(self, model, batch, config, teacher_forcing, generator):
        ids, lengths, labels, features = batch
        return F.cross_entropy(model(ids, lengths, features), labels)

    @torch.no_grad()
    def evaluate(self, model, examples, vocabularies, config, beam=True):
        model.eval()
        total, correct, count = 0.0, 0, 0
        for ids, lengths, labels, features in self.model_batches(
            model, examples, vocabularies, 256
        ):
            logits = model(ids, lengths, features)
            total += F.cross_entropy(logits, labels, reduction="sum").item()
            correct += (logits.argmax(-1) == labels).sum().item()
            count += len(labels)
        model.train()
        return {"loss": total / count, "accuracy": correct / count}

    def baseline(self, splits, vocabularies, config):
        """Bag-of-words logistic regression (L2 from a small grid, chosen on dev)."""
        vocabulary = vocabularies["words"]

        def features(examples):
            x = torch.zeros(len(examples), len(vocabulary))
            for row, (tokens, _) in enumerate(examples):
                x[row, vocabulary.encode(tokens)] = 1.0
            return x, torch.tensor([label for _, label in examples])

        train, dev, test = (features(s) for s in (splits.train, splits.dev, splits.test))
        best = None
        for l2 in (1e-4, 1e-3, 1e-2, 1e-1):
            model = _logistic_regression(*train, l2)
            accuracy = (model(dev[0]).argmax(-1) == dev[1]).float().mean().item()
            if best is None or accuracy > best[0]:
                best = (accuracy, l2, model)
        _, l2, model = best
        with torch.no_grad():
            accuracy = (model(test[0]).argmax(-1) == test[1]).float().mean().item()
        return {"name": "bag-of-words logistic regression", "l2": l2, "accuracy": accuracy}

    def parse(self, text, vocabularies, limit):
        tokens = words(text)
        if not tokens:
            raise UsageError("the sentence is empty: give at least one word")
        if len(tokens) > limit:
            raise UsageError(
                f"the sentence has {len(tokens)} words; this model handles at most {limit} "
                "(twice its longest training sentence): split it"
            )
        if self.all_unknown(tokens, vocabularies, lexicon.valences()):
            raise UsageError(_UNKNOWN.format(", ".join(tokens[:10])))
        return tokens, 0

    @staticmethod
    def all_unknown(tokens, vocabularies, rated) -> bool:
        """No word of the sentence is in the vocabulary or among `rated` (the lexicon's words
        for a model that reads it): the model would answer the same for any such sentence."""
        ids = vocabularies["words"].encode(tokens)
        return all(i == UNK and t not in rated for i, t in zip(ids, tokens, strict=True))

    @torch.no_grad()
    def predict(self, model, example, vocabularies, config):
        if not config.lexicon and self.all_unknown(example[0], vocabularies, ()):
            raise UsageError(_UNKNOWN.format(", ".join(example[0][:10])))
        ids, lengths, _, features = next(self.model_batches(model, [example], vocabularies, 1))
        probabilities = model(ids, lengths, features).softmax(-1)[0]
        label = int(probabilities.argmax())
        return f"{LABELS[label]}\t{probabilities[label].item():.3f}"


_UNKNOWN = (
    "every word of the sentence is unknown to the model ({}): it would give the same answer "
    "for any such sentence. Use English words"
)


def pretrained_run(config):
    """(the english run's config, its vocabularies) for --pretrained; a clear error when the
    run is not one, or when this model's sizes differ from its."""
    from rnnkit.tasks.runner import read_task_run

    saved, vocabularies, _ = read_task_run(Path(config.pretrained), get_task("english"))
    differ = [
        f"--{name.replace('_', '-')} {getattr(saved, name)}"
        for name in ("cell", "embedding_size", "hidden_size")
        if getattr(saved, name) != getattr(config, name)
    ]
    if config.num_layers != 1 or not config.bidirectional:
        differ.append("--num-layers 1 --bidirectional")
    if differ:
        raise UsageError(
            f"--pretrained {config.pretrained} was trained with other sizes: give "
            f"{' '.join(differ)} (or pre-train with this model's)"
        )
    return saved, vocabularies


def _logistic_regression(x, y, l2: float) -> torch.nn.Linear:
    model = torch.nn.Linear(x.shape[1], 2)
    optimizer = torch.optim.LBFGS(model.parameters(), max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y) + l2 * model.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return model


TASK = Sentiment()
