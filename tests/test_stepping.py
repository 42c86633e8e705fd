"""Generation's one-character-at-a-time path equals the model run over the whole sequence."""

import pytest
import torch
from torch.testing import assert_close

from rnnkit.models.charlm import CharLM
from rnnkit.models.stepping import Stepper


@pytest.mark.parametrize("loops", ["cpp", "python"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_stepping_equals_the_model(monkeypatch, loops, cell, num_layers):
    monkeypatch.setenv("RNNKIT_KERNELS", loops)
    torch.manual_seed(0)
    model = CharLM(11, cell, 6, 8, num_layers, dropout=0.3).double().eval()
    ids = torch.randint(0, 11, (1, 9))
    expected, expected_state = model(ids)
    stepper = Stepper(model)
    state = None
    for t in range(ids.shape[1]):
        logits, state = stepper.step(int(ids[0, t]), state)
        assert_close(logits, expected[:, t], rtol=1e-10, atol=1e-12)
    expected_state = expected_state if isinstance(expected_state, tuple) else (expected_state,)
    state = state if isinstance(state, tuple) else (state,)
    assert_close(state, expected_state, rtol=1e-10, atol=1e-12)


def test_stepping_continues_from_the_models_state():
    torch.manual_seed(0)
    model = CharLM(11, "lstm", 6, 8, 2).eval()
    ids = torch.randint(0, 11, (1, 7))
    expected, _ = model(ids)
    _, state = model(ids[:, :4])  # the prime, read by the model at once
    stepper = Stepper(model)
    for t in range(4, 7):
        logits, state = stepper.step(int(ids[0, t]), state)
        assert_close(logits, expected[:, t], rtol=1e-5, atol=1e-6)
