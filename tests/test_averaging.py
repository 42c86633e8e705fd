"""The moving average of the weights (--ema-decay): its formula, and its use in training."""

import pytest
import torch
from safetensors.torch import load_file

from helpers import final_weights, losses, quiet, tiny
from rnnkit.data.batches import contiguous_split
from rnnkit.models.charlm import CharLM
from rnnkit.training.averaging import WeightAverage
from rnnkit.training.evaluate import evaluate
from rnnkit.training.language_model import train
from rnnkit.training.run import load_trained_model


def test_the_average_weighs_step_i_by_decay_to_the_t_minus_i_and_sums_to_one():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2).double()
    average = WeightAverage(model, decay=0.8)
    seen = []
    for _ in range(7):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        seen.append([p.detach().clone() for p in model.parameters()])
        average.update()
    t = len(seen)
    weights = torch.tensor([0.8 ** (t - i) for i in range(1, t + 1)], dtype=torch.float64)
    weights /= weights.sum()  # no weight left on the initial parameters
    for k, got in enumerate(average.averages):
        expected = sum(w * step[k] for w, step in zip(weights, seen, strict=True))
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)
    assert average.steps == 7


def test_the_first_update_copies_the_weights():
    model = torch.nn.Linear(3, 2)
    average = WeightAverage(model, decay=0.999)
    with torch.no_grad():
        model.weight.fill_(5.0)
    average.update()
    assert torch.equal(average.averages[0], model.weight.detach())


def test_swapped_in_shows_the_average_and_gives_the_raw_weights_back_even_on_error():
    model = torch.nn.Linear(3, 2)
    average = WeightAverage(model, decay=0.5)
    average.update()
    raw = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)  # raw moves on; the average stays behind
    moved = model.weight.detach().clone()
    with average.swapped_in():
        assert torch.equal(model.weight.detach(), raw)
    assert torch.equal(model.weight.detach(), moved)
    with pytest.raises(RuntimeError), average.swapped_in():
        raise RuntimeError("evaluation failed")
    assert torch.equal(model.weight.detach(), moved)


def test_the_state_dict_round_trip_keeps_tied_weights_tied():
    model = CharLM(11, hidden_size=8, embedding_size=8, tie_weights=True)
    average = WeightAverage(model, decay=0.9)
    for _ in range(3):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.1)
        average.update()
    saved = average.state_dict()
    assert set(saved) == set(model.state_dict())
    tied = [k for k in saved if k.startswith(("embedding", "head")) and k.endswith("weight")]
    assert len(tied) == 2 and torch.equal(saved[tied[0]], saved[tied[1]])

    again = WeightAverage(model, decay=0.9)
    again.load_state_dict(saved, steps=3)
    assert again.steps == 3
    assert all(torch.equal(a, b) for a, b in zip(again.averages, average.averages, strict=True))


def test_a_run_validates_saves_and_samples_the_average(small_text, tmp_path):
    config = tiny(small_text, ema_decay=0.9, max_steps=8, eval_interval=8)
    train(config, tmp_path / "run", log=quiet, progress=False)
    averaged = final_weights(tmp_path / "run", "model")
    raw = final_weights(tmp_path / "run", "training_weights")
    assert any(not torch.equal(averaged[k], raw[k]) for k in raw)

    model, _, vocabulary, _ = load_trained_model(tmp_path / "run", warn=quiet)
    assert all(torch.equal(model.state_dict()[k], averaged[k]) for k in averaged)
    # The validation loss in metrics.csv is the average's, the model `sample` and `eval` load.
    ids = vocabulary.encode(small_text.read_text())
    split = contiguous_split(len(ids), config.val_fraction, config.test_fraction)
    val_ids = ids[split.val[0] : split.val[1]]
    loss = evaluate(model, val_ids, 64, config.seq_len).loss
    assert float(losses(tmp_path / "run", "val_loss")[-1]) == pytest.approx(loss, abs=1e-6)


def test_averaging_can_be_switched_on_or_off_when_resuming(small_text, tmp_path):
    plain = tiny(small_text, max_steps=6, eval_interval=3)
    train(plain, tmp_path / "on", log=quiet, progress=False)
    train(tiny(small_text, ema_decay=0.9), tmp_path / "on", resume=True, log=quiet, progress=False)
    averaged = final_weights(tmp_path / "on", "model")
    raw = final_weights(tmp_path / "on", "training_weights")
    assert any(not torch.equal(averaged[k], raw[k]) for k in raw)

    train(tiny(small_text, ema_decay=0.9, max_steps=6), tmp_path / "off", log=quiet, progress=False)
    train(tiny(small_text), tmp_path / "off", resume=True, log=quiet, progress=False)
    newest = sorted((tmp_path / "off" / "checkpoints").glob("step-*"))[-1]
    assert not (newest / "training_weights.safetensors").exists()
    assert set(load_file(newest / "model.safetensors")) == set(raw)
