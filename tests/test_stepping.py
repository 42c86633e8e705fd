"""Generation's one-character-at-a-time path equals the model run over the whole sequence."""

import pytest
import torch
from torch.testing import assert_close

import rnnkit
from rnnkit.models.charlm import CharLM
from rnnkit.models.stepping import Stepper


@pytest.mark.parametrize("loops", ["cpp", "python"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "layernorm_lstm", "sru", "mingru"])
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


@pytest.mark.parametrize(("cell", "relu"), [("lstm", False), ("gru", False), ("rnn", False),
                                            ("rnn", True), ("layernorm_lstm", False),
                                            ("indrnn", False), ("minlstm", False)])  # fmt: skip
def test_int8_stepping_follows_the_float_model_within_quantisation_error(cell, relu):
    """The int8 Stepper runs the same equations with every product on int8 weights: its
    next-character distribution stays close to the float model's over a whole text."""
    from rnnkit.models.int8_stepping import Int8Stepper

    torch.manual_seed(0)
    model = CharLM(30, cell, 16, 64, 2).eval()
    if relu:  # the same weights in a relu RNN
        relu_layer = rnnkit.RNN(16, 64, 2, nonlinearity="relu", batch_first=True)
        relu_layer.load_state_dict(model.rnn.state_dict())
        model.rnn = relu_layer.eval()
    ids = torch.randint(0, 30, (3, 40))
    expected, _ = model(ids)
    stepper, state, gaps = Int8Stepper(model), None, []
    for t in range(ids.shape[1]):
        logits, state = stepper.step(ids[:, t], state)
        p, q = expected[:, t].softmax(-1), logits.softmax(-1)
        gaps.append((p * (p.log() - q.log())).sum(-1).max())  # KL(float || int8)
    assert max(gaps) < 2e-3, max(gaps)
    assert (state[0] if isinstance(state, tuple) else state).shape == (2, 3, 64)


def test_stepped_evaluation_scores_what_the_full_pass_scores():
    from rnnkit.training.evaluate import evaluate, evaluate_stepped

    torch.manual_seed(0)
    model = CharLM(12, "gru", 6, 16, 2).double().eval()
    ids = torch.randint(0, 12, (500,)).numpy()
    full = evaluate(model, ids, batch_size=4, seq_len=16)
    stepped = evaluate_stepped(Stepper(model), ids, batch_size=4, seq_len=16)
    assert stepped.characters == full.characters == 499
    assert stepped.loss == pytest.approx(full.loss, abs=1e-7)  # the folded embedding: round-off


def test_sample_and_eval_take_int8_weights(trained_run, capsys):
    from rnnkit.cli import main
    from rnnkit.errors import UsageError
    from rnnkit.generation.sampling import stepper_for

    run, _ = trained_run
    assert main(["sample", str(run), "--weights", "int8", "--length", "30", "--seed", "2"]) == 0
    first = capsys.readouterr().out
    assert main(["sample", str(run), "--weights", "int8", "--length", "30", "--seed", "2"]) == 0
    assert capsys.readouterr().out == first and len(first) > 30  # same seed, same text
    assert main(["eval", str(run), "--weights", "int8"]) == 0
    assert "int8 weights" in capsys.readouterr().out
    with pytest.raises(UsageError, match="--weights must be one of float32, int8"):
        stepper_for(CharLM(5, "lstm", 4, 8), "int4")
