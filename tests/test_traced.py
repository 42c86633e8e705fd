"""Any cell's step traced into ATen operators and run by a C++ loop (engine/traced.py): it is the
path every cell without registered loops takes on the CPU, it gives the Python step's values
and gradients, and a step that cannot be traced runs its own step instead, still right.
(tests/test_cell_grid.py holds every cell, through this path, to its step-by-step definition,
gradcheck and gradgradcheck included.)"""

import pytest
import torch
from torch.nn.utils.rnn import pack_sequence
from torch.testing import assert_close

from helpers import python_steps, skip_without_a_compiler, stepped_and_read
from rnnkit.cells import CELLS, Cell
from rnnkit.engine.compiled import kernel_choice
from rnnkit.engine.registered import kernel_of
from rnnkit.engine.traced import TRACED as TRACED_STEPS
from rnnkit.engine.traced import made_for
from rnnkit.nn import runner
from rnnkit.nn.layers import Recurrent


@pytest.fixture(autouse=True)
def the_cpp_steps(monkeypatch):
    if kernel_choice() == "python":
        pytest.skip("RNNKIT_KERNELS=python: every cell runs its Python step, nothing is traced")
    skip_without_a_compiler()
    # An elementwise step takes the derived loops before the traced one (tests/test_derived.py
    # holds those): here they decline every call, so that the traced loop runs.
    monkeypatch.setattr(runner, "derived_direction", lambda *args, **kwargs: None)


TRACED = [name for name in CELLS if kernel_of(CELLS[name]()) is None and not CELLS[name].linear]


def run(layer, x, python: bool):
    """The layer's output, final state and gradients, through the traced loop or (python) the
    cell's own Python step."""
    with python_steps(python):
        output, state = layer(x)
        data = output.data if hasattr(output, "batch_sizes") else output
        state = state if isinstance(state, tuple) else (state,)
        loss = data.pow(2).sum() + sum(s.sum() for s in state)
        gradients = torch.autograd.grad(loss, [*layer.parameters()])
        return data, state, gradients


def packed_batch(dtype):
    generator = torch.Generator().manual_seed(1)
    lengths = (6, 4, 4, 1)
    return pack_sequence([torch.randn(n, 3, generator=generator, dtype=dtype) for n in lengths])


@pytest.mark.parametrize("name", TRACED)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_every_cell_without_registered_loops_takes_the_traced_loop_and_gives_its_steps_results(
    name, dtype
):
    torch.manual_seed(0)
    layer = Recurrent(CELLS[name](), 3, 5, num_layers=2, bidirectional=True).to(dtype)
    x = packed_batch(dtype)
    traced = run(layer, x, python=False)
    programs = made_for(layer.cell, TRACED_STEPS)
    assert programs and all(step is not None for step in programs.values()), (
        f"{name}'s step was not traced: it ran its own Python step"
    )
    python = run(layer, x, python=True)
    exact = {"rtol": 0, "atol": 0} if dtype == torch.float64 else {}
    assert_close(traced[:2], python[:2], **exact)  # the same operators: the same values
    # W_hh's and b_hh's gradients are one product over all steps (kernels/hidden_side.cpp)
    # where the Python step adds one per step: the same sum in another order
    summed = {"rtol": 1e-12, "atol": 1e-14} if dtype == torch.float64 else {}
    assert_close(traced[2], python[2], **summed)


class ReadsItsInput(Cell):
    """A step whose Python looks at a tensor's value: it cannot be traced, and a trace that
    kept one branch would be wrong at the steps that take the other."""

    gates = ("n",)

    def step(self, x, hh, state, p):
        if x.sum() > 0:
            return torch.tanh(x + hh), {}
        return torch.sigmoid(x + hh), {}


class ShapedByTheBatch(Cell):
    """A step whose operators carry the batch size as a constant (a view to (B, 1, H)): its
    trace at one batch size would be wrong at another, so it is not used."""

    gates = ("n",)

    def step(self, x, hh, state, p):
        (h,) = state
        pre = (x + hh).view(x.shape[0], 1, -1)
        return torch.tanh(pre).flatten(1) * 0.5 + 0.5 * h, {}


@pytest.mark.parametrize("cell", [ReadsItsInput, ShapedByTheBatch])
def test_a_step_that_cannot_be_traced_runs_its_own_step(cell):
    torch.manual_seed(0)
    layer = Recurrent(cell(), 3, 4).double()
    x = packed_batch(torch.float64)  # batch sizes 4, 3, 3, 3, 1, 1
    assert_close(run(layer, x, python=False), run(layer, x, python=True))
    programs = made_for(layer.cell, TRACED_STEPS)
    assert programs and all(step is None for step in programs.values())


class ScaledByItsMean(Cell):
    """A step with a reduction the derived programs do not hold: it runs traced."""

    gates = ("h",)

    def step(self, x, hh, state, p):
        h = torch.tanh(x + hh)
        return h * h.mean(dim=-1, keepdim=True), {}


def test_sampling_steps_through_the_traced_step_as_the_model_reads():
    stepper, stepped, read = stepped_and_read(ScaledByItsMean())
    assert_close(stepped, read)
    assert stepper.traced and all(step is not None for step in stepper.traced.values()), (
        "the stepper did not trace the step"
    )
    assert all(found is None for found in stepper.derived.values())


class Scaled(Cell):
    """A step that reads a setting of its class and one of its own: both end up as constants
    of the trace, so changing either after a call must give a new trace."""

    gates = ("n",)
    gain = 1.0

    def __init__(self, leak: float = 0.5) -> None:
        self.leak = leak

    def step(self, x, hh, state, p):
        (h,) = state
        return self.leak * h + torch.tanh(self.gain * (x + hh)), {}


def test_a_setting_changed_after_a_call_is_not_kept_from_the_old_trace():
    torch.manual_seed(0)
    layer = Recurrent(Scaled(), 3, 4).double()
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    run(layer, x, python=False)
    for change in (lambda: setattr(layer.cell, "leak", 0.9), lambda: setattr(Scaled, "gain", 2.0)):
        change()
        assert_close(run(layer, x, python=False), run(layer, x, python=True))
    Scaled.gain = 1.0


class WithNumbers(Cell):
    """A step that mixes Python numbers into tensor arithmetic: the trace holds them as
    torch's argument parser does (wrapped numbers), so a float32 step stays float32."""

    gates = ("n",)

    def step(self, x, hh, state, p):
        (h,) = state
        return torch.tanh(0.5 * x + 2 * hh - 1) * (1 - 0.25) + h / 4, {}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_python_numbers_in_a_step_keep_its_dtype_and_values(dtype):
    torch.manual_seed(0)
    layer = Recurrent(WithNumbers(), 3, 4).to(dtype)
    x = packed_batch(dtype)
    traced = run(layer, x, python=False)
    assert traced[0].dtype == dtype
    assert all(step is not None for step in made_for(layer.cell, TRACED_STEPS).values())
    assert_close(traced, run(layer, x, python=True))


# torch's forward mode loads its decompositions with torch.jit.script, which torch deprecates
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_forward_mode_runs_the_traced_loop_without_the_deferred_weight_gradient():
    import torch.autograd.forward_ad as forward_ad

    torch.manual_seed(0)
    layer = Recurrent(CELLS["layernorm_lstm"](), 3, 5).double()
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    tangent = torch.randn_like(x)
    results = []
    for python in (False, True):
        with python_steps(python), forward_ad.dual_level():
            output, _ = layer(forward_ad.make_dual(x, tangent))
            results.append(forward_ad.unpack_dual(output).tangent)
    assert_close(results[0], results[1])
