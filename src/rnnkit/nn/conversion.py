"""From rnnkit's layers and cells to torch.nn's classes and back, in one call.

rnnkit's modules have torch.nn's constructor arguments and state_dict keys, so converting is
building the twin with the same arguments and loading the state_dict (weights are copied).
This is the way out for tools keyed by torch's classes: dynamic int8 quantization
(:func:`quantize_dynamic`), ``torch.jit.script`` of a cell (``__prepare_scriptable__`` hands
it a twin that shares the cell's parameters), third-party code that checks
``isinstance(m, nn.LSTM)``.
"""

import copy

import torch
from torch import nn

TORCH_CLASSES = {
    "RNN": nn.RNN,
    "LSTM": nn.LSTM,
    "GRU": nn.GRU,
    "RNNCell": nn.RNNCell,
    "LSTMCell": nn.LSTMCell,
    "GRUCell": nn.GRUCell,
}


# The constructor arguments that only some of torch.nn's classes take (GRU refuses proj_size).
OWN_ARGUMENTS = {"RNN": ("nonlinearity",), "RNNCell": ("nonlinearity",), "LSTM": ("proj_size",)}


def _class_name(module: nn.Module) -> str:
    """The torch.nn class an rnnkit module stands in for ("LSTM", "GRUCell", ...): a cell is
    the one without num_layers."""
    return module.kind + ("" if hasattr(module, "num_layers") else "Cell")


def constructor_arguments(module: nn.Module) -> dict:
    """The arguments that rebuild ``module`` (rnnkit's or torch.nn's) as either class."""
    arguments = {"input_size": module.input_size, "hidden_size": module.hidden_size}
    arguments["bias"] = module.bias
    name = type(module).__name__ if isinstance(module, tuple(TORCH_CLASSES.values())) else None
    name = name or _class_name(module)
    for argument in OWN_ARGUMENTS.get(name, ()):
        arguments[argument] = getattr(module, argument)
    if not name.endswith("Cell"):
        arguments |= {
            "num_layers": module.num_layers,
            "batch_first": module.batch_first,
            "dropout": float(module.dropout),
            "bidirectional": module.bidirectional,
        }
    weight = next(module.parameters())
    return arguments | {"device": weight.device, "dtype": weight.dtype}


def to_torch(module: nn.Module) -> nn.Module:
    """The torch.nn twin of an rnnkit layer or cell, with a copy of its weights."""
    if getattr(module, "weight_dropout", 0.0) or getattr(module, "variational_dropout", False):
        raise ValueError(
            f"{type(module).__name__} uses weight_dropout or variational_dropout, which "
            "torch.nn's classes do not have; set layer.weight_dropout = 0 and "
            "layer.variational_dropout = False first (they only act in training)"
        )
    name = _class_name(module)
    if name not in TORCH_CLASSES:
        raise ValueError(
            f"{type(module).__name__} of the cell {module.cell.label} has no torch.nn twin: "
            "torch.nn has only RNN, LSTM and GRU; keep the rnnkit module"
        )
    twin = TORCH_CLASSES[name](**constructor_arguments(module))
    twin.load_state_dict(module.state_dict())
    return twin.train(module.training)


def from_torch(cls, module: nn.Module) -> nn.Module:
    """An rnnkit module of class ``cls`` built from torch.nn's ``module``, weights copied."""
    expected = TORCH_CLASSES[cls.kind + ("Cell" if cls.__name__.endswith("Cell") else "")]
    if type(module) is not expected:
        raise TypeError(
            f"{cls.__name__}.from_torch expects a torch.nn.{expected.__name__}, got "
            f"{type(module).__module__}.{type(module).__name__}; convert each module with the "
            "rnnkit class of the same name"
        )
    ours = cls(**constructor_arguments(module))
    ours.load_state_dict(module.state_dict())
    return ours.train(module.training)


def scriptable_twin(module: nn.Module) -> nn.Module:
    """What ``torch.jit.script`` compiles in place of an rnnkit cell: its torch.nn twin,
    sharing the same Parameter objects, so training the scripted module trains this one.
    A layer is refused at once: torch 2.13 cannot script torch.nn's RNN layers either."""
    if not _class_name(module).endswith("Cell"):
        raise RuntimeError(
            f"torch.jit.script cannot compile rnnkit.{type(module).__name__} (nor torch.nn's "
            "RNN layers in this torch): use torch.compile(module) to compile it, or "
            "torch.export.export / torch.jit.trace to export it"
        )
    try:
        twin = to_torch(module)
    except ValueError as error:
        raise RuntimeError(
            f"torch.jit.script compiles an rnnkit module as its torch.nn twin, and here there "
            f"is none: {error}. torch.compile and torch.export run rnnkit's own code instead"
        ) from None
    for name, parameter in module.named_parameters(recurse=False):
        setattr(twin, name, parameter)
    return twin


def quantize_dynamic(model: nn.Module, dtype: torch.dtype = torch.qint8) -> nn.Module:
    """A copy of ``model`` with dynamic int8 (or float16) quantization, as
    ``torch.ao.quantization.quantize_dynamic`` gives for torch.nn's modules: every rnnkit
    LSTM, GRU and cell becomes its torch.nn twin first, then torch quantizes those and the
    Linear layers (torch has no quantized Elman RNN layer: rnnkit.RNN stays float)."""
    model = copy.deepcopy(model)
    if isinstance(model, TorchTwin):
        model = to_torch(model)
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, TorchTwin):
                setattr(parent, child_name, to_torch(child))
    quantizable = {nn.Linear, nn.LSTM, nn.GRU, nn.LSTMCell, nn.GRUCell, nn.RNNCell}
    return torch.ao.quantization.quantize_dynamic(model, quantizable, dtype=dtype)


class TorchTwin:
    """The conversions as methods of rnnkit's layers and cells."""

    def to_torch(self) -> nn.Module:
        """The torch.nn module of the same class name, arguments and weights (a copy)."""
        return to_torch(self)  # type: ignore[arg-type]

    @classmethod
    def from_torch(cls, module: nn.Module):
        """This rnnkit class built from a torch.nn module of the same name (weights copied)."""
        return from_torch(cls, module)

    def __prepare_scriptable__(self) -> nn.Module:
        # torch.jit.script calls this first and compiles what it returns.
        return scriptable_twin(self)  # type: ignore[arg-type]
