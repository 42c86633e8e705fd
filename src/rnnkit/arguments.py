"""Checks of constructor arguments shared by the cells and the layers.

The exception types are torch.nn's (TypeError for a wrong type, ValueError for a wrong value), so
code that catches torch.nn's errors catches ours; the messages add what to do about it.
"""

import numbers


def check_positive_int(name: str, value: object) -> None:
    # bool is an int in Python; LSTM(4, True) is a mistake, not a hidden size of 1.
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(
            f"{name} should be of type int, got: {type(value).__name__} (pass a whole number, "
            f"e.g. {name}=int({value!r}))"
        )
    if value <= 0:
        raise ValueError(f"{name} must be greater than zero, got {value}")


def check_size(name: str, value: object, allow_zero: bool) -> None:
    """A size of the input or the state: a positive int (0 allowed where torch.nn allows it)."""
    if allow_zero and isinstance(value, int) and not isinstance(value, bool) and value == 0:
        return
    check_positive_int(name, value)


def check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise TypeError(
            f"{name} should be of type bool, got: {type(value).__name__} (pass True or False)"
        )


def check_nonlinearity(value: object) -> None:
    if value not in ("tanh", "relu"):
        raise ValueError(
            f"Unknown nonlinearity {value!r}. Select from 'tanh' or 'relu'. (Other activations "
            "need a cell of your own: see rnnkit.cells and docs/cells.md.)"
        )


def check_dropout(value: object) -> None:
    if not isinstance(value, numbers.Number) or isinstance(value, bool) or not 0 <= value <= 1:  # type: ignore[operator]
        raise ValueError(
            "dropout should be a number in range [0, 1] representing the probability of an "
            f"element being zeroed, got {value!r}"
        )


def check_proj_size(proj_size: object, hidden_size: int) -> None:
    if not isinstance(proj_size, int) or isinstance(proj_size, bool):
        raise TypeError(f"proj_size should be of type int, got: {type(proj_size).__name__}")
    if proj_size < 0:
        raise ValueError(
            f"proj_size should be a positive integer or zero to disable projections, "
            f"got {proj_size}"
        )
    if proj_size >= hidden_size:
        raise ValueError(
            f"proj_size has to be smaller than hidden_size, got proj_size={proj_size} and "
            f"hidden_size={hidden_size}"
        )
