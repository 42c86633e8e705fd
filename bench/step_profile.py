"""Where the time of one step goes: torch.profiler over rnnkit's layer or character model, and
the per-step matrix product measured in the layouts a loop could use.

    .venv/bin/python bench/step_profile.py LSTM --shape 32 128 512 1 --engine bptt --infer
    .venv/bin/python bench/step_profile.py GRU --shape 64 128 512 1          # a training step
    .venv/bin/python bench/step_profile.py char --shape 32 128 512 1 --engine auto bptt
    .venv/bin/python bench/step_profile.py user-LSTM --shape 32 128 256 1   # its traced step
    .venv/bin/python bench/step_profile.py --products     # the per-step product, four ways

The profile runs 3 steps after 3 warm-up steps and prints the operators by their own time. The
product comparison times one step's product into a buffer, in the same process, median of 5
rounds of 500 calls:
  now           h W_hhᵀ (B, G·H), as the C++ loops compute it (forward), and da W_hh (backward);
  feature-major W_hh hᵀ (G·H, B), with the two transposing copies a loop in that layout needs
                (and W_hhᵀ daᵀ for the backward);
  mkl-packed    torch.ops.mkl._mkl_linear with W_hh packed once by _mkl_reorder_linear_weight
                (a private operator of torch's MKL builds), forward only.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from speed import INPUT_SIZE, charlm_pair, layer_pair

GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
PRODUCT_SHAPES = [(32, 512, "LSTM"), (64, 512, "LSTM"), (32, 128, "LSTM"), (32, 512, "GRU"),
                  (64, 512, "GRU"), (64, 256, "GRU")]  # fmt: skip


def profile(kind: str, shape: tuple[int, int, int, int], engine: str, infer: bool, rows: int):
    batch, steps, hidden, layers = shape
    if kind == "char":
        model = charlm_pair(hidden, layers)[0]
        ids = torch.randint(0, 65, (batch, steps + 1))

        def run():
            logits, _ = model(ids[:, :-1])
            return F.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten())
    else:
        if kind == "user-LSTM":  # the LSTM's equations as a user's cell (bench/cells.py)
            from cells import UsersLSTM

            from rnnkit.nn.layers import Recurrent

            model = Recurrent(UsersLSTM(), INPUT_SIZE, hidden, layers)
        else:
            model = layer_pair(kind, hidden, layers)[0]
        x = torch.randn(steps, batch, INPUT_SIZE)

        def run():
            return model(x)[0].sum()

    for module in model.modules():
        if hasattr(module, "engine"):
            module.engine = engine

    def step():
        if infer:
            with torch.no_grad():
                run()
        else:
            model.zero_grad(set_to_none=True)
            run().backward()

    for _ in range(3):
        step()
    with torch.profiler.profile() as profiler:
        for _ in range(3):
            step()
    mode = "inference" if infer else "training"
    print(f"\n{kind} {mode} step, B={batch} T={steps} H={hidden} L={layers}, engine {engine}:")
    print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))


def median_microseconds(call, calls: int = 500, rounds: int = 5) -> float:
    for _ in range(30):
        call()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            call()
        times.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(times)


def products() -> None:
    print("| B, H, cell | forward now µs | feature-major µs | ratio | mkl-packed µs | ratio | "
          "backward now µs | feature-major µs | ratio |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for batch, hidden, kind in PRODUCT_SHAPES:
        print(product_row(batch, hidden, kind))


def product_row(batch: int, hidden: int, kind: str) -> str:
    rows = GATES[kind] * hidden
    w_hh = torch.randn(rows, hidden)
    w_hh_t = w_hh.t().contiguous()
    h, a = torch.randn(batch, hidden), torch.empty(batch, rows)
    h_t, a_t = torch.empty(hidden, batch), torch.empty(rows, batch)
    da, dh = torch.randn(batch, rows), torch.empty(batch, hidden)
    da_t, dh_t = torch.empty(rows, batch), torch.empty(hidden, batch)

    def feature_major():
        h_t.copy_(h.t())
        torch.mm(w_hh, h_t, out=a_t)
        a.copy_(a_t.t())

    def feature_major_backward():
        da_t.copy_(da.t())
        torch.mm(w_hh_t, da_t, out=dh_t)
        dh.copy_(dh_t.t())

    forward = median_microseconds(lambda: torch.mm(h, w_hh.t(), out=a))
    transposed = median_microseconds(feature_major)
    try:
        packed_weight = torch.ops.mkl._mkl_reorder_linear_weight(w_hh, batch)
        packed = median_microseconds(
            lambda: torch.ops.mkl._mkl_linear(h, packed_weight, w_hh, None, batch)
        )
        packed_cells = f"{packed:.0f} | {packed / forward:.2f}"
    except (AttributeError, RuntimeError):  # not an MKL build of torch
        packed_cells = "- | -"
    backward = median_microseconds(lambda: torch.mm(da, w_hh, out=dh))
    transposed_backward = median_microseconds(feature_major_backward)
    return (
        f"| {batch}, {hidden}, {kind} | {forward:.0f} | {transposed:.0f} | "
        f"{transposed / forward:.2f} | {packed_cells} | {backward:.0f} | "
        f"{transposed_backward:.0f} | {transposed_backward / backward:.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", nargs="?", choices=("LSTM", "GRU", "RNN", "char", "user-LSTM"))
    parser.add_argument("--shape", nargs=4, type=int, metavar=("B", "T", "H", "L"),
                        default=[32, 128, 512, 1])  # fmt: skip
    parser.add_argument("--engine", nargs="+", default=["auto"],
                        choices=("auto", "fused", "bptt", "reference"))  # fmt: skip
    parser.add_argument("--infer", action="store_true", help="profile inference, not training")
    parser.add_argument("--rows", type=int, default=10, help="operators to print")
    parser.add_argument("--products", action="store_true", help="compare the per-step product")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if args.kind is None and not args.products:
        parser.error("give a kind to profile (LSTM, GRU, RNN, char) or --products")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.kind is not None:
        for engine in args.engine:
            profile(args.kind, tuple(args.shape), engine, args.infer, args.rows)
    if args.products:
        products()


if __name__ == "__main__":
    main()
