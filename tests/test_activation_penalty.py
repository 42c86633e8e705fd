"""Activation regularisation (AR) and temporal activation regularisation (TAR): the formula,
the model's outputs they read, and their use in training."""

import pytest
import torch

from helpers import losses, quiet, tiny
from rnnkit.models.charlm import CharLM
from rnnkit.training.activation_penalty import activation_penalty
from rnnkit.training.language_model import train


def test_the_penalty_is_ar_times_the_mean_square_plus_tar_times_the_mean_square_change():
    torch.manual_seed(0)
    B, T, H = 3, 5, 4
    output = torch.randn(B, T, H, dtype=torch.float64)
    dropped = torch.randn(B, T, H, dtype=torch.float64)
    squares = sum(dropped[b, t, j] ** 2 for b in range(B) for t in range(T) for j in range(H))
    changes = sum(
        (output[b, t + 1, j] - output[b, t, j]) ** 2
        for b in range(B)
        for t in range(T - 1)
        for j in range(H)
    )
    expected = 2.0 * squares / (B * T * H) + 0.5 * changes / (B * (T - 1) * H)
    got = activation_penalty(output, dropped, ar=2.0, tar=0.5)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)
    assert activation_penalty(output, dropped, ar=0.0, tar=0.0).item() == 0.0
    one_step = output[:, :1]
    assert activation_penalty(one_step, one_step, ar=0.0, tar=1.0).item() == 0.0


@pytest.mark.parametrize("variational", [False, True])
def test_with_outputs_gives_the_outputs_the_head_reads(variational):
    model = CharLM(11, hidden_size=8, embedding_size=6, num_layers=2, dropout=0.5,
                   variational_dropout=variational)  # fmt: skip
    ids = torch.randint(0, 11, (3, 7))
    torch.manual_seed(1)
    logits, _ = model(ids)
    torch.manual_seed(1)  # the same dropout masks
    again, _, output, dropped = model(ids, with_outputs=True)
    assert torch.equal(logits, again)
    assert output.shape == dropped.shape == (3, 7, 8)
    assert torch.equal(model.head(dropped), logits)
    assert not torch.equal(output, dropped)  # training: dropped out
    model.eval()
    _, _, output, dropped = model(ids, with_outputs=True)
    assert torch.equal(output, dropped)


def test_training_adds_the_penalty_to_the_gradient_but_logs_the_cross_entropy(
    small_text,
    tmp_path,
):
    plain = tiny(small_text, max_steps=3, eval_interval=3)
    train(plain, tmp_path / "plain", log=quiet, progress=False)
    penalised = tiny(small_text, max_steps=3, eval_interval=3, activation_reg=2.0,
                     temporal_activation_reg=1.0)  # fmt: skip
    train(penalised, tmp_path / "penalised", log=quiet, progress=False)
    plain_losses = losses(tmp_path / "plain")
    penalised_losses = losses(tmp_path / "penalised")
    # Step 1 starts from the same weights and masks: the same cross-entropy is logged.
    assert plain_losses[0] == penalised_losses[0]
    # The penalty's gradient changed the first update, so step 2's loss differs.
    assert plain_losses[1] != penalised_losses[1]
