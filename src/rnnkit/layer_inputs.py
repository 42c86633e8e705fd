"""A layer's inputs: every torch.nn input form checked and brought to one layout.

The checks raise what torch.nn raises (InputShapeError is both a ValueError and a RuntimeError)
with messages that give the expected shape and the fix, before any computation.
"""

from torch import Tensor

from rnnkit.errors import InputShapeError


def check_data(layer, data: Tensor, expected_dim: int, form: str) -> None:
    name = type(layer).__name__
    if not isinstance(data, Tensor):
        raise TypeError(
            f"{name}: input must be a Tensor or a PackedSequence, got {type(data).__name__}"
        )
    if data.dim() != expected_dim:
        raise InputShapeError(f"{name}: {form} must be {expected_dim}-D, got {data.dim()}-D")
    if data.size(-1) != layer.input_size:
        raise InputShapeError(
            f"{name}: input.size(-1) must be equal to input_size. Expected "
            f"{layer.input_size}, got {data.size(-1)} (input shape {tuple(data.shape)})"
        )
    weight = layer.weight_ih_l0
    if data.dtype != weight.dtype:
        raise InputShapeError(
            f"{name}: input dtype ({data.dtype}) does not match weight dtype "
            f"({weight.dtype}). Convert input: input.to({weight.dtype}), or convert model: "
            f"model.to({data.dtype})"
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
            f"{name}: Expected input to be 2D (T, I) unbatched or 3D {layout} batched, "
            f"got {input.dim()}D with shape {tuple(input.shape)} instead"
        )
    is_batched = input.dim() == 3
    check_data(layer, input, expected_dim=input.dim(), form="input")
    if not is_batched:
        input = input.unsqueeze(1)  # (T, 1, I)
    elif layer.batch_first:
        input = input.transpose(0, 1)  # (T, B, I)
    if input.shape[0] == 0:
        raise InputShapeError(
            f"{name}: Expected sequence length to be larger than 0, got input of shape "
            f"{tuple(input.shape)}; a sequence needs at least one step"
        )
    return input, is_batched


def checked_initial_state(layer, hx, data: Tensor, batch: int, is_batched: bool) -> tuple:
    """h_0 (and c_0), checked and batched: each (L·D, B, ·); zeros when hx is None."""
    name = type(layer).__name__
    layers = layer.num_layers * layer.num_directions
    sizes = [("h_0", layer.output_size)]
    if layer.kind == "LSTM":
        sizes.append(("c_0", layer.hidden_size))
    if hx is None:
        return tuple(data.new_zeros(layers, batch, size) for _, size in sizes)
    if layer.kind == "LSTM":
        if not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise TypeError(
                f"{name}: hx must be a tuple (h_0, c_0) of two tensors, got {type(hx).__name__}"
            )
        states = tuple(hx)
    else:
        if not isinstance(hx, Tensor):
            raise TypeError(f"{name}: hx must be a Tensor h_0, got {type(hx).__name__}")
        states = (hx,)
    checked = []
    for index, ((what, size), state) in enumerate(zip(sizes, states, strict=True)):
        label = f"hx[{index}] ({what})" if layer.kind == "LSTM" else f"hx ({what})"
        if not isinstance(state, Tensor):
            raise TypeError(f"{name}: {label} must be a Tensor, got {type(state).__name__}")
        expected = (layers, batch, size) if is_batched else (layers, size)
        if tuple(state.shape) != expected:
            form = "batched" if is_batched else "unbatched 2-D"
            raise InputShapeError(
                f"{name}: Expected {label} size {expected} for {form} input, got "
                f"{tuple(state.shape)} (num_layers * num_directions = {layers}, batch = "
                f"{batch}, size = {size})"
            )
        if state.dtype != data.dtype or state.device != data.device:
            raise InputShapeError(
                f"{name}: {label} is {state.dtype} on {state.device} but the input is "
                f"{data.dtype} on {data.device}; convert it with .to(input)"
            )
        checked.append(state if is_batched else state.unsqueeze(1))
    return tuple(checked)
