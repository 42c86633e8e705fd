"""The sentiment lexicon's word features, and the classifier that reads them beside its word
vectors."""

import pytest
import torch

from rnnkit.data import lexicon
from rnnkit.models.classifier import SentenceClassifier


def test_each_word_gets_its_valence_and_whether_it_is_rated():
    table = lexicon.valences()
    assert len(table) > 7000
    assert table["good"] > 0 > table["bad"]
    features = lexicon.token_features([["a", "good", "film"], ["bad"]], length=4)
    assert features.shape == (2, 4, lexicon.FEATURES)
    assert features[0, 1].tolist() == pytest.approx([table["good"] / 4, 1.0])
    assert features[1, 0].tolist() == pytest.approx([table["bad"] / 4, 1.0])
    unrated_or_padding = [features[0, 0], features[0, 2], features[0, 3], features[1, 1:]]
    assert all(not f.any() for f in unrated_or_padding)
    assert features.abs().max() <= 1.0


def test_the_classifier_reads_the_features_and_asks_for_them():
    torch.manual_seed(0)
    model = SentenceClassifier(10, 2, 4, 3, word_features=2, dropout=0.0).eval()
    ids, lengths = torch.tensor([[4, 5, 6]]), torch.tensor([3])
    plain, rated = torch.zeros(1, 3, 2), torch.tensor([[[0.0, 0.0], [0.9, 1.0], [0.0, 0.0]]])
    assert not torch.allclose(model(ids, lengths, plain), model(ids, lengths, rated))
    with pytest.raises(ValueError, match="needs 2 features a word"):
        model(ids, lengths)
    without = SentenceClassifier(10, 2, 4, 3, dropout=0.0)
    assert without.encoder.rnn.weight_ih_l0.shape == (12, 4)
    assert without(ids, lengths, rated).shape == (1, 2)  # features are ignored without them


def test_a_missing_lexicon_package_is_a_clear_error(monkeypatch):
    import importlib.resources

    from rnnkit.errors import UsageError

    def missing(name):
        raise ModuleNotFoundError(name)

    lexicon.valences.cache_clear()
    monkeypatch.setattr(importlib.resources, "files", missing)
    try:
        with pytest.raises(UsageError, match="pip install vaderSentiment"):
            lexicon.valences()
    finally:
        monkeypatch.undo()
        lexicon.valences.cache_clear()
