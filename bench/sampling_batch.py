"""Characters per second of sampling: one sample (rnnkit sample) against several at once
(rnnkit sample --num-samples N), same model, same process, interleaved.

    .venv/bin/python bench/sampling_batch.py            # 2 layers of 512, 300 characters, N = 8
"""

import argparse
import statistics
import time

import torch

from rnnkit.generation.sampling import generate, generate_many
from rnnkit.models.charlm import CharLM


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden-size", type=int, default=512)
    parser.add_argument("--num-layers", type=int, default=2)
    parser.add_argument("--length", type=int, default=300)
    parser.add_argument("--num-samples", type=int, default=8)
    parser.add_argument("--repetitions", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = CharLM(65, "lstm", 64, args.hidden_size, args.num_layers).eval()
    prime = [1, 2, 3]
    seeds = list(range(args.num_samples))

    def one():
        return sum(1 for _ in generate(model, prime, args.length, seed=0))

    def many():
        return sum(len(s) for s in generate_many(model, prime, args.length, seeds))

    rates = {"1 sample": [], f"{args.num_samples} samples at once": []}
    for repetition in range(args.repetitions + 1):  # the first round warms up
        for name, function in zip(rates, (one, many), strict=True):
            started = time.perf_counter()
            characters = function()
            if repetition:
                rates[name].append(characters / (time.perf_counter() - started))
    print(f"LSTM {args.num_layers}x{args.hidden_size}, {args.length} characters per sample, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")  # fmt: skip
    medians = {name: statistics.median(values) for name, values in rates.items()}
    for name, median in medians.items():
        print(f"| {name} | {median:,.0f} characters/s |")
    first, second = medians.values()
    print(f"ratio: {second / first:.2f}x the characters per second of one sample")


if __name__ == "__main__":
    main()
