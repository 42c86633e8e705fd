"""What the three encoder–decoder tasks (translate, dates, caption) share: batches of a source
and its reference outputs, the teacher-forced loss, and scoring by decoding.

An example is (source, references): the source is whatever the task's encoder reads (tokens,
or an image), the references one or more acceptable outputs (token lists). Training uses the
first reference; scoring accepts any of them (exact match) and scores BLEU against all.

    decoder inputs   <s>  y_1  y_2 ... y_n        (the reference shifted right)
    decoder targets  y_1  y_2  ...  y_n  </s>     (<pad> after the end is never scored)
"""

import math

import torch
import torch.nn.functional as F

from rnnkit.data.tokens import BOS, EOS, PAD, pad
from rnnkit.generation.decoding import beam_search, greedy_decode
from rnnkit.models.decoder import Decoder
from rnnkit.models.seq2seq import EncoderDecoder, TokenEncoder
from rnnkit.tasks.base import Task, model_device, on_device, shuffled


class EncoderDecoderTask(Task):
    metric = "exact_match"
    target_vocabulary = "target"
    bleu = False  # report BLEU too (translation)
    max_output = 32  # decoding stops after this many tokens without </s>

    # -- what each task may replace (the default: a token source, vocabularies["source"]) -----
    def make_encoder(self, config, vocabularies):
        return TokenEncoder(
            len(vocabularies["source"]),
            config.embedding_size,
            config.hidden_size // 2 if config.bidirectional else config.hidden_size,
            config.cell,
            config.num_layers,
            config.bidirectional,
            config.dropout,
        )

    def source_batch(self, sources: list, vocabularies) -> tuple:
        """The encoder's inputs for a list of sources: padded ids and lengths."""
        return pad([vocabularies["source"].encode(s) for s in sources])

    def show(self, tokens: list[str]) -> str:
        return " ".join(tokens)

    def source_labels(self, example) -> list[str]:
        """The attention map's column labels for a source."""
        return list(example[0])

    def attention_rows(self, output: list[str], weights) -> list[str]:
        """The attention map's row labels: the output tokens, and </s> when the last row of
        `weights` is the step that wrote it (decoding stopped at </s>, not at the limit)."""
        ended = weights.shape[0] == len(output) + 1
        return [*output, "</s>"] if ended else list(output)

    def source_image(self, example):
        """A picture of the source drawn above the attention map (captioning), or None."""
        return None

    # -- shared -------------------------------------------------------------------------------
    def build_model(self, config, vocabularies):
        encoder = self.make_encoder(config, vocabularies)
        decoder = Decoder(
            len(vocabularies[self.target_vocabulary]),
            encoder.memory_size,
            encoder.summary_size,
            config.embedding_size,
            config.hidden_size,
            config.cell,
            config.attention,
            config.attention_size,
            config.dropout,
        )
        return EncoderDecoder(encoder, decoder)

    def batches(self, examples, vocabularies, batch_size, generator=None):
        order = shuffled(len(examples), generator)
        target = vocabularies[self.target_vocabulary]
        for start in range(0, len(examples), batch_size):
            chosen = [examples[i] for i in order[start : start + batch_size]]
            encoded = [target.encode(references[0]) for _, references in chosen]
            inputs, _ = pad([[BOS, *ids] for ids in encoded])
            targets, _ = pad([[*ids, EOS] for ids in encoded])
            yield self.source_batch([s for s, _ in chosen], vocabularies), inputs, targets, chosen

    def loss(self, model, batch, config, teacher_forcing, generator):
        source, inputs, targets, _ = batch
        logits = model(source, inputs, teacher_forcing, generator)
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=PAD)

    def decode(self, model, state, config, vocabularies, beam: bool):
        """Token lists (and attention weights) for every row of an encoded batch."""
        limit = self.max_output
        if not beam or config.beam_width == 1:
            return greedy_decode(model.decoder, state, limit, BOS, EOS)
        return beam_search(
            model.decoder, state, config.beam_width, limit, BOS, EOS, config.length_penalty
        )

    @torch.no_grad()
    def evaluate(self, model, examples, vocabularies, config, beam=True):
        """Teacher-forced loss and token accuracy; greedy exact match (and BLEU); with
        beam=True and --beam-width > 1 the same by beam search."""
        model.eval()
        target = vocabularies[self.target_vocabulary]
        total = correct = tokens = 0.0
        hypotheses = {"greedy": [], "beam": []}
        searches = ["greedy"] + (["beam"] if beam and config.beam_width > 1 else [])
        for source, inputs, targets, _chosen in self.model_batches(
            model, examples, vocabularies, 128
        ):
            logits = model(source, inputs)
            real = targets != PAD
            total += F.cross_entropy(
                logits.flatten(0, 1), targets.flatten(), ignore_index=PAD, reduction="sum"
            ).item()
            correct += ((logits.argmax(-1) == targets) & real).sum().item()
            tokens += real.sum().item()
            state = model.start(*source)
            for search in searches:
                found, _ = self.decode(model, state, config, vocabularies, search == "beam")
                hypotheses[search] += [target.decode(ids) for ids in found]
        references = [[list(r) for r in refs] for _, refs in examples]
        results = {
            "loss": total / tokens,
            "token_accuracy": correct / tokens,
        }
        for search in searches:
            suffix = "" if search == "greedy" else "_beam"
            found = hypotheses[search]
            exact = sum(h in refs for h, refs in zip(found, references, strict=True))
            results["exact_match" + suffix] = exact / len(examples)
            results["output_token_accuracy" + suffix] = positionwise_accuracy(found, references)
            if self.bleu:
                results["bleu" + suffix] = corpus_bleu(found, references)
        if len(searches) == 2:
            results["beam_width"] = config.beam_width
        model.train()
        return results

    @torch.no_grad()
    def predict(self, model, example, vocabularies, config):
        return self.show(self.translate(model, example, vocabularies, config)[0])

    @torch.no_grad()
    def translate(self, model, example, vocabularies, config):
        """(output tokens, attention weights (output steps, source positions) or None)."""
        model.eval()
        source = on_device(self.source_batch([example[0]], vocabularies), model_device(model))
        state = model.start(*source)
        found, weights = self.decode(model, state, config, vocabularies, beam=True)
        return vocabularies[self.target_vocabulary].decode(found[0]), weights[0]


def corpus_bleu(hypotheses: list[list[str]], references: list[list[list[str]]]) -> float:
    """sacrebleu's corpus BLEU (0-100) of tokenised outputs against one or more references."""
    import sacrebleu

    streams = max(len(r) for r in references)
    columns = [
        [" ".join(refs[i]) if i < len(refs) else None for refs in references]
        for i in range(streams)
    ]
    # force: the text is tokenised on purpose (both sides alike), so no warning about it.
    score = sacrebleu.corpus_bleu([" ".join(h) for h in hypotheses], columns, force=True).score
    return 0.0 if math.isnan(score) else score


def positionwise_accuracy(hypotheses: list[list[str]], references: list[list[list[str]]]) -> float:
    """Free-running per-token accuracy: the share of positions where the output has the
    reference's token, over max(output length, reference length) positions (a missing or extra
    token counts as wrong), against the closest reference."""
    right = total = 0
    for hypothesis, refs in zip(hypotheses, references, strict=True):
        best = None
        for reference in refs:
            matches = sum(a == b for a, b in zip(hypothesis, reference, strict=False))
            length = max(len(hypothesis), len(reference), 1)
            if best is None or matches / length > best[0] / best[1]:
                best = (matches, length)
        right += best[0]
        total += best[1]
    return right / total
