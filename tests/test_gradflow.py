"""`rnnkit gradflow`: the measured ‖∂L/∂h_t‖ against autograd by hand, the decay fit, the
spectral radius, clipping, trained runs and the command line."""

import math

import pytest
import torch
from torch.testing import assert_close

from rnnkit.cli import main
from rnnkit.inside import gradflow


def test_norms_equal_autograd_through_the_unrolled_cell():
    layer = gradflow.fresh_layer("rnn", input_size=3, hidden_size=4, num_layers=1, seed=1)
    inputs = torch.randn(7, 2, 3, dtype=torch.double)
    direction = torch.randn(4, dtype=torch.double)
    flow = gradflow.measure(layer, inputs, lambda h_last: (h_last @ direction).sum(), "RNN")

    # By hand: unroll the equations, keep every h_t, ask autograd for ∂L/∂h_t.
    h, states = torch.zeros(2, 4, dtype=torch.double, requires_grad=True), []
    w_ih, w_hh, b_ih, b_hh = (p.detach() for p in layer.parameters())
    for t in range(7):
        h = torch.tanh(inputs[t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh)
        states.append(h)
    gradients = torch.autograd.grad((states[-1] @ direction).sum(), states)
    expected = torch.stack([g.norm(dim=-1).mean() for g in gradients]).flip(0)  # by distance
    assert_close(flow.norms[0], expected, rtol=1e-10, atol=1e-14)


def test_every_layer_of_a_stack_is_measured():
    layer = gradflow.fresh_layer("lstm", input_size=3, hidden_size=4, num_layers=2, seed=0)
    inputs = torch.randn(6, 2, 3, dtype=torch.double)
    flow = gradflow.measure(layer, inputs, lambda h: h.sum(), "LSTM")
    assert flow.norms.shape == (2, 6)
    assert len(flow.decay_per_step) == 2
    assert flow.parameter_grad_norm > 0


def test_the_decay_fit_recovers_a_geometric_rate():
    norms = torch.tensor([5.0] + [0.7**k for k in range(1, 40)], dtype=torch.double)
    assert gradflow.decay_per_step(norms) == pytest.approx(0.7, rel=1e-9)
    growing = torch.tensor([1.3**k for k in range(30)], dtype=torch.double)
    assert gradflow.decay_per_step(growing) == pytest.approx(1.3, rel=1e-9)
    underflow = torch.tensor([1.0, 0.5, 0.0, 0.0], dtype=torch.double)
    assert math.isnan(gradflow.decay_per_step(underflow))  # one usable point: no fit


def test_spectral_radius_is_set_per_gate_block():
    layer = gradflow.fresh_layer("gru", 3, 5, 1, seed=0, spectral_radius=1.25)
    for block in layer.weight_hh_l0.detach().split(5):
        radius = torch.linalg.eigvals(block).abs().max().item()
        assert radius == pytest.approx(1.25, rel=1e-9)


def test_a_small_spectral_radius_vanishes_faster():
    flows = gradflow.fresh_flows([], [0.5, 1.5], hidden_size=16, steps=40, input_scale=0.05)
    assert flows[0].decay_per_step[0] < 0.6 < flows[1].decay_per_step[0]


def test_clipping_scales_by_the_same_factor_everywhere():
    flow = gradflow.GradientFlow("x", torch.ones(1, 3), [1.0], parameter_grad_norm=8.0)
    assert flow.clipped_factor(2.0) == 0.25
    assert flow.clipped_factor(100.0) == 1.0  # below the threshold nothing changes
    assert gradflow.GradientFlow("x", torch.ones(1, 3), [1.0], 0.0).clipped_factor(1.0) == 1.0


def test_a_trained_run_is_measured(trained_run):
    run, _ = trained_run
    flow = gradflow.trained_flow(run, steps=20, batch=3)
    assert flow.norms.shape == (1, 20)
    assert torch.isfinite(flow.norms).all() and flow.norms[0, 0] > 0


@pytest.mark.slow
def test_the_command_prints_the_table_and_writes_the_png(trained_run, tmp_path, capsys):
    run, _ = trained_run
    png = tmp_path / "flow.png"
    arguments = ["gradflow", str(run), "--steps", "12", "--hidden-size", "8", "--out", str(png)]
    assert main([*arguments, "--spectral-radius", "0.5", "1.5"]) == 0
    out = capsys.readouterr().out
    for label in ("RNN ", "LSTM", "GRU", "RNN ρ=0.5", "RNN ρ=1.5", run.name):
        assert label in out
    assert png.read_bytes().startswith(b"\x89PNG")


def test_bad_input_is_one_clear_line(tmp_path, capsys):
    assert main(["gradflow", "--steps", "2", "--out", str(tmp_path / "x.png")]) == 2
    assert "at least 3" in capsys.readouterr().err
    assert main(["gradflow", "--cells", "--spectral-radius", "--out", str(tmp_path / "x.png")]) == 2
    assert "nothing to measure" in capsys.readouterr().err
    assert main(["gradflow", str(tmp_path / "missing"), "--cells", "--spectral-radius"]) == 2
