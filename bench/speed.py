"""rnnkit against torch.nn, side by side in one process: layers, the character model, sampling,
peak memory, and the matrix-product ceiling of the machine.

    .venv/bin/python bench/speed.py                      # the full grid, prints a table (~30 min)
    .venv/bin/python bench/speed.py --quick              # a few shapes, to try it (~2 min)
    .venv/bin/python bench/speed.py --only GRU --shape 64 128 512 2   # one comparison
    .venv/bin/python bench/speed.py --write docs/performance.md   # also writes the report
    .venv/bin/python bench/speed.py --engine auto bptt   # also rnnkit's own loops for every kind

Every comparison runs rnnkit and torch.nn interleaved (ours, theirs, ours, theirs...) after one
warm-up call of each, and reports the median time of each and the ratio of the medians
(rnnkit ÷ torch.nn: below 1 means rnnkit is faster), with the min-max of the ratio of each pair.
Grid: B ∈ {32, 64}, T ∈ {64, 128}, H ∈ {128, 256, 512}, layers ∈ {1, 2}, input size 64.
"""

import argparse
import datetime
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

import rnnkit
from rnnkit.engine import compiled
from rnnkit.models.charlm import CharLM

INPUT_SIZE = 64  # the input size of the layer benchmarks, and the character model's embedding
VOCAB = 65  # Tiny Shakespeare's
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
CHAR_MODEL = "char model [torch's kernel]"  # its LSTM runs torch's kernel (engine "auto")


@dataclass
class Row:
    what: str  # e.g. "LSTM train"
    shape: str  # "B=32 T=64 H=128 L=1"
    ours_ms: float
    theirs_ms: float
    ratio: float
    ratio_min: float
    ratio_max: float
    gflops: float | None = None  # achieved by rnnkit, where counted


def interleaved(ours, theirs, repetitions: int) -> tuple[list[float], list[float]]:
    """Time two callables alternately; the first call of each is a warm-up."""
    ours_times, theirs_times = [], []
    for repetition in range(repetitions + 1):
        for function, times in ((ours, ours_times), (theirs, theirs_times)):
            started = time.perf_counter()
            function()
            if torch.cuda.is_available():
                torch.cuda.synchronize()  # CUDA runs asynchronously: wait for the work
            elapsed = time.perf_counter() - started
            if repetition > 0:
                times.append(elapsed)
    return ours_times, theirs_times


def compare(what, shape, ours, theirs, repetitions, flops=None) -> Row:
    ours_times, theirs_times = interleaved(ours, theirs, repetitions)
    ratios = [a / b for a, b in zip(ours_times, theirs_times, strict=True)]
    ours_median, theirs_median = statistics.median(ours_times), statistics.median(theirs_times)
    return Row(
        what,
        shape,
        1000 * ours_median,
        1000 * theirs_median,
        ours_median / theirs_median,
        min(ratios),
        max(ratios),
        None if flops is None else flops / ours_median / 1e9,
    )


def layer_pair(kind: str, hidden: int, layers: int, engine: str = "auto"):
    torch.manual_seed(0)
    ours = getattr(rnnkit, kind)(INPUT_SIZE, hidden, layers, engine=engine)
    theirs = getattr(torch.nn, kind)(INPUT_SIZE, hidden, layers)
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


def recurrent_flops(kind: str, batch: int, steps: int, hidden: int, layers: int) -> float:
    """Multiply-adds ×2 of the matrix products of a forward pass (input and recurrent)."""
    total = 0.0
    for layer in range(layers):
        inputs = INPUT_SIZE if layer == 0 else hidden
        total += 2 * steps * batch * (inputs + hidden) * GATES[kind] * hidden
    return total


def engine_label(kind: str, engine: str, device: str = "cpu") -> str:
    """The mark a row's name gets for what its rnnkit side runs (engine/dispatch.py): auto's
    choice is marked where it is torch's kernel, so no row passes torch's code off as ours."""
    torchs = kind == "LSTM" or device == "cuda"  # float32: oneDNN's LSTM, cuDNN on CUDA
    ran = engine if engine != "auto" else ("fused" if torchs else "bptt")
    marks = {"fused": " [torch's kernel]", "bptt": " [bptt]", "reference": " [reference]"}
    return "" if engine == "auto" and ran == "bptt" else marks[ran]


def layer_rows(
    batch, steps, hidden, layers, repetitions, kinds=tuple(GATES), engine="auto", device="cpu"
) -> list[Row]:
    shape = f"B={batch} T={steps} H={hidden} L={layers}"
    rows = []
    x = torch.randn(steps, batch, INPUT_SIZE, device=device)
    for kind in kinds:
        ours, theirs = (module.to(device) for module in layer_pair(kind, hidden, layers, engine))
        label = kind + engine_label(kind, engine, device)

        def train(module):
            def step():
                module.zero_grad(set_to_none=True)
                output, _ = module(x)
                output.sum().backward()

            return step

        def infer(module):
            def step():
                with torch.no_grad():
                    module(x)

            return step

        flops = recurrent_flops(kind, batch, steps, hidden, layers)
        rows.append(
            compare(f"{label} train", shape, train(ours), train(theirs), repetitions, 3 * flops)
        )
        rows.append(
            compare(f"{label} infer", shape, infer(ours), infer(theirs), repetitions, flops)
        )
    return rows


def variant_rows(repetitions: int) -> list[Row]:
    """The calls off the grid: an LSTM with proj_size, packed variable-length batches, and the
    cells stepped in a Python loop as a decoder steps them."""
    from torch.nn.utils.rnn import pack_padded_sequence

    rows = []

    def train(module, make_input):
        def step():
            module.zero_grad(set_to_none=True)
            output = module(make_input())
            output = output[0] if isinstance(output, tuple) else output
            (output.data if hasattr(output, "batch_sizes") else output).sum().backward()

        return step

    def infer(module, make_input):
        def step():
            with torch.no_grad():
                module(make_input())

        return step

    batch, steps, hidden = 32, 64, 256
    x = torch.randn(steps, batch, INPUT_SIZE)
    torch.manual_seed(0)
    ours = rnnkit.LSTM(INPUT_SIZE, hidden, proj_size=hidden // 2)
    theirs = torch.nn.LSTM(INPUT_SIZE, hidden, proj_size=hidden // 2)
    theirs.load_state_dict(ours.state_dict())
    shape = f"B={batch} T={steps} H={hidden} P={hidden // 2} L=1"
    for mode, run in (("train", train), ("infer", infer)):
        rows.append(
            compare(f"LSTM proj_size [torch's kernel] {mode}", shape, run(ours, lambda: x),
                    run(theirs, lambda: x), repetitions)
        )  # fmt: skip
    lengths = torch.randint(
        steps // 4, steps + 1, (batch,), generator=torch.Generator().manual_seed(0)
    )

    def packed():
        return pack_padded_sequence(x, lengths, enforce_sorted=False)

    shape = f"B={batch} T<={steps} H={hidden} L=1, lengths {steps // 4}-{steps}"
    for kind in ("LSTM", "GRU"):
        ours, theirs = layer_pair(kind, hidden, 1)
        for mode, run in (("train", train), ("infer", infer)):
            rows.append(
                compare(f"{kind} packed [reference] {mode}", shape, run(ours, packed),
                        run(theirs, packed), repetitions)
            )  # fmt: skip
    batch, hidden, steps = 64, 64, 16
    inputs = torch.randn(steps, batch, INPUT_SIZE)
    for kind in ("LSTMCell", "GRUCell"):
        torch.manual_seed(0)
        ours = getattr(rnnkit, kind)(INPUT_SIZE, hidden)
        theirs = getattr(torch.nn, kind)(INPUT_SIZE, hidden)
        theirs.load_state_dict(ours.state_dict())

        def loop(cell):
            def step():
                cell.zero_grad(set_to_none=True)
                state, total = None, 0.0
                for t in range(steps):
                    state = cell(inputs[t], state)
                    total = total + (state[0] if isinstance(state, tuple) else state).sum()
                total.backward()

            return step

        label = "[C++ step]" if compiled.loops() is not None else "[reference]"
        rows.append(
            compare(f"{kind} loop {label} train", f"B={batch} T={steps} H={hidden}",
                    loop(ours), loop(theirs), repetitions)
        )  # fmt: skip
    rows.append(time_sequence_prediction(repetitions))
    return rows


def time_sequence_prediction(repetitions: int) -> Row:
    """PyTorch's time-sequence-prediction example as it calls the cells: two float64
    LSTMCells (1 -> 51 -> 51), batch 97, 1,000 steps per forward, then a backward (each LBFGS
    evaluation): what a cell's per-call cost adds up to."""
    x = torch.randn(97, 1000, dtype=torch.float64)

    def cells(module):
        torch.manual_seed(0)
        return module.LSTMCell(1, 51).double(), module.LSTMCell(51, 51).double()

    def run(pair):
        first, second = pair

        def step():
            h1 = c1 = h2 = c2 = torch.zeros(97, 51, dtype=torch.float64)
            outputs = []
            for t in range(x.shape[1]):
                h1, c1 = first(x[:, t : t + 1], (h1, c1))
                h2, c2 = second(h1, (h2, c2))
                outputs.append(h2)
            torch.stack(outputs).sum().backward()

        return step

    label = "[C++ step]" if compiled.loops() is not None else "[reference]"
    return compare(f"LSTMCell x2 time-sequence loop {label} train", "B=97 T=1000 H=51 float64",
                   run(cells(rnnkit)), run(cells(torch.nn)), max(3, repetitions // 3))  # fmt: skip


def charlm_pair(hidden: int, layers: int):
    torch.manual_seed(0)
    ours = CharLM(VOCAB, "lstm", INPUT_SIZE, hidden, layers)
    theirs = CharLM(VOCAB, "lstm", INPUT_SIZE, hidden, layers)
    theirs.load_state_dict(ours.state_dict())
    rnn = torch.nn.LSTM(INPUT_SIZE, hidden, layers, batch_first=True)
    rnn.load_state_dict(ours.rnn.state_dict())
    rnn.variational_dropout = False  # CharLM.drop reads it from its layer (off, as in ours)
    theirs.rnn = rnn
    return ours, theirs


def charlm_rows(batch, steps, hidden, layers, repetitions) -> list[Row]:
    shape = f"B={batch} T={steps} H={hidden} L={layers}"
    ours, theirs = charlm_pair(hidden, layers)
    ids = torch.randint(0, VOCAB, (batch, steps + 1))

    def train(model):
        def step():
            model.zero_grad(set_to_none=True)
            logits, _ = model(ids[:, :-1])
            F.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten()).backward()

        return step

    def infer(model):
        def step():
            with torch.no_grad():
                model(ids[:, :-1])

        return step

    head = 2 * batch * steps * hidden * VOCAB
    flops = recurrent_flops("LSTM", batch, steps, hidden, layers) + head
    return [
        compare(f"{CHAR_MODEL} train", shape, train(ours), train(theirs), repetitions, 3 * flops),
        compare(f"{CHAR_MODEL} infer", shape, infer(ours), infer(theirs), repetitions, flops),
    ]


def sampling_rows(repetitions: int, characters: int = 300) -> list[Row]:
    """Characters per second at batch 1 from a 2-layer 512 model: rnnkit's generate against a
    loop that calls torch.nn.LSTM per step and one that calls two torch.nn.LSTMCell; and
    rnnkit's generate with int8 weights (rnnkit sample --weights int8) against the latter."""
    from rnnkit.generation.sampling import generate

    ours, theirs = charlm_pair(512, 2)
    cells = [torch.nn.LSTMCell(INPUT_SIZE if k == 0 else 512, 512) for k in range(2)]
    for k, cell in enumerate(cells):
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).data.copy_(getattr(ours.rnn, f"{name}_l{k}"))
    generator = torch.Generator().manual_seed(0)

    def rnnkit_generate():
        for _ in generate(ours, [1], characters, seed=0):
            pass

    def rnnkit_generate_int8():
        for _ in generate(ours, [1], characters, seed=0, weights="int8"):
            pass

    @torch.no_grad()
    def nn_lstm_loop():
        symbol, state = torch.tensor([[1]]), None
        for _ in range(characters):
            logits, state = theirs(symbol, state)
            probabilities = logits[0, -1].softmax(-1)
            symbol = torch.multinomial(probabilities, 1, generator=generator).view(1, 1)

    @torch.no_grad()
    def nn_cell_loop():
        symbol = torch.tensor([1])
        states = [(torch.zeros(1, 512), torch.zeros(1, 512)) for _ in cells]
        for _ in range(characters):
            x = ours.embedding(symbol)
            for k, cell in enumerate(cells):
                states[k] = cell(x, states[k])
                x = states[k][0]
            probabilities = ours.head(x)[0].softmax(-1)
            symbol = torch.multinomial(probabilities, 1, generator=generator)

    shape = f"B=1 H=512 L=2, {characters} characters"
    rows = []
    for label, ours_generate, name, reference in (
        ("sampling", rnnkit_generate, "torch.nn.LSTM per step", nn_lstm_loop),
        ("sampling", rnnkit_generate, "torch.nn.LSTMCell", nn_cell_loop),
        ("sampling [int8 weights]", rnnkit_generate_int8, "torch.nn.LSTMCell", nn_cell_loop),
    ):
        row = compare(f"{label} vs {name}", shape, ours_generate, reference, repetitions)
        rows.append(row)
    return rows


PEAK_SCRIPT = """
import resource, sys, torch, torch.nn.functional as F
sys.path.insert(0, {bench!r})
from speed import charlm_pair, layer_pair, INPUT_SIZE
kind, side, batch, steps, hidden, layers = {args!r}
if kind == "char model":
    model = charlm_pair(hidden, layers)[side == "torch.nn"]
    ids = torch.randint(0, 65, (batch, steps + 1))
    def step():
        logits, _ = model(ids[:, :-1])
        F.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten()).backward()
else:
    model = layer_pair(kind, hidden, layers)[side == "torch.nn"]
    x = torch.randn(steps, batch, INPUT_SIZE)
    def step():
        model(x)[0].sum().backward()
with torch.no_grad():
    model(ids[:, :1]) if kind == "char model" else model(x[:1])  # load kernels, allocate weights
with open("/proc/self/statm") as statm:  # resident pages now, in KiB like VmHWM
    before = int(statm.read().split()[1]) * resource.getpagesize() // 1024
step()
# VmHWM, this process's own peak: ru_maxrss would carry the parent's across the exec
with open("/proc/self/status") as status:
    print(int(status.read().split("VmHWM:")[1].split()[0]) - before)
"""


def peak_memory_rows(shapes) -> list[tuple[str, str, float, float]]:
    """Peak resident memory added by one training step (MiB), each in a fresh process: the
    peak resident size after the step less the resident size just before it."""
    rows = []
    for kind, (batch, steps, hidden, layers) in shapes:
        peaks = []
        for side in ("rnnkit", "torch.nn"):
            script = PEAK_SCRIPT.format(
                bench=str(Path(__file__).parent), args=(kind, side, batch, steps, hidden, layers)
            )
            result = subprocess.run(
                [sys.executable, "-c", script], capture_output=True, text=True, check=True
            )
            peaks.append(int(result.stdout.split()[-1]) / 1024)  # VmHWM is in KiB
        rows.append((kind, f"B={batch} T={steps} H={hidden} L={layers}", *peaks))
    return rows


def matmul_ceiling(repetitions: int) -> float:
    """GFLOP/s of a large float32 matrix product (4096×512 by 512×2048) on this machine."""
    a, b = torch.randn(4096, 512), torch.randn(512, 2048)
    times = []
    for _ in range(repetitions + 1):
        started = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - started)
    return 2 * 4096 * 512 * 2048 / statistics.median(times[1:]) / 1e9


def format_table(rows: list[Row], ceiling: float) -> str:
    lines = [
        "| what | shape | rnnkit ms | torch.nn ms | ratio (min-max) | rnnkit GFLOP/s (% of mm) |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        flops = (
            "" if row.gflops is None else f"{row.gflops:.0f} ({100 * row.gflops / ceiling:.0f}%)"
        )
        lines.append(
            f"| {row.what} | {row.shape} | {row.ours_ms:.1f} | {row.theirs_ms:.1f} | "
            f"**{row.ratio:.2f}** ({row.ratio_min:.2f}-{row.ratio_max:.2f}) | {flops} |"
        )
    return "\n".join(lines)


def summary(rows: list[Row]) -> str:
    """Median and worst ratio per kind of comparison, over the grid."""
    lines = ["| what | median ratio over the grid | best | worst |", "| --- | ---: | ---: | ---: |"]
    for what in dict.fromkeys(row.what for row in rows):
        ratios = [row.ratio for row in rows if row.what == what]
        lines.append(
            f"| {what} | **{statistics.median(ratios):.2f}** | {min(ratios):.2f} "
            f"| {max(ratios):.2f} |"
        )
    return "\n".join(lines)


def measure_all(args) -> dict:
    """Run every comparison; the results as a dict (also saved to --json after every row)."""
    loops = "C++" if compiled.loops() is not None else "Python (no compiler)"
    if args.shape:
        grid = [tuple(shape) for shape in args.shape]
    elif args.quick:
        grid = [(32, 64, 128, 1), (32, 128, 512, 1)]
    else:
        grid = list(itertools.product((32, 64), (64, 128), (128, 256, 512), (1, 2)))
    kinds = [k for k in GATES if k in args.only] if args.only else list(GATES)
    results = {
        "command": "bench/speed.py " + " ".join(sys.argv[1:]),
        "date": str(datetime.date.today()),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "torch": f"{torch.__version__} ({torch.get_num_threads()} threads)"
        + (f", {torch.cuda.get_device_name(0)}" if args.device == "cuda" else ""),
        "loops": loops,
        "repetitions": args.repetitions,
        "ceiling": matmul_ceiling(args.repetitions),
        "rows": [],
        "sampling": [],
        "memory": [],
    }

    def save() -> None:
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))

    print(f"matrix-product ceiling: {results['ceiling']:.0f} GFLOP/s; loops: {loops}", flush=True)
    if args.sampling or args.variants:
        grid = []  # the sampling rows only, or the variants only
    for batch, steps, hidden, layers in grid:
        rows = []
        for engine in args.engine:
            rows += layer_rows(
                batch, steps, hidden, layers, args.repetitions, kinds, engine, args.device
            )
        if args.device == "cpu" and (not args.only or "char" in args.only):
            rows += charlm_rows(batch, steps, hidden, layers, args.repetitions)
        for row in rows:
            results["rows"].append(row.__dict__)
            save()
            print(format_table([row], results["ceiling"]).splitlines()[-1], flush=True)
    if args.variants or (not (args.only or args.shape or args.sampling) and args.device == "cpu"):
        for row in variant_rows(args.repetitions):
            results.setdefault("variants", []).append(row.__dict__)
            save()
            print(format_table([row], results["ceiling"]).splitlines()[-1], flush=True)
    if args.only or args.shape or args.device != "cpu" or args.variants:
        save()
        return results  # a partial run (or on a GPU): no sampling, no memory
    for row in sampling_rows(args.repetitions):
        results["sampling"].append(row.__dict__)
        print(format_table([row], results["ceiling"]).splitlines()[-1], flush=True)
    if args.sampling:
        save()
        return results
    memory_shapes = [
        ("char model", (32, 128, 512, 1)),
        ("LSTM", (64, 128, 512, 2)),
        ("GRU", (64, 128, 512, 2)),
    ]
    results["memory"] = peak_memory_rows(memory_shapes[:1] if args.quick else memory_shapes)
    save()
    return results


def report(results: dict) -> str:
    rows = [Row(**row) for row in results["rows"]]
    sampling = [Row(**row) for row in results["sampling"]]
    ceiling = results["ceiling"]
    memory_table = "\n".join(
        [
            "| training step | shape | rnnkit MiB | torch.nn MiB | ratio |",
            "| --- | --- | ---: | ---: | ---: |",
        ]
        + [
            f"| {k} | {s} | {a:.0f} | {b:.0f} | {a / b if b > 0 else float('nan'):.2f} |"
            for k, s, a, b in results["memory"]
        ]
    )
    return f"""# Performance: rnnkit against torch.nn, measured side by side

Measured by `.venv/bin/python {results["command"].strip()}` on {results["date"]}:
{results["machine"]}, torch {results["torch"]}, rnnkit's loops: {results["loops"]}.
Matrix-product ceiling measured in the same run: {ceiling:.0f} GFLOP/s (float32 4096×512 by
512×2048; a noisy shared machine, so some rows exceed it).

Ratio = rnnkit's median time ÷ torch.nn's median time over {results["repetitions"]} interleaved
repetitions after a warm-up (below 1: rnnkit is faster); in brackets the min-max of the
per-pair ratios. `train` is forward + backward of `output.sum()` (the character model: of the
cross-entropy), `infer` a forward under `torch.no_grad()`. Input size and embedding size 64,
vocabulary 65. GFLOP/s counts the matrix products only (forward ×3 for a training step).

What runs (`engine="auto"`, the default; rnnkit/engine/dispatch.py): a float32 LSTM calls
torch's fused oneDNN kernel, so rows marked **[torch's kernel]** compare torch's kernel with
itself plus rnnkit's own code around it (the character model's LSTM too). The GRU and the RNN
run rnnkit's hand-written BPTT with its C++ loops (rnnkit's code). Rows marked **[bptt]** were
measured with `--engine bptt`: rnnkit's own loops for the LSTM as well. Sampling runs rnnkit's
Stepper (the embedding folded into the first layer, one engine call per layer and character).

## Summary over the grid

{summary(rows)}

## Off the grid: proj_size, packed batches, cells in a loop

`LSTM proj_size` runs torch's kernel for a float32 LSTM with a projection; a packed batch runs
rnnkit's reference equations step by step (the loops need equal lengths), in inference its C++
inference loop (engine/kernels/packed_inference.cpp); a cell's step runs rnnkit's C++ step
(engine/kernels/cell_steps.cpp) where it builds.

{format_table([Row(**r) for r in results.get("variants", [])], ceiling)}

## Sampling at batch 1 (2 layers of 512)

{format_table(sampling, ceiling)}

## Peak memory of a training step

Resident memory added by one training step, each measured in a fresh process (peak resident
size after the step less the resident size just before it).

{memory_table}

## Every shape

{format_table(rows, ceiling)}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two shapes instead of the grid")
    parser.add_argument("--repetitions", type=int, default=10)
    parser.add_argument(
        "--shape",
        nargs=4,
        type=int,
        action="append",
        metavar=("B", "T", "H", "L"),
        help="measure only this shape (repeatable); skips sampling and memory",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=("LSTM", "GRU", "RNN", "char"),
        help="measure only these models; skips sampling and memory",
    )
    parser.add_argument("--sampling", action="store_true", help="measure only the sampling rows")
    parser.add_argument(
        "--variants",
        action="store_true",
        help="measure only the rows off the grid: proj_size, packed batches, cell loops",
    )
    parser.add_argument(
        "--engine",
        nargs="+",
        default=["auto"],
        choices=("auto", "fused", "bptt", "reference"),
        help="rnnkit's engine for the layer rows (several: one set of rows each); 'bptt' "
        "measures rnnkit's own LSTM loops instead of torch's kernel",
    )
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="where the layer rows run; on cuda rnnkit's auto runs cuDNN for every kind, so "
        "add '--engine auto bptt' for rnnkit's own loops (no character-model, sampling or "
        "memory rows there)",
    )
    parser.add_argument("--write", type=Path, help="also write the report (markdown) here")
    parser.add_argument("--json", type=Path, help="save the measurements here (after each row)")
    parser.add_argument(
        "--from-json", type=Path, help="measure nothing: write the report of a saved --json"
    )
    parser.add_argument(
        "--reuse-memory",
        action="store_true",
        help="first call rnnkit.memory.reuse_large_allocations() (as the rnnkit command does)",
    )
    args = parser.parse_args()
    if args.reuse_memory:
        from rnnkit.memory import reuse_large_allocations

        print(f"reuse_large_allocations: {reuse_large_allocations()}")
    results = json.loads(args.from_json.read_text()) if args.from_json else measure_all(args)
    text = report(results)
    print(text[text.index("## Summary") :].split("## Every shape")[0])
    if args.write:
        args.write.write_text(text, encoding="utf-8")
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
