"""What variational dropout saves in a training step of the character model: the same model
(2 layers of 512, dropout 0.2, batch 32 x 64 characters) trained with a new dropout mask at
every step and with one mask per sequence, the two steps interleaved in one process.

    .venv/bin/python bench/variational_dropout.py          # ~20 s on 2 cores

The ratio in docs/experiments/2026-11-29-language-model.md ("Variational dropout, ...") came
from this script.
"""

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from rnnkit.models.charlm import CharLM


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=12, help="timed pairs after the warm-up")
    parser.add_argument("--hidden-size", type=int, default=512)
    parser.add_argument("--num-layers", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(0)
    vocab, batch, steps = 65, 32, 64
    ids = torch.randint(0, vocab, (batch, steps + 1))
    runs = {}
    for variational in (False, True):
        model = CharLM(vocab, hidden_size=args.hidden_size, num_layers=args.num_layers,
                       dropout=0.2, variational_dropout=variational)  # fmt: skip
        runs[variational] = (model, torch.optim.AdamW(model.parameters(), 1e-3), [])

    for pair in range(args.pairs + 2):  # the first two pairs warm up
        for model, optimizer, seconds in runs.values():
            started = time.perf_counter()
            logits, _ = model(ids[:, :-1])
            loss = F.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if pair >= 2:
                seconds.append(time.perf_counter() - started)

    per_step, variational = runs[False][2], runs[True][2]
    ratios = sorted(v / p for p, v in zip(per_step, variational, strict=True))
    print(
        f"{args.num_layers}x{args.hidden_size}, batch {batch} x {steps}, "
        f"{torch.get_num_threads()} threads: a new mask every step "
        f"{1000 * statistics.median(per_step):.0f} ms, one mask per sequence "
        f"{1000 * statistics.median(variational):.0f} ms; median ratio "
        f"{statistics.median(ratios):.2f} (min {ratios[0]:.2f}, max {ratios[-1]:.2f})"
    )


if __name__ == "__main__":
    main()
