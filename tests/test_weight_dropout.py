"""layer.weight_dropout: DropConnect on W_hh, one mask per call, the same on every engine
(float32 "auto" LSTM: torch's fused kernel)."""

import pytest
import torch

import rnnkit
from rnnkit.engine.dispatch import ENGINES

P = 0.4


def masks(layer, seed: int) -> dict[str, torch.Tensor]:
    """The masks a training call with this seed draws, drawn the same way (W_hh order)."""
    torch.manual_seed(seed)
    return {
        name: torch.nn.functional.dropout(torch.ones_like(getattr(layer, name)), P)
        for name in layer._flat_weights_names
        if name.startswith("weight_hh")
    }


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_a_training_call_runs_the_layer_with_masked_recurrent_weights(kind, engine, dtype):
    torch.manual_seed(0)
    layer = getattr(rnnkit, kind)(5, 6, num_layers=2, batch_first=True).to(dtype)
    layer.engine = engine
    layer.weight_dropout = P
    x = torch.randn(3, 7, 5, dtype=dtype)
    drawn = masks(layer, seed=11)

    torch.manual_seed(11)
    output, _ = layer(x)
    output.square().sum().backward()

    twin = getattr(rnnkit, kind)(5, 6, num_layers=2, batch_first=True).to(dtype)
    twin.engine = engine
    twin.load_state_dict(layer.state_dict())
    with torch.no_grad():
        for name, mask in drawn.items():
            getattr(twin, name).mul_(mask)
    expected, _ = twin(x)
    tolerance = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(output, expected, rtol=tolerance, atol=tolerance)
    for name, mask in drawn.items():
        assert 0 < int((mask == 0).sum()) < mask.numel()  # some dropped, some kept
        grad = getattr(layer, name).grad
        assert torch.all(grad[mask == 0] == 0)  # a dropped weight gets no gradient
        assert torch.any(grad[mask != 0] != 0)


def test_evaluation_and_zero_weight_dropout_leave_the_layer_as_it_is():
    torch.manual_seed(0)
    layer = rnnkit.LSTM(4, 5, batch_first=True)
    x = torch.randn(2, 6, 4)
    plain, _ = layer(x)
    layer.weight_dropout = 0.5
    layer.eval()
    torch.testing.assert_close(layer(x)[0], plain, rtol=0, atol=0)
    layer.train()
    assert not torch.equal(layer(x)[0], plain)  # in training it does drop
