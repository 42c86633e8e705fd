"""The task models' pieces: padding never changes a result, attention weights, decoding."""

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.data.tokens import BOS, EOS, PAD, TokenVocabulary, pad, words
from rnnkit.generation.decoding import beam_search, greedy_decode
from rnnkit.models.attention import AdditiveAttention, MultiplicativeAttention
from rnnkit.models.captioner import ImageEncoder
from rnnkit.models.classifier import SentenceClassifier
from rnnkit.models.decoder import Decoder, DecoderState
from rnnkit.models.seq2seq import EncoderDecoder, TokenEncoder
from rnnkit.models.tagger import Tagger

VOCAB = 12


def _sentences(draw_lengths, seed):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randint(4, VOCAB, (n,), generator=generator).tolist() for n in draw_lengths]


def _seq2seq(cell="gru", attention="additive"):
    torch.manual_seed(0)
    encoder = TokenEncoder(VOCAB, 6, 5, cell, dropout=0.0)
    decoder = Decoder(VOCAB, 10, 10, 6, 8, cell, attention, 7, dropout=0.0)
    return EncoderDecoder(encoder, decoder).double().eval()


lengths_strategy = st.lists(st.integers(1, 9), min_size=2, max_size=5)


@settings(max_examples=25, deadline=None)
@given(
    lengths=lengths_strategy,
    seed=st.integers(0, 1000),
    cell=st.sampled_from(["lstm", "gru"]),
    pooling=st.sampled_from(["final", "concat"]),
)
def test_padding_never_changes_the_classifier(lengths, seed, cell, pooling):
    torch.manual_seed(seed)
    model = SentenceClassifier(VOCAB, 3, 5, 4, cell, num_layers=2, dropout=0.0, pooling=pooling)
    model = model.double().eval()
    sentences = _sentences(lengths, seed)
    ids, lens = pad(sentences)
    together = model(ids, lens)
    for row, sentence in enumerate(sentences):
        alone = model(*pad([sentence]))
        torch.testing.assert_close(together[row], alone[0], rtol=0, atol=1e-12)


def test_concat_pooling_reads_the_final_states_the_max_and_the_mean():
    """Concat pooling: [h→_T ; h←_1 ; max_t o_t ; mean_t o_t] over the real positions only."""
    torch.manual_seed(0)
    model = SentenceClassifier(VOCAB, 2, 5, 4, dropout=0.0, pooling="concat").double().eval()
    assert model.output.in_features == 3 * 8
    ids, lengths = pad([[4, 5, 6, 7], [8, 9]])
    vectors = model.embedding(ids)
    outputs, final = model.encoder(vectors, lengths)
    pooled = model.pooled(outputs, final, lengths)
    short = outputs[1, :2]  # the second sentence's real positions
    expected = torch.cat([model.encoder.last_layer_final(final)[1], short.amax(0), short.mean(0)])
    torch.testing.assert_close(pooled[1], expected, rtol=0, atol=1e-15)
    torch.testing.assert_close(model(ids, lengths), model.output(pooled))
    with pytest.raises(ValueError, match="pooling"):
        SentenceClassifier(VOCAB, 2, pooling="attention")


@settings(max_examples=25, deadline=None)
@given(lengths=lengths_strategy, seed=st.integers(0, 1000))
def test_padding_never_changes_the_tagger(lengths, seed):
    torch.manual_seed(seed)
    sizes = {"words": (VOCAB, 4), "shapes": (5, 2)}
    model = Tagger(sizes, 6, 4, "lstm", dropout=0.0).double().eval()
    sentences = _sentences(lengths, seed)
    features = torch.stack([pad(sentences)[0], pad(sentences)[0] % 5], dim=-1)
    lens = torch.tensor(lengths)
    together = model(features, lens)
    assert together.shape == (len(lengths), max(lengths), 6)
    for row, n in enumerate(lengths):
        alone = model(features[row : row + 1, :n], lens[row : row + 1])
        torch.testing.assert_close(together[row, :n], alone[0], rtol=0, atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(lengths=lengths_strategy, seed=st.integers(0, 1000))
def test_padding_never_changes_the_encoder_decoder(lengths, seed):
    model = _seq2seq()
    sources = _sentences(lengths, seed)
    targets = torch.randint(4, VOCAB, (len(lengths), 4), generator=torch.Generator().manual_seed(1))
    inputs = torch.cat([torch.full((len(lengths), 1), BOS), targets], dim=1)
    together = model(pad(sources), inputs)
    assert together.shape == (len(lengths), 5, VOCAB)
    for row, source in enumerate(sources):
        alone = model(pad([source]), inputs[row : row + 1])
        torch.testing.assert_close(together[row], alone[0], rtol=0, atol=1e-12)


def test_image_encoder_ignores_padding_columns():
    torch.manual_seed(0)
    encoder = ImageEncoder(4, 5).double().eval()
    images = torch.randint(0, 17, (2, 8, 24)).double()
    images[1, :, 16:] = 0  # the second strip is two digits wide
    memory, mask, summary = encoder(images, torch.tensor([24, 16]))
    alone = encoder(images[1:, :, :16], torch.tensor([16]))
    assert memory.shape == (2, 24, 10) and mask[1].tolist() == [True] * 16 + [False] * 8
    torch.testing.assert_close(memory[1, :16], alone[0][0], rtol=0, atol=1e-12)
    torch.testing.assert_close(summary[1], alone[2][0], rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", [AdditiveAttention, MultiplicativeAttention])
def test_attention_weights_sum_to_one_and_are_zero_on_padding(kind):
    torch.manual_seed(0)
    attention = kind(6, 5, 4).double()
    memory = torch.randn(3, 7, 5, dtype=torch.double)
    mask = pad([[1] * 7, [1] * 3, [1]])[0] != PAD
    context, weights = attention(torch.randn(3, 6, dtype=torch.double), memory, mask)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, dtype=torch.double))
    assert (weights[~mask] == 0).all() and (weights[mask] > 0).all()
    garbage = memory.masked_fill(~mask[..., None], 1e6)  # what padding holds must not matter
    context_again, _ = attention(torch.zeros(3, 6, dtype=torch.double), memory, mask)
    context_garbage, _ = attention(torch.zeros(3, 6, dtype=torch.double), garbage, mask)
    torch.testing.assert_close(context_again, context_garbage)
    assert context.shape == (3, 5)


@pytest.mark.parametrize("attention", ["additive", "multiplicative", "none"])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_beam_width_one_is_greedy(cell, attention):
    model = _seq2seq(cell, attention)
    source = pad(_sentences([5, 3, 7, 1], seed=3))
    state = model.start(*source)
    greedy, greedy_weights = greedy_decode(model.decoder, state, 9, BOS, EOS)
    beam, beam_weights = beam_search(model.decoder, state, 1, 9, BOS, EOS, alpha=0.7)
    assert beam == greedy
    for a, b in zip(greedy_weights, beam_weights, strict=True):
        if attention == "none":
            assert a is None and b is None
        else:
            torch.testing.assert_close(a, b)
            assert a.shape[1] == 7  # the padded source length
            torch.testing.assert_close(a.sum(-1), torch.ones(a.shape[0], dtype=torch.double))


class _TableDecoder:
    """A decoder whose next-token scores depend only on (step, last token): small enough to
    search exhaustively."""

    def __init__(self, vocab: int, steps: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.table = torch.randn(steps + 1, vocab, vocab, generator=generator, dtype=torch.double)
        self.table[:, :, PAD] = -1e9  # <pad>, <unk>, <s> are never produced
        self.table[:, :, 1:3] = -1e9

    def step(self, tokens, state):
        step = state.hidden[:, 0].long()
        logits = self.table[step, tokens]
        hidden = state.hidden + 1
        return logits, DecoderState(hidden, state.feed, state.memory, state.mask, None), None


def _exhaustive_best(table, vocab, max_length, alpha):
    best = None
    logp = table.log_softmax(-1)
    for length in range(1, max_length + 1):
        for sequence in itertools.product(range(3, vocab), repeat=length):
            if EOS in sequence[:-1]:
                continue
            ended = sequence[-1] == EOS
            if not ended and length < max_length:
                continue
            score, last = 0.0, BOS
            for step, token in enumerate(sequence):
                score += logp[step, last, token].item()
                last = token
            normalised = score / length**alpha
            tokens = list(sequence[:-1]) if ended else list(sequence)
            if best is None or normalised > best[0]:
                best = (normalised, tokens)
    return best[1]


@pytest.mark.parametrize("alpha", [0.0, 1.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_wide_enough_beam_is_exhaustive_search(seed, alpha):
    vocab, max_length = 6, 4
    decoder = _TableDecoder(vocab, max_length, seed)
    zeros = torch.zeros(1, 1, dtype=torch.double)
    state = DecoderState(zeros, zeros, torch.zeros(1, 1, 1), torch.ones(1, 1, dtype=bool), None)
    found, _ = beam_search(decoder, state, vocab**max_length, max_length, BOS, EOS, alpha)
    assert found[0] == _exhaustive_best(decoder.table, vocab, max_length, alpha)


def test_teacher_forcing_zero_feeds_the_decoders_own_greedy_choices():
    model = _seq2seq()
    source = pad(_sentences([4, 6], seed=5))
    steps = 6
    greedy, _ = greedy_decode(model.decoder, model.start(*source), steps, BOS, EOS)
    reference = torch.randint(4, VOCAB, (2, steps))  # ignored after the first token at ratio 0
    inputs = torch.cat([torch.full((2, 1), BOS), reference[:, :-1]], dim=1)
    logits = model(source, inputs, teacher_forcing=0.0, generator=torch.Generator())
    chosen = logits.argmax(-1).tolist()
    for row, tokens in enumerate(greedy):
        assert chosen[row][: len(tokens)] == tokens


def test_token_vocabulary_and_words():
    assert words("I don't like it, 3.5 stars!") == [
        "i",
        "don't",
        "like",
        "it",
        ",",
        "3.5",
        "stars",
        "!",
    ]
    vocabulary = TokenVocabulary.build([["a", "b", "a"], ["c"]], min_count=2)
    assert vocabulary.tokens == ("<pad>", "<unk>", "<s>", "</s>", "a")
    assert vocabulary.encode(["a", "zzz"]) == [4, 1]
    assert vocabulary.decode([4, 1, EOS, 4]) == ["a", "<unk>"]
    assert TokenVocabulary.from_json(vocabulary.to_json()) == vocabulary
