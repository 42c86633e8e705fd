"""Any cell's speed beside torch.nn's, as ratios measured side by side in one run.

    .venv/bin/python bench/cells.py [--threads 2] [--repeats 5] [--quick] [--device cuda]

Training steps (forward + backward of ``layer(x)[0].sum()``) alternate rnnkit's layer and the
torch.nn layer it is compared with, and each row is the median of the per-round ratios, so a
noisy machine slows both sides alike. Printed: the machine, the matrix-product ceiling
measured in the same run, then one markdown table, each row beside the target it answers to.
Paths: "derived loops" is an elementwise cell's step and its derived backward as two programs
that C++ loops run, one pass a step (engine/derived_loop.py); "traced step" is the cell's step
traced into the ATen operators it calls and run by a C++ loop (engine/traced.py; its Python
step where the C++ steps are not built); "scan" is a
linear cell's coefficients for every step at once and engine/scan.py's sequential operator;
"parallel scan" its prefix scan; "rnnkit BPTT (C++)" the hand-written loops;
"torch's kernel" is torch's code (oneDNN on the CPU), not ours.
"""

import argparse
import platform
import statistics
import time

import torch

from rnnkit.cells import CELLS, Cell
from rnnkit.cells.lstm import LSTM as LSTMDefinition
from rnnkit.engine import dispatch
from rnnkit.engine.registered import kernel_of
from rnnkit.engine.scan import linear_scan, parallel_scan
from rnnkit.engine.traced import DERIVED, made_for
from rnnkit.inside.longrange import hidden_size_for_budget, parameter_count
from rnnkit.models.charlm import CharLM
from rnnkit.models.stepping import Stepper
from rnnkit.nn.layers import Recurrent, make_layer


class UsersLSTM(LSTMDefinition):
    """The LSTM's equations as a user's cell: a subclass runs its own step, not the LSTM's
    registered loops."""


class StepMinGRU(Cell):
    """minGRU written as an ordinary step (what a user without the scan would write)."""

    gates = ("z", "n")
    hidden_gates = ()

    def step(self, x, hh, state, p):
        a, b, gates = CELLS["mingru"]().coefficients(x, p)
        return a * state[0] + b, gates


DEVICE = torch.device("cpu")


def train_step(layer, x) -> float:
    start = time.perf_counter()
    layer(x)[0].sum().backward()
    if x.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def on_device(*modules_or_tensors):
    return [m.to(DEVICE) for m in modules_or_tensors]


def ratio(ours, theirs, x, repeats) -> tuple[float, float, float]:
    """(median ms of ours, of theirs, median ratio), alternating, after one warm-up each."""
    train_step(ours, x), train_step(theirs, x)
    a, b = [], []
    for _ in range(repeats):
        a.append(train_step(ours, x))
        b.append(train_step(theirs, x))
    middle = statistics.median(p / q for p, q in zip(a, b, strict=True))
    return 1000 * statistics.median(a), 1000 * statistics.median(b), middle


def matmul_ceiling(threads: int) -> float:
    """GFLOP/s of one float32 (4096 × 256) · (256 × 1024) product: the input-side product of
    an LSTM of 256 at T·B = 4096, the best any path does per flop."""
    a, b = torch.randn(4096, 256), torch.randn(256, 1024)
    times = []
    for _ in range(20):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * 4096 * 256 * 1024 / statistics.median(times) / 1e9


class Forced:
    """Route a linear cell's scan to ``loop`` (the parallel scan on a CPU, to measure it)."""

    def __init__(self, loop: str) -> None:
        self.loop, self.route = loop, dispatch.route

    def __enter__(self):
        def forced(requested, call):
            chosen = self.route(requested, call)
            if chosen.loop == "scan":
                return dispatch.Route(chosen.engine, self.loop, chosen.per_layer, chosen.trace)
            return chosen

        dispatch.route = forced

    def __exit__(self, *exc):
        dispatch.route = self.route


def scan_error(steps: int, dtype: torch.dtype) -> tuple[float, float]:
    """max |scan − step loop| / max |loop| from a non-zero h0, sequential and parallel."""
    generator = torch.Generator().manual_seed(0)
    z = torch.sigmoid(3 * torch.randn(steps, 8, 256, generator=generator, dtype=dtype))
    a, b = 1 - z, z * torch.randn(steps, 8, 256, generator=generator, dtype=dtype)
    h0 = torch.randn(8, 256, generator=generator, dtype=dtype)
    h, loop = h0, []
    for t in range(steps):
        h = a[t] * h + b[t]
        loop.append(h)
    expected = torch.stack(loop)
    scale = expected.abs().max()
    sequential = (linear_scan(a, b, h0) - expected).abs().max() / scale
    accumulate = torch.float64 if dtype != torch.float64 else None
    parallel = (parallel_scan(a, b, h0, accumulate) - expected).abs().max() / scale
    return sequential.item(), parallel.item()


COMPILE_ROUNDS = 3
COMPILE_PHASES = ("_compile.compile_inner", "compile_fx.<locals>.bw_compiler")


def compile_seconds(cell: str, steps: int) -> tuple[float, int]:
    """Seconds torch.compile spends on a layer of ``cell`` at T = steps, compiled fresh (its
    own timers: the forward's compilation and the backward's, which happens at the first
    backward), and the graphs compiled after a call at another length."""
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    torch._dynamo.utils.compilation_time_metrics.clear()
    torch._inductor.config.fx_graph_cache = False  # each length compiled from scratch
    torch.manual_seed(0)
    # input size 24: a length equal to it would share its symbol (torch's duck sizing) and
    # be fixed by the layer's input-size check
    layer = Recurrent(CELLS[cell], 24, 64)
    compiled = torch.compile(layer, dynamic=True)
    train_step(compiled, torch.randn(steps, 4, 24))
    metrics = torch._dynamo.utils.compilation_time_metrics
    seconds = sum(sum(metrics.get(phase, [])) for phase in COMPILE_PHASES)
    train_step(compiled, torch.randn(steps // 2 + 1, 4, 24))
    return seconds, int(torch._dynamo.utils.counters["stats"]["unique_graphs"])


def sampling_ratio(cell: str, hidden: int, characters: int = 300) -> tuple[float, float]:
    """Milliseconds per character of the Stepper at batch 1 for ``cell``, and its ratio to an
    LSTM of 256's, the two stepping in turn, character by character (medians)."""
    torch.manual_seed(0)
    ours = Stepper(CharLM(65, cell, 64, hidden, 1).eval())
    lstm = Stepper(CharLM(65, "lstm", 64, 256, 1).eval())
    states, symbols, times = [None, None], [1, 1], [[], []]
    for _ in range(characters):
        for k, stepper in enumerate((ours, lstm)):
            start = time.perf_counter()
            logits, states[k] = stepper.step(symbols[k], states[k])
            symbols[k] = int(logits.argmax())
            times[k].append(time.perf_counter() - start)
    mine, reference = (statistics.median(t[10:]) for t in times)
    return 1000 * mine, mine / reference


def loop_of(layer) -> str:
    """How the layer's training steps ran: a linear cell's scan, the derived loops (an
    elementwise step's programs, engine/derived_loop.py) or the traced step (its ATen operators
    one by one, engine/traced.py)."""
    if layer.cell.linear:
        return "scan"
    derived = made_for(layer.cell, DERIVED).values()
    return "derived loops" if any(p is not None for p in derived) else "traced step"


def sampling_path(name: str) -> str:
    """How the Stepper steps the cell (models/stepping.py): the registered step of a built-in
    cell, the derived forward program of an elementwise step, else the traced step."""
    if kernel_of(CELLS[name]()) is not None:
        return "registered step"
    derived = made_for(CELLS[name](), DERIVED).values()
    return "derived program" if any(p is not None for p in derived) else "traced step"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="T=1024 only for minGRU")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (training rows only)")
    args = parser.parse_args()
    global DEVICE
    DEVICE = torch.device(args.device)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = []

    def row(what, path, measured, target, met):
        rows.append((what, path, measured, target, {True: "yes", False: "**no**"}.get(met, "-")))
        print(f"| {what} | {path} | {measured} | {target} | {rows[-1][-1]} |", flush=True)

    print(f"machine: {platform.processor() or platform.machine()}, {args.threads} thread(s), "
          f"torch {torch.__version__}; matrix-product ceiling "
          f"{matmul_ceiling(args.threads):.0f} GFLOP/s (float32 4096x256 @ 256x1024)")  # fmt: skip
    print("| what | path | measured | target | met |\n| --- | --- | --- | --- | --- |")
    x, torch_lstm, torch_gru = on_device(
        torch.randn(128, 32, 256), torch.nn.LSTM(256, 256), torch.nn.GRU(256, 256)
    )
    (users,) = on_device(Recurrent(UsersLSTM(), 256, 256))
    _, _, vs_torch = ratio(users, torch_lstm, x, args.repeats)
    (built_in,) = on_device(make_layer("lstm", 256, 256, engine="bptt"))
    _, _, vs_ours = ratio(users, built_in, x, args.repeats)
    row("an LSTM as a user's cell, B=32 T=128 H=256", loop_of(users),
        f"{vs_torch:.2f}x torch.nn.LSTM; {vs_ours:.2f}x rnnkit's LSTM BPTT (C++)",
        "<= 1.5x; <= 1.2x", vs_torch <= 1.5 and vs_ours <= 1.2)  # fmt: skip
    (layernorm,) = on_device(Recurrent(CELLS["layernorm_lstm"], 256, 256))
    _, _, vs_torch = ratio(layernorm, torch_lstm, x, args.repeats)
    row("LayerNorm LSTM", loop_of(layernorm), f"{vs_torch:.2f}x torch.nn.LSTM", "<= 2.0x",
        vs_torch <= 2.0)  # fmt: skip
    (gru,) = on_device(make_layer("gru", 256, 256))
    _, _, vs_torch = ratio(gru, torch_gru, x, args.repeats)
    row("GRU built-in (its path is unchanged by the cell work)", "rnnkit BPTT (C++)",
        f"{vs_torch:.2f}x torch.nn.GRU", "no slower than before (bench/speed.py's grid)",
        None)  # fmt: skip
    for name in ("peephole_lstm", "cifg_lstm", "indrnn", "ligru", "sru", "minlstm"):
        (layer,) = on_device(Recurrent(CELLS[name], 256, 256))
        _, _, vs_torch = ratio(layer, torch_lstm, x, args.repeats)
        row(name, loop_of(layer), f"{vs_torch:.2f}x torch.nn.LSTM", "(no target)", None)

    for steps in (1024,) if args.quick else (1024, 4096):
        xs, mingru = on_device(torch.randn(steps, 8, 256), Recurrent(CELLS["mingru"], 256, 256))
        ms, gru_ms, scanned = ratio(mingru, torch_gru, xs, max(3, args.repeats // 2))
        other = "scan" if DEVICE.type == "cuda" else "parallel_scan"
        with Forced(other):
            _, _, parallel = ratio(mingru, torch_gru, xs, 3)
        (stepped_layer,) = on_device(Recurrent(StepMinGRU(), 256, 256))
        _, _, stepped = ratio(stepped_layer, torch_gru, xs, 3)
        chosen = "parallel scan" if DEVICE.type == "cuda" else "scan"
        row(f"minGRU, B=8 T={steps} H=256", chosen,
            f"{scanned:.2f}x torch.nn.GRU ({ms:.0f} vs {gru_ms:.0f} ms); {other.replace('_', ' ')} "
            f"{parallel:.2f}x; as a step ({loop_of(stepped_layer)}) {stepped:.2f}x", "<= 0.2x",
            scanned <= 0.2)  # fmt: skip

    for dtype, tolerance in ((torch.float32, 1e-4), (torch.float64, 1e-10)):
        sequential, parallel = scan_error(4096, dtype)
        row(f"scan vs step loop, T=4096, {dtype}, h0 != 0", "scan / parallel scan",
            f"{sequential:.1e} / {parallel:.1e} relative", f"<= {tolerance:g}",
            max(sequential, parallel) <= tolerance)  # fmt: skip

    if DEVICE.type == "cuda":
        return  # the rest measures the CPU
    for cell, path in (("mingru", "scan"), ("layernorm_lstm", "operator (engine/cell_loop.py)")):
        compile_seconds(cell, 16)  # the first compilation in a process also sets torch up
        # one compilation takes a second or two, so a busy moment moves it by half: medians
        # of COMPILE_ROUNDS, the two lengths in turn
        shorts, longs, graphs = [], [], 0
        for _ in range(COMPILE_ROUNDS):
            shorts.append(compile_seconds(cell, 64)[0])
            seconds, graphs_now = compile_seconds(cell, 4096)
            longs.append(seconds)
            graphs = max(graphs, graphs_now)
        short, long = statistics.median(shorts), statistics.median(longs)
        met = long <= 1.5 * short and graphs == 1
        row(f"torch.compile of a {cell} layer, B=4 I=24 H=64 (compile seconds, median of "
            f"{COMPILE_ROUNDS})", path,
            f"T=4096 {long:.1f} s vs T=64 {short:.1f} s ({long / short:.2f}x); {graphs} "
            "graph(s) after a second length", "<= 1.5x; 1 graph", met)  # fmt: skip

    budget = parameter_count("lstm", 64, 256, 65)
    for name in CELLS:
        hidden = hidden_size_for_budget(name, 64, 65, budget)
        ms, to_lstm = sampling_ratio(name, hidden)
        row(f"sampling, {name} (H={hidden}, ~{budget // 1000}k parameters), batch 1",
            sampling_path(name),
            f"{ms:.3f} ms/char, {to_lstm:.2f}x the LSTM's", "<= 1.2x", to_lstm <= 1.2)  # fmt: skip


if __name__ == "__main__":
    main()
