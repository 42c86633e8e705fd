"""Which code runs a layer's call: the one place that decides.

Three engines compute the same recurrence (tests hold each to the reference in float64):

    reference  the cells' equations step by step under autograd (rnnkit.nn.recurrence): rnnkit's
               readable code; runs every call, and every PyTorch transform sees through it
               (where nothing is recorded, eagerly on the CPU, the loop of a direction is
               one C++ call of the same equations: see cell_steps below)
    bptt       rnnkit's hand-written backpropagation through time (engine/lstm.py, gru.py,
               rnn.py): C++ time loops on the CPU, the same loops in Python elsewhere
    fused      torch's own RNN kernel (torch's code, not ours), called with rnnkit's
               parameters exactly as torch.nn calls it (engine/fused.py): oneDNN's fused
               primitive for a float32 LSTM on the CPU, cuDNN on CUDA

``engine="auto"`` (the default) picks for each call, first rule that matches:

    a cell with no registered fast paths      reference  its own step is all there is
                                                         (every cell but RNN, LSTM and GRU:
                                                         engine/registered.py)
    recording (trace, probe_gradients)        reference  the only one that keeps every step
    torch.jit.trace, torch.export, ONNX       fused      the ops every exporter translates
                                                         (ONNX LSTM/GRU/RNN nodes): exports
                                                         behave as torch.nn's
    a torch.func transform (vmap, grad, ...)  reference  plain tensor operations compose
    autocast                                  fused      the precisions torch.nn runs in
                                              reference  where torch's kernel cannot run
                                                         under it (oneDNN's bfloat16 LSTM on
                                                         a CPU without the instructions:
                                                         engine/fused.py)
    float32 LSTM with proj_size on the CPU    fused      our loops have no projection, and
                                                         the reference is slower than torch's
    packed input or proj_size                 reference  the loops need equal lengths
    not float32 / float64                     reference  the loops are written for these two
    CUDA                                      fused      cuDNN (the loops run in Python there)
    float32 LSTM on the CPU                   fused      oneDNN is faster than our loops
                                                         (its torch_kernel_first, registered.py)
    everything else                           bptt       faster than torch.nn (performance.md)

``route`` turns the engine into the concrete path of the call (``Route``): whether the trace is
recorded or recomputed, whether the layers run one at a time (variational dropout), and how
the reference's loop runs. A cell's step (RNNCell, LSTMCell, GRUCell), and the reference
engine's loop where nothing is recorded, is one of two codes for the three registered cells,
the same equations either way (``cell_steps``): on the CPU, in float32 or float64, eagerly,
the C++ step of engine/kernels/cell_steps.cpp, whose ATen calls autograd records as it records
the cell's own step (so every gradient, second order included, is the definition's); under
an exporter, torch.compile, a torch.func transform or autocast, or with RNNKIT_KERNELS=python,
the cell's own step (rnnkit.cells), which all of them see through. When that loop needs no
gradient (no tensor requires one, or grad mode is off, and no forward-mode tangent) and has
no projection, the route is "cpp_inference": engine/kernels/packed_inference.cpp, the same
equations, one pass over the gates a step. A linear cell (h_t = a_t ⊙ h_{t-1} + b_t, minGRU
and minLSTM: cells/linear.py) computes a and b for every step at once and solves the
recurrence by a scan (engine/scan.py): sequential on the CPU, where it is the faster of the
two (docs/performance.md), parallel on CUDA; under jit.trace, the ONNX exporters and torch.func's
transforms, or when recording, it runs its step. Every other cell runs its own step: where the
C++ steps would serve a registered cell (and nothing is recorded, no exporter or transform
watches), the step traced once into the ATen operators it calls, which a C++ loop runs
(loop "traced", engine/traced.py: the same operators, so the same values and gradients, without
a trip through Python per operation), else the Python step itself. On that loop a step that is
elementwise after its two products, with no forward-mode tangent (equal lengths or packed),
runs as its derived loops instead (engine/derived_loop.py: the step and its derived backward as two
programs, one pass a step, as the hand-written loops run the LSTM); nn/runner.py asks them
first, and they decline every other call.

Under torch.compile the bptt engine's loops are custom operators inside the compiled graph
(engine/ops.py: inductor calls them and compiles the rest of the model around them); a call
on another engine runs eagerly inside the compiled program (``runs_eagerly_under_compile``: a
graph break, as torch.compile does for torch.nn's RNN modules), except a requested reference,
which inductor compiles. Compiling the time loop unrolls it, which takes long at any real
length and makes every new length a new graph; a cell without registered loops is therefore
traced as one operator (loop "operator", engine/cell_loop.py).

Under torch.export, ``engine="bptt"`` records each direction's loop as one custom operator
whose sequence length is a symbol, so the exported program runs at any length (it needs rnnkit
to run); auto exports torch's RNN ops, which every exporter knows (ONNX included): the
TorchScript ONNX exporter keeps the length dynamic, torch.export fixes it, as for torch.nn's
layers.

A requested engine runs wherever it can and hands the call over to auto's choice where it
cannot (bptt with packed input, fused while recording, ...): never an error, never a wrong
answer. Every engine gives exact second-order gradients on the CPU: bptt's backward
recomputes the direction with the reference equations when a graph of the gradient is being
built. (On CUDA, cuDNN has no double backward, for torch.nn's layers too: use engine="bptt"
or "reference" there for second order; not measured here, no GPU was available.)
"""

import os
from dataclasses import dataclass

import torch

ENGINES = ("auto", "fused", "bptt", "reference")


@dataclass(frozen=True)
class Call:
    """What decides the path of one call of a layer."""

    kernel: str | None  # the cell's registered fast paths (engine/registered.py), or None
    dtype: torch.dtype
    device: torch.device
    packed: bool
    projected: bool
    recording: bool  # trace() or probe_gradients
    probing: bool = False  # probe_gradients: ∂L/∂h_t through a tensor added to every h_t
    variational: bool = False  # variational dropout masks between layers in this call
    dropout_running: bool = False  # any dropout acts in this call (training, p > 0)
    needs_gradient: bool = True  # autograd records this call (backward or forward mode)
    cpp_steps: bool = False  # the C++ steps of kernels/cell_steps.cpp serve this call
    linear: bool = False  # the cell's recurrence is linear in h (cells/linear.py)
    torch_kernel_first: bool = False  # its fast paths prefer torch's kernel (float32, CPU)
    # torch's kernel runs under the autocast active now (not so for the LSTM on a CPU without
    # bfloat16 instructions: engine/fused.py's runs_under_autocast)
    kernel_autocasts: bool = True


@dataclass(frozen=True)
class Route:
    """The concrete path of one call: every choice of what runs a layer, made in one place.

    engine     "fused" (torch's kernel), "bptt" (rnnkit's hand-written BPTT) or "reference"
               (the cell's step under autograd)
    loop       how the reference's time loop runs: "python" (the cell's own step, any cell),
               "cpp" (the registered C++ steps, which autograd records), "cpp_inference"
               (the registered C++ inference loop: nothing needs a gradient), "traced" (any
               other cell's step traced into ATen operators that a C++ loop runs, which
               autograd records: engine/traced.py), or for a linear
               cell "scan" (one multiply-add per step, a custom operator) or "parallel_scan"
               (log2(T) rounds of tensor operations: CUDA), or under torch.compile and
               torch.export "operator" (any cell's step loop as one custom operator,
               engine/cell_loop.py); "" otherwise
    per_layer  one layer at a time, a variational dropout mask between layers
    trace      "none", "recorded" (every step kept by the reference) or "recomputed" (torch's
               kernel, then the record recomputed from the outputs: nn/trace_fast.py)
    """

    engine: str
    loop: str = ""
    per_layer: bool = False
    trace: str = "none"

    @property
    def name(self) -> str:
        parts = [self.engine + (f" ({self.loop} loop)" if self.loop else "")]
        if self.per_layer:
            parts.append("per layer")
        if self.trace != "none":
            parts.append(f"trace {self.trace}")
        return ", ".join(parts)


def check_engine(engine: object) -> str:
    if engine not in ENGINES:
        raise ValueError(
            f"engine must be one of {', '.join(ENGINES)}, got {engine!r}; 'auto' picks the "
            "fastest one that supports the call"
        )
    return engine  # type: ignore[return-value]


def exporting() -> bool:
    """torch.jit.trace (and the TorchScript ONNX exporter) or torch.export (and the dynamo
    ONNX exporter) is recording the call as a graph."""
    return onnx_or_jit() or torch.compiler.is_exporting()


def onnx_or_jit() -> bool:
    """An exporter that knows only torch's own operators is recording the call."""
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()


def compiling() -> bool:
    return torch.compiler.is_compiling()


def runs_eagerly_under_compile(requested: str, route: "Route") -> bool:
    """torch.compile is tracing a call that should run eagerly (a graph break): any engine but
    bptt (its loops are custom operators the graph holds, engine/ops.py), a linear cell's scan
    (a custom operator too, engine/scan.py) and a requested reference (which inductor
    compiles)."""
    if route.engine == "bptt" or route.loop in ("scan", "parallel_scan", "operator"):
        return False
    if requested == "reference":
        return False
    return compiling() and not exporting()


def transforming() -> bool:
    """A torch.func transform (vmap, grad, jacrev, jvp, functionalize) is active."""
    return torch._C._are_functorch_transforms_active()


def autocasting(device: torch.device) -> bool:
    return device.type in ("cpu", "cuda") and torch.is_autocast_enabled(device.type)


def supports(engine: str, call: Call) -> bool:
    """Whether ``engine`` can run ``call`` (in the current transform and compile state)."""
    if engine == "reference":
        return True
    if call.recording or call.kernel is None:
        return False
    if engine == "fused":  # under vmap torch.nn's own kernel fails too (docs/compatibility.md)
        return (call.device.type in ("cpu", "cuda") and not transforming()
                and not (autocasting(call.device) and not call.kernel_autocasts))  # fmt: skip
    # bptt: hand-written loops over plain storage, equal lengths, no projection; custom
    # operators that torch.compile and torch.export hold as nodes (engine/ops.py), but that
    # jit.trace and the ONNX exporters cannot translate.
    return (
        call.dtype in (torch.float32, torch.float64)
        and not (call.packed or call.projected)
        and not (onnx_or_jit() or transforming() or autocasting(call.device))
        and call.device.type in ("cpu", "cuda")
    )


def choose(requested: str, call: Call) -> str:
    """The engine that runs ``call``: the requested one where it can, else auto's choice."""
    if requested != "auto" and supports(requested, call):
        return requested
    return auto(call)


def auto(call: Call) -> str:
    """The fastest engine that supports the call (the table in the module docstring)."""
    if call.recording or call.kernel is None:
        return "reference"
    if exporting():
        return "fused"
    if transforming():
        return "reference"
    if autocasting(call.device):
        return "fused" if call.kernel_autocasts else "reference"
    # (only a projectable cell takes proj_size, and of the registered ones that is the LSTM)
    projected = call.projected and not call.packed
    if projected and call.device.type == "cpu" and call.dtype == torch.float32:
        return "fused"
    if call.packed or call.projected or call.dtype not in (torch.float32, torch.float64):
        return "reference"
    if call.device.type == "cuda":
        return "fused"
    if call.device.type != "cpu":
        return "reference"
    if call.torch_kernel_first and call.dtype == torch.float32:
        return "fused"
    return "bptt"


def route(requested: str, call: Call) -> Route:
    """The path of ``call`` (tests/test_dispatch.py holds this as a table)."""
    if call.recording and recomputes_trace(call):
        return Route("fused", per_layer=True, trace="recomputed")
    engine = choose(requested, call)
    trace = "recorded" if call.recording else "none"
    if engine == "fused" and call.variational and call.packed:
        engine = "reference"  # torch's kernel one layer at a time needs equal lengths
    loop = ""
    if engine == "reference":
        loop = "python"
        if call.linear and not call.recording and not (onnx_or_jit() or transforming()):
            # The scan is a custom operator: exporters of torch's own ops and torch.func's
            # transforms see through the step loop instead.
            loop = "parallel_scan" if call.device.type == "cuda" else "scan"
        elif traced_whole(call):
            loop = "operator"
        elif call.kernel is not None and call.cpp_steps and not call.recording:
            inference = not (call.needs_gradient or call.projected)
            loop = "cpp_inference" if inference else "cpp"
        elif call.cpp_steps and not (call.recording or onnx_or_jit() or transforming()):
            loop = "traced"  # any other cell: its step traced once, run by a C++ loop
    return Route(engine, loop, per_layer=call.variational, trace=trace)


def traced_whole(call: Call) -> bool:
    """A cell without registered loops, traced by torch.compile or torch.export: its loop as
    one custom operator (engine/cell_loop.py) instead of T unrolled steps. Equal lengths, all
    layers at once, nothing recorded; not for jit.trace, ONNX or torch.func's transforms."""
    return (
        call.kernel is None
        and not (call.linear or call.recording or call.packed or call.variational)
        and (compiling() or exporting())
        and not (onnx_or_jit() or transforming())
    )


def recomputes_trace(call: Call) -> bool:
    """Whether a trace can be recomputed from the outputs of torch's kernel: a registered
    cell, nothing to differentiate, equal lengths, no projection, no dropout running, a
    floating dtype torch's CPU kernel takes, and no compiler or transform watching."""
    return (
        call.kernel is not None
        and not (call.probing or call.packed or call.projected or call.dropout_running)
        and not call.needs_gradient
        and call.dtype in (torch.float32, torch.float64)
        and call.device.type in ("cpu", "cuda")
        and not compiling()
        and not transforming()
    )


def records_backward(*tensors: torch.Tensor | None) -> bool:
    """Autograd's backward mode would record a call on these tensors: grad mode on and one
    requires a gradient."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def forward_mode_open() -> bool:
    """A torch.autograd.forward_ad level is open: a tangent may ride on any tensor."""
    from torch.autograd import forward_ad

    return forward_ad._current_level >= 0


def needs_gradient(*tensors: torch.Tensor | None) -> bool:
    """Autograd would record a call on these tensors: backward mode or forward mode (one
    carries a tangent of torch.autograd.forward_ad)."""
    if records_backward(*tensors):
        return True
    if not forward_mode_open():
        return False
    from torch.autograd import forward_ad

    return any(t is not None and forward_ad.unpack_dual(t).tangent is not None for t in tensors)


def only_backward_mode(*tensors: torch.Tensor | None) -> bool:
    """Autograd records a call on these tensors in backward mode and no forward-mode
    (torch.autograd.forward_ad) level is open: what a C++ loop's own autograd nodes, which
    have no forward-mode formula, need (kernels/hidden_side.cpp)."""
    return records_backward(*tensors) and not forward_mode_open()


def cell_steps(x: torch.Tensor):
    """The compiled cell steps (kernels/cell_steps.cpp) for a cell called on ``x``, or None
    where the reference equations are to run (see the module docstring)."""
    # A cell called in a Python loop asks this every step, so each test is the cheapest that
    # answers it: CPU autocast is asked of the CPU (x is on it by then), and recording a graph
    # is jit.trace or torch.export (torch.compile's tracing aside), which both ONNX exporters
    # run under: torch.onnx.is_in_onnx_export, which would say it again, costs more than the
    # rest of the tests together.
    if not x.is_cpu or x.dtype not in _STEP_DTYPES:
        return None
    if (compiling() or transforming() or torch.is_autocast_enabled("cpu")
            or torch.jit.is_tracing() or torch.compiler.is_exporting()):  # fmt: skip
        return None
    choice = os.environ.get("RNNKIT_KERNELS")  # read each call: tests switch it at run time
    if choice not in _CELL_STEPS:
        from rnnkit.engine.compiled import loops

        _CELL_STEPS[choice] = loops()
    return _CELL_STEPS[choice]


_STEP_DTYPES = (torch.float32, torch.float64)
_CELL_STEPS: dict = {}
"""RNNKIT_KERNELS's value -> the compiled steps, or None (the Python reference)."""
