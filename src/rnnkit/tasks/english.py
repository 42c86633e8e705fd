"""Many-to-many language model: English sentences, each word predicted from either side.

The pre-training step of the sentiment classifier (`rnnkit task sentiment train --pretrained
RUN`): a bidirectional word language model (models/bilm.py) whose embedding and encoder the
classifier then starts from. Text, all of it bundled, tokenized as the sentiment task does:

    train  UD English EWT's training sentences (12,544: web text, reviews, e-mail, answers),
           every distinct English sentence of the Tatoeba pairs (30,085, up to 5 words), and
           the sentiment task's 2,400 training sentences (their words only, not their labels)
    dev    EWT's dev sentences (2,001)       test   EWT's test sentences (2,077)

No sentiment dev or test sentence is read. Metric: the share of words each direction predicts
exactly (argmax), over both directions; the loss is nats per predicted word.
"""

import torch

from rnnkit.data.tokens import UNK, TokenVocabulary, pad, words
from rnnkit.errors import UsageError
from rnnkit.models.bilm import BidirectionalLM
from rnnkit.tasks.base import Splits, Task, model_device, shuffled


def english_sentences() -> Splits:
    from rnnkit.tasks.pos import read_split
    from rnnkit.tasks.sentiment import read_sentences
    from rnnkit.tasks.translate import read_pairs

    def ewt(part: str) -> list[list[str]]:
        return [words(" ".join(forms)) for forms, _ in read_split(part)]

    tatoeba = read_pairs()
    english = {tuple(s) for part in (tatoeba.train, tatoeba.dev, tatoeba.test) for s, _ in part}
    reviews = [sentence for sentence, _ in read_sentences().train]
    train = ewt("train") + [list(s) for s in sorted(english)] + reviews
    parts = (train, ewt("dev"), ewt("test"))
    return Splits(*([s for s in part if s] for part in parts))  # a sentence of symbols: no words


class English(Task):
    name = "english"
    metric = "accuracy"

    def load_splits(self, config):
        return english_sentences()

    def vocabularies(self, train, config):
        return {"words": TokenVocabulary.build(train, config.min_count)}

    def source_length(self, example) -> int:
        return len(example)

    def batches(self, examples, vocabularies, batch_size, generator=None):
        order = shuffled(len(examples), generator)
        for start in range(0, len(examples), batch_size):
            chosen = [examples[i] for i in order[start : start + batch_size]]
            yield pad([vocabularies["words"].encode(sentence) for sentence in chosen])

    def build_model(self, config, vocabularies):
        return BidirectionalLM(
            len(vocabularies["words"]),
            config.embedding_size,
            config.hidden_size,
            config.cell,
            config.dropout,
        )

    def loss(self, model, batch, config, teacher_forcing, generator):
        ids, lengths = batch
        return model.loss(ids, lengths)

    @torch.no_grad()
    def evaluate(self, model, examples, vocabularies, config, beam=True):
        model.eval()
        total, correct, count = 0.0, 0, 0
        for ids, lengths in self.model_batches(model, examples, vocabularies, 256):
            logits, targets = model.scored(ids, lengths)
            total += torch.nn.functional.cross_entropy(logits, targets, reduction="sum").item()
            correct += (logits.argmax(-1) == targets).sum().item()
            count += len(targets)
        model.train()
        return {"loss": total / max(count, 1), "accuracy": correct / max(count, 1)}

    def parse(self, text, vocabularies, limit):
        tokens = words(text)
        if not tokens:
            raise UsageError("the text is empty: give at least one word")
        if len(tokens) > limit:
            raise UsageError(
                f"the text has {len(tokens)} words; this model handles at most {limit}: shorten it"
            )
        if all(i == UNK for i in vocabularies["words"].encode(tokens)):
            raise UsageError(
                f"every word is unknown to the model ({', '.join(tokens[:10])}): use English words"
            )
        return tokens

    @torch.no_grad()
    def predict(self, model, example, vocabularies, config):
        """The five most likely next words, with their probabilities."""
        ids = torch.tensor([vocabularies["words"].encode(example)], device=model_device(model))
        probabilities, chosen = model.next_words(ids)
        pairs = zip(probabilities.tolist(), chosen.tolist(), strict=True)
        return "  ".join(f"{vocabularies['words'].tokens[i]} {p:.3f}" for p, i in pairs)


TASK = English()
