"""A layer's inputs: every torch.nn input form checked and brought to one layout.

The checks raise what torch.nn raises (InputShapeError is both a ValueError and a RuntimeError)
with messages that give the expected shape and the fix, before any computation.
"""

import torch
from torch import Tensor

from rnnkit.errors import InputShapeError


def check_data(layer, data: Tensor, expected_dim: int, form: str) -> None:
    name = type(layer).__name__
    if not isinstance(data, Tensor):
        raise TypeError(
            f"{name}: input must be a Tensor or a PackedSequence, got {type(data).__name__}"
        )
    if data.dim() != expected_dim:
        raise InputShapeError(
            f"input must have {expected_dim} dimensions, got {data.dim()} ({name}: {form} "
            f"must be {expected_dim}-D, got shape {tuple(data.shape)})"
        )
    if data.size(-1) != layer.input_size:
        raise InputShapeError(
            f"{name}: input.size(-1) must be equal to input_size. Expected "
            f"{layer.input_size}, got {data.size(-1)} (input shape {tuple(data.shape)})"
        )
    weight = layer.weight_ih_l0
    if data.dtype != weight.dtype:
        raise InputShapeError(
            f"RNN input dtype ({data.dtype}) does not match weight dtype ({weight.dtype}). "
            f"Convert input: input.to({weight.dtype}), or convert model: model.to({data.dtype}) "
            f"({name}: the input and the weights must have one dtype)"
        )
    if data.device != weight.device:
        raise InputShapeError(
            f"{name}: input is on {data.device} but the weights are on {weight.device}; "
            f"move one of them: input.to({str(weight.device)!r}) or "
            f"model.to({str(data.device)!r})"
        )


def time_major(layer, input) -> tuple[Tensor, bool]:
    """Check a padded input and return it time-major (T, B, I), and whether it was batched."""
    name = type(layer).__name__
    if not isinstance(input, Tensor):
        raise TypeError(
            f"{name}: input must be a Tensor or a PackedSequence, got {type(input).__name__}"
        )
    if input.dim() not in (2, 3):
        layout = "(B, T, I)" if layer.batch_first else "(T, B, I)"
        raise InputShapeError(
            f"{layer.kind}: Expected input to be 2D or 3D, got {input.dim()}D"
            f"{layer.dimension_noun} instead "
            f"({name}: the input is (T, I) unbatched or {layout} batched; got shape "
            f"{tuple(input.shape)})"
        )
    is_batched = input.dim() == 3
    check_data(layer, input, expected_dim=input.dim(), form="input")
    if not is_batched:
        input = input.unsqueeze(1)  # (T, 1, I)
    elif layer.batch_first:
        input = input.transpose(0, 1)  # (T, B, I)
    # Not while jit.trace records (it would freeze the check into the graph as a constant).
    if not torch.jit.is_tracing() and input.shape[0] == 0:
        raise InputShapeError(
            f"Expected sequence length to be larger than 0 in RNN ({name}: got input of shape "
            f"{tuple(input.shape)}; a sequence needs at least one step)"
        )
    return input, is_batched


def checked_initial_state(layer, hx, data: Tensor, batch: int, is_batched: bool) -> tuple:
    """The initial states (h_0, and c_0 for the LSTM: one per state of the cell), checked and
    batched: each (L·D, B, ·); zeros when hx is None."""
    name = type(layer).__name__
    layers = layer.num_layers * layer.num_directions
    state_names = layer.cell.states
    several = len(state_names) > 1  # the state is a tuple, not a tensor
    sizes = [
        (f"{state}_0", size)
        for state, size in zip(
            state_names, layer.cell.state_sizes(layer.hidden_size, layer.proj_size), strict=True
        )
    ]
    if hx is None:
        return tuple(data.new_zeros(layers, batch, size) for _, size in sizes)
    if several:
        if not (isinstance(hx, (tuple, list)) and len(hx) == len(sizes)):
            wanted = ", ".join(what for what, _ in sizes)
            raise TypeError(
                f"{name}: hx must be a tuple ({wanted}) of {len(sizes)} tensors, got "
                f"{type(hx).__name__}"
            )
        states = tuple(hx)
    else:
        if not isinstance(hx, Tensor):
            raise TypeError(f"{name}: hx must be a Tensor h_0, got {type(hx).__name__}")
        states = (hx,)
    for index, state in enumerate(states):
        if not isinstance(state, Tensor):
            label = f"hx[{index}]" if several else "hx"
            raise TypeError(f"{name}: {label} must be a Tensor, got {type(state).__name__}")
    check_state_dims(layer, states, is_batched)
    checked = []
    for index, ((what, size), state) in enumerate(zip(sizes, states, strict=True)):
        label = f"hx[{index}] ({what})" if several else f"hx ({what})"
        expected = (layers, batch, size) if is_batched else (layers, size)
        if tuple(state.shape) != expected:
            held = f"hidden[{index}]" if several else "hidden"
            as_batched = list(state.shape if is_batched else state.unsqueeze(1).shape)
            raise InputShapeError(
                f"Expected {held} size {(layers, batch, size)}, got {as_batched} ({name}: "
                f"{label} is (num_layers * num_directions, batch, size) = {expected}"
                f"{'' if is_batched else ' for unbatched input'})"
            )
        if state.dtype != data.dtype or state.device != data.device:
            raise InputShapeError(
                f"{name}: {label} is {state.dtype} on {state.device} but the input is "
                f"{data.dtype} on {data.device}; convert it with .to(input)"
            )
        checked.append(state if is_batched else state.unsqueeze(1))
    return tuple(checked)


def check_state_dims(layer, states: tuple[Tensor, ...], is_batched: bool) -> None:
    """The states have as many dimensions as the input (torch.nn's check and wording)."""
    wanted = 3 if is_batched else 2
    if all(state.dim() == wanted for state in states):
        return
    form = "batched 3-D" if is_batched else "unbatched 2-D"
    if len(states) > 1:
        dims = ", ".join(f"{state.dim()}-D" for state in states)
        text = f"For {form} input, hx and cx should also be {wanted}-D but got ({dims}) tensors"
    else:
        text = f"For {form} input, hx should also be {wanted}-D but got {states[0].dim()}-D tensor"
    raise InputShapeError(
        f"{text} ({type(layer).__name__}: a state is (num_layers * num_directions"
        f"{', batch' if is_batched else ''}, size))"
    )
