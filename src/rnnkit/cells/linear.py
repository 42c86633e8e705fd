"""Cells whose recurrence is linear in h: h_t = a_t ⊙ h_{t-1} + b_t, a_t and b_t from x_t alone.

Such a cell writes ``coefficients(x, p)`` instead of ``step``: from the input side x (any
number of rows, G·H columns) it returns a, b (each rows × H) and the gates to record. Its step
is derived from them, so the equations exist once, and because nothing in a and b reads the
state, rnnkit computes them for every time step at once and solves the recurrence by a scan
(rnnkit.engine.scan) instead of a step per time step: a sequential pass of one multiply-add
per step, or a parallel prefix scan where that is faster (CUDA).
"""

from torch import Tensor

from rnnkit.cells.definition import Cell, Parameters


class LinearCell(Cell):
    """A cell with one state, h, and h_t = a_t ⊙ h_{t-1} + b_t (see the module docstring)."""

    hidden_gates = ()  # no hidden matrix: the coefficients read x_t only
    linear = True

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "step" in vars(cls):
            raise TypeError(
                f"{cls.__name__}: a LinearCell defines coefficients(x, p) -> (a, b, gates), "
                "not step (its step is a ⊙ h + b); subclass Cell to write a step of your own"
            )

    def coefficients(self, x: Tensor, p: Parameters) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        raise NotImplementedError(
            f"{type(self).__name__} must define coefficients(x, p) -> (a, b, gates)"
        )

    def step(self, x, hh, state, p):
        (h,) = state
        a, b, gates = self.coefficients(x, p)
        return a * h + b, gates
