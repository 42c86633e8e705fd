"""Which PyTorch workflows work with torch.nn's RNN layers and with rnnkit's: tried, not claimed.

    .venv/bin/python bench/compat.py                               # prints the table (~3 min)
    .venv/bin/python bench/compat.py --write docs/compatibility.md # writes the page
    .venv/bin/python bench/compat.py --check docs/compatibility.md --skip-slow   # CI: no drift

Every workflow runs on torch.nn.{RNN, LSTM, GRU} and on rnnkit's, built with the same weights.
torch.nn's cell says whether it ran; rnnkit's says whether it ran *and gave torch.nn's result*
(float64 unless the workflow is about another precision), or, where torch.nn fails, whether it
ran and agreed with rnnkit's own eager result. A cell that fails shows the first words of the
error.
"""

import argparse
import copy
import datetime
import io
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.func import functional_call, grad, jacrev, jvp, vmap

import rnnkit

KINDS = ("RNN", "LSTM", "GRU")
LIBRARIES = {"torch.nn": nn, "rnnkit": rnnkit}


def make(library: str, kind: str, dtype=torch.float64, engine="auto", **kwargs) -> nn.Module:
    """torch.nn's or rnnkit's layer (on ``engine``), always with the same weights (torch.nn's
    initialisation from seed 0), 2 layers, bidirectional, 3 inputs, 4 hidden units."""
    torch.manual_seed(0)
    settings = {"num_layers": 2, "bidirectional": True} | kwargs
    reference = getattr(nn, kind)(3, 4, **settings)
    ours = {"engine": engine} if library == "rnnkit" else {}
    module = getattr(LIBRARIES[library], kind)(3, 4, **settings, **ours)
    module.load_state_dict(reference.state_dict())
    return module.to(dtype)


def sequence(dtype=torch.float64, steps=5, batch=3, requires_grad=False) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(steps, batch, 3, generator=generator, dtype=torch.float64).to(dtype)
    return x.requires_grad_(requires_grad)


# Each workflow: (library, kind) -> what it computed (compared across libraries).


def gradient_penalty(library, kind):
    layer = make(library, kind)
    x = sequence(requires_grad=True)
    (dx,) = torch.autograd.grad(layer(x)[0].tanh().sum(), x, create_graph=True)
    return torch.autograd.grad(dx.pow(2).sum(), list(layer.parameters()))


def gradgradcheck(library, kind):
    layer = make(library, kind, num_layers=1, bidirectional=False)
    x = sequence(steps=3, batch=2, requires_grad=True)
    return torch.tensor(torch.autograd.gradgradcheck(lambda x: layer(x)[0], (x,)))


def per_sample_gradients(library, kind):
    layer = make(library, kind, batch_first=True)
    parameters = {name: p.detach() for name, p in layer.named_parameters()}

    def loss(parameters, sample):
        return functional_call(layer, parameters, (sample.unsqueeze(0),))[0].pow(2).sum()

    batch = sequence().transpose(0, 1)
    return vmap(grad(loss), in_dims=(None, 0))(parameters, batch)


def jacobian(library, kind):
    layer = make(library, kind)
    return jacrev(lambda x: layer(x)[0])(sequence(steps=3, batch=2))


def forward_mode(library, kind):
    layer = make(library, kind)
    x = sequence(steps=3, batch=2)
    return jvp(lambda x: layer(x)[0], (x,), (torch.ones_like(x),))[1]


def batched_gradcheck(library, kind):
    layer = make(library, kind, num_layers=1, bidirectional=False)
    x = sequence(steps=3, batch=2, requires_grad=True)
    check = torch.autograd.gradcheck(lambda x: layer(x)[0], (x,), check_batched_grad=True)
    return torch.tensor(check)


def compiled(library, kind):
    """rnnkit's GRU and RNN: the C++ loops inside the graph; its float32 LSTM runs torch's
    kernel eagerly inside the compiled program, as torch.nn's layers do."""
    torch._dynamo.reset()
    layer = make(library, kind, torch.float32)
    x = sequence(torch.float32, requires_grad=True)
    output = torch.compile(layer)(x)[0]
    return [output, *torch.autograd.grad(output.pow(2).sum(), [x, *layer.parameters()])]


def exported(dimension: int, engine: str = "auto"):
    def workflow(library, kind):
        layer = make(library, kind, torch.float32, engine).eval()
        size = torch.export.Dim("size", min=2, max=64)
        program = torch.export.export(
            layer, (sequence(torch.float32),), dynamic_shapes=({dimension: size},)
        )
        steps, batch = (9, 3) if dimension == 0 else (5, 7)  # only that dimension changes
        return program.module()(sequence(torch.float32, steps=steps, batch=batch))

    return workflow


def onnx_exported(dynamo: bool, dimension: int | None):
    """Export, then run in onnxruntime at another length (dimension 0), batch (1) or both."""

    def workflow(library, kind):
        import onnxruntime

        layer = make(library, kind, torch.float32).eval()
        x = sequence(torch.float32)
        buffer = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if dynamo:
                size = torch.export.Dim("size", min=2, max=64)
                shapes = ({dimension: size},)
                # The first dynamo export of a kind in a process can fix every size (torch.nn's
                # layers too): export once to warm up, then export what is measured.
                torch.onnx.export(layer, (x,), dynamic_shapes=shapes, dynamo=True, verbose=False)
                program = torch.onnx.export(
                    layer, (x,), dynamic_shapes=shapes, dynamo=True, verbose=False
                )
                program.save(buffer)
            else:
                axes = {"x": {0: "steps", 1: "batch"}}
                torch.onnx.export(
                    layer, (x,), buffer, input_names=["x"], dynamic_axes=axes, dynamo=False
                )
        session = onnxruntime.InferenceSession(buffer.getvalue())
        steps, batch = (9, 7) if dimension is None else ((9, 3) if dimension == 0 else (5, 7))
        other = sequence(torch.float32, steps=steps, batch=batch)
        return torch.from_numpy(session.run(None, {session.get_inputs()[0].name: other.numpy()})[0])

    return workflow


def traced(library, kind):
    layer = make(library, kind, torch.float32, batch_first=True)
    x, other = sequence(torch.float32), sequence(torch.float32, steps=8, batch=6)
    module = torch.jit.trace(layer, (x,), check_inputs=[(other,)])
    return module(sequence(torch.float32, steps=2, batch=2))


def scripted(library, kind):
    layer = make(library, kind, torch.float32)
    return torch.jit.script(layer)(sequence(torch.float32))


def low_precision(dtype):
    def workflow(library, kind):
        layer = make(library, kind, dtype)
        x = sequence(dtype, requires_grad=True)
        output = layer(x)[0]
        (dx,) = torch.autograd.grad(output.float().pow(2).sum(), x)
        return [output, dx]

    return workflow


def autocast(library, kind):
    layer = make(library, kind, torch.float32)
    with torch.autocast("cpu", torch.bfloat16):
        output, state = layer(sequence(torch.float32))
    return [output, *torch.utils._pytree.tree_leaves(state)]


def quantized(library, kind):
    model = nn.Sequential(make(library, kind, torch.float32, num_layers=1, bidirectional=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if library == "rnnkit":
            model = rnnkit.quantize_dynamic(model)
        else:
            model = torch.ao.quantization.quantize_dynamic(model, {nn.LSTM, nn.GRU})
    if "quantized" not in type(model[0]).__module__:
        raise TypeError(f"not quantized: {type(model[0]).__name__} stayed float")
    return model(sequence(torch.float32))[0]


def parametrized(which: str):
    """In eval mode: spectral_norm's power iteration runs at every read of the weight in
    training, and torch.nn and rnnkit read a weight a different number of times per call."""

    def workflow(library, kind):
        layer = make(library, kind).eval()
        parametrize = getattr(nn.utils.parametrizations, which)
        parametrize(layer, "weight_hh_l0")
        x = sequence(requires_grad=True)
        output = layer(x)[0]
        return [output, *torch.autograd.grad(output.sum(), [x, *layer.parameters()])]

    return workflow


def saved_and_copied(library, kind):
    layer = make(library, kind)
    buffer = io.BytesIO()
    torch.save(layer.state_dict(), buffer)
    twin = copy.deepcopy(layer)
    twin.load_state_dict(torch.load(io.BytesIO(buffer.getvalue()), weights_only=True))
    return twin(sequence())[0]


def meta_device(library, kind):
    layer = make(library, kind).to("meta")
    output, _ = layer(sequence().to("meta"))
    return torch.tensor(output.shape)


def cell_of_size_zero(library, kind):
    cell = getattr(LIBRARIES[library], kind + "Cell")(3, 0)
    output = cell(sequence(torch.float32)[0])
    return torch.tensor(torch.utils._pytree.tree_leaves(output)[0].shape)


def error_texts(library, kind):
    """The errors of six bad inputs: torch.nn's messages, which rnnkit's must contain."""
    layer = make(library, kind, torch.float32)
    state = torch.zeros(4, 3, 2)
    bad_calls = [
        lambda: layer(torch.zeros(2, 3, 4, 3)),
        lambda: layer(torch.zeros(5, 3, 6)),
        lambda: layer(torch.zeros(5, 3, 3, dtype=torch.float64)),
        lambda: layer(torch.zeros(5, 3, 3), (state, state) if kind == "LSTM" else state),
        lambda: getattr(LIBRARIES[library], kind)(3, 0),
        lambda: getattr(LIBRARIES[library], kind)(3, 4, dropout=2.0),
    ]
    texts = []
    for call in bad_calls:
        try:
            call()
        except Exception as error:
            texts.append(f"{type(error).__name__}: {error}")
        else:
            texts.append("no error")
    return texts


WORKFLOWS: dict[str, tuple[Callable, bool]] = {
    # name: (workflow, slow)
    "second-order gradients (gradient penalty, `create_graph=True`)": (gradient_penalty, False),
    "`gradgradcheck`": (gradgradcheck, False),
    "`torch.func`: per-sample gradients (`vmap(grad(...))`)": (per_sample_gradients, False),
    "`torch.func.jacrev`": (jacobian, False),
    "`torch.func.jvp` (forward mode)": (forward_mode, False),
    "`gradcheck(check_batched_grad=True)`": (batched_gradcheck, False),
    "`torch.compile` (inductor), forward + backward": (compiled, True),
    "`torch.export`, run at another batch size": (exported(1), False),
    "`torch.export`, run at another sequence length": (exported(0), False),
    '`torch.export`, another sequence length, rnnkit with `engine="bptt"`': (
        exported(0, "bptt"),
        False,
    ),
    "ONNX (TorchScript exporter) in onnxruntime, another length and batch": (
        onnx_exported(False, None),
        False,
    ),
    "ONNX (dynamo exporter) in onnxruntime, another batch": (onnx_exported(True, 1), True),
    "ONNX (dynamo exporter) in onnxruntime, another length": (onnx_exported(True, 0), True),
    "`torch.jit.trace`, its check at another shape": (traced, False),
    "`torch.jit.script`": (scripted, False),
    "bfloat16 module, forward + backward": (low_precision(torch.bfloat16), False),
    "float16 module, forward + backward": (low_precision(torch.float16), False),
    '`torch.autocast("cpu", torch.bfloat16)`': (autocast, False),
    "int8 dynamic quantization": (quantized, False),
    "`parametrizations.weight_norm` on `weight_hh_l0`": (parametrized("weight_norm"), False),
    "`parametrizations.spectral_norm` on `weight_hh_l0`": (parametrized("spectral_norm"), False),
    "`torch.save` / `torch.load` of the state_dict, `deepcopy`": (saved_and_copied, False),
    "the meta device": (meta_device, False),
    "a cell with `hidden_size=0`": (cell_of_size_zero, False),
    "error messages (rnnkit's contain torch.nn's)": (error_texts, False),
}


def agree(ours, theirs, dtype_bound: float) -> bool:
    ours_leaves = torch.utils._pytree.tree_leaves(ours)
    theirs_leaves = torch.utils._pytree.tree_leaves(theirs)
    if len(ours_leaves) != len(theirs_leaves):
        return False
    for a, b in zip(ours_leaves, theirs_leaves, strict=True):
        if isinstance(b, str):  # error texts: torch.nn's message inside rnnkit's
            if b != a and b.partition(": ")[2] not in a:  # torch.nn's whole message
                return False
            continue
        if a.device.type == "meta" or b.device.type == "meta":
            continue
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if not torch.allclose(a.double(), b.double(), rtol=dtype_bound, atol=dtype_bound):
            return False
    return True


TOLERANCE = {torch.float64: 1e-8, torch.float32: 1e-4, torch.bfloat16: 0.1, torch.float16: 0.02}


def tolerance(result) -> float:
    leaves = [t for t in torch.utils._pytree.tree_leaves(result) if isinstance(t, torch.Tensor)]
    return max((TOLERANCE.get(t.dtype, 0) for t in leaves), default=0.0)


def attempt(workflow, library, kind):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return workflow(library, kind), None
    except Exception as error:
        words = " ".join(str(error).split())[:90]
        return None, f"{type(error).__name__}: {words}"


def run(names) -> dict[str, dict[str, dict[str, str]]]:
    """{workflow: {library: {kind: "✓" or "✗ reason"}}}"""
    table = {}
    for name in names:
        workflow, _ = WORKFLOWS[name]
        row: dict[str, dict[str, str]] = {"torch.nn": {}, "rnnkit": {}}
        for kind in KINDS:
            theirs, their_error = attempt(workflow, "torch.nn", kind)
            ours, our_error = attempt(workflow, "rnnkit", kind)
            row["torch.nn"][kind] = "✓" if their_error is None else f"✗ {their_error}"
            if our_error is not None:
                row["rnnkit"][kind] = f"✗ {our_error}"
            elif their_error is None and not agree(ours, theirs, tolerance(theirs)):
                row["rnnkit"][kind] = "✗ ran, but the result differs from torch.nn's"
            else:
                row["rnnkit"][kind] = "✓"
        table[name] = row
        print(f"{name}: torch.nn {row['torch.nn']} | rnnkit {row['rnnkit']}", flush=True)
    return table


def cell(statuses: dict[str, str]) -> str:
    """One table cell for the three kinds: ✓ when all work, else each kind's status."""
    if all(status == "✓" for status in statuses.values()):
        return "✓"
    marks = [f"{kind} {status.split(' ', 1)[0]}" for kind, status in statuses.items()]
    return ", ".join(marks)


def page(table: dict, command: str) -> str:
    lines = [
        "# Compatibility: PyTorch workflows on torch.nn's RNN layers and on rnnkit's",
        "",
        f"Generated by `.venv/bin/python {command}` on {datetime.date.today()} with torch "
        f"{torch.__version__} on the CPU: every row was run, none is claimed. Do not edit by "
        "hand; rerun the command.",
        "",
        "torch.nn's column: the workflow ran. rnnkit's column: it ran *and* gave torch.nn's "
        "result (float64 where the workflow allows; where torch.nn fails, it ran). Each row is "
        "tried on RNN, LSTM and GRU (2 layers, bidirectional) with the same weights. rnnkit "
        "runs its default engine (`auto`, rnnkit/engine/dispatch.py) except where a row says "
        "otherwise. auto hands exports to torch's own RNN ops (so those rows run torch's "
        "kernel inside an rnnkit layer, and fix the length as torch.nn's do); with "
        '`engine="bptt"` torch.export records rnnkit\'s loops as custom operators instead '
        "(rnnkit/engine/ops.py), which keep the length a symbol. Under torch.compile the GRU "
        "and RNN loops are such operators inside the graph; the float32 LSTM runs torch's "
        "kernel eagerly inside the compiled program, as torch.nn's layers do. What matches "
        "torch.nn exactly and the deliberate differences: `docs/differences.md`.",
        "",
        "| workflow | torch.nn | rnnkit |",
        "| --- | --- | --- |",
    ]
    for name, row in table.items():
        lines.append(f"| {name} | {cell(row['torch.nn'])} | {cell(row['rnnkit'])} |")
    failures = [
        f"- {name}, {library} {kind}: {status[2:]}"
        for name, row in table.items()
        for library, statuses in row.items()
        for kind, status in statuses.items()
        if status != "✓"
    ]
    if failures:
        lines += ["", "## Why the ✗ cells fail", "", *failures]
    return "\n".join(lines) + "\n"


def statuses_in(page_text: str) -> dict[str, tuple[str, str]]:
    rows = {}
    for line in page_text.splitlines():
        parts = [part.strip() for part in line.strip("|").split("|")]
        if len(parts) == 3 and parts[0] in WORKFLOWS:
            rows[parts[0]] = (parts[1], parts[2])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, help="write the page (markdown) here")
    parser.add_argument("--check", type=Path, help="fail if a row differs from this page")
    parser.add_argument("--skip-slow", action="store_true", help="leave out the slow rows")
    args = parser.parse_args()
    names = [name for name, (_, slow) in WORKFLOWS.items() if not (slow and args.skip_slow)]
    table = run(names)
    if args.write:
        args.write.write_text(page(table, "bench/compat.py --write " + str(args.write)))
        print(f"wrote {args.write}")
    if args.check:
        written = statuses_in(args.check.read_text())
        measured = statuses_in(page(table, ""))
        drift = [
            f"{name}: the page says {written.get(name)}, measured {measured[name]}"
            for name in measured
            if written.get(name) != measured[name]
        ]
        if drift:
            print("the page has drifted from the code:\n" + "\n".join(drift))
            sys.exit(1)
        print(f"{args.check}: every measured row agrees ({len(measured)} rows)")


if __name__ == "__main__":
    main()
