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


def characters_per_second(
    model, length: int, num_samples: int, repetitions: int
) -> tuple[float, float]:
    """(one sample's, ``num_samples`` at once's) characters per second, medians of interleaved
    rounds after a warm-up round."""
    prime = [1, 2, 3]
    seeds = list(range(num_samples))

    def one():
        return sum(1 for _ in generate(model, prime, length, seed=0))

    def many():
        return sum(len(s) for s in generate_many(model, prime, length, seeds))

    rates: tuple[list[float], list[float]] = ([], [])
    for repetition in range(repetitions + 1):  # the first round warms up
        for rate, function in zip(rates, (one, many), strict=True):
            started = time.perf_counter()
            characters = function()
            if repetition:
                rate.append(characters / (time.perf_counter() - started))
    return statistics.median(rates[0]), statistics.median(rates[1])


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
    one, many = characters_per_second(model, args.length, args.num_samples, args.repetitions)
    print(f"LSTM {args.num_layers}x{args.hidden_size}, {args.length} characters per sample, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")  # fmt: skip
    print(f"| 1 sample | {one:,.0f} characters/s |")
    print(f"| {args.num_samples} samples at once | {many:,.0f} characters/s |")
    print(f"ratio: {many / one:.2f}x the characters per second of one sample")


if __name__ == "__main__":
    main()
