"""Each task's training step on rnnkit's layers against the same model on torch.nn's layers.

    .venv/bin/python bench/task_speed.py                 # every task, 30 pairs each (~3 min)
    .venv/bin/python bench/task_speed.py --task dates --pairs 60

For each task: the model the task trains (its default settings), and a twin built by the same
code with torch.nn.RNN/LSTM/GRU (encoders) and torch.nn.RNNCell/LSTMCell/GRUCell (decoders) in
place of rnnkit's, holding the same weights. Both take the same batches of the training split,
with the same coin flips and dropout seeds, and one full step each (forward, loss, backward,
clipping, AdamW) in turns: ours, theirs, ours, theirs... after two warm-up steps of each.
Reported: the median time of each and the ratio of the medians (rnnkit ÷ torch.nn: below 1 means
rnnkit is faster), with the range of the ratio over the pairs.
"""

import argparse
import statistics
import sys
import time

import torch
from torch import nn

from rnnkit.models import decoder, encoder
from rnnkit.tasks import TASKS, get_task
from rnnkit.training.optimizer import build_optimizer

TORCH_LAYERS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
TORCH_CELLS = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}


def torch_twin(task, config, vocabularies, model: nn.Module) -> nn.Module:
    """The task's model built with torch.nn's layers and cells, with `model`'s weights."""
    saved = (encoder.make_layer, decoder.make_cell)
    encoder.make_layer = lambda cell, *args, **kwargs: TORCH_LAYERS[cell](*args, **kwargs)
    decoder.make_cell = lambda cell, *args, **kwargs: TORCH_CELLS[cell](*args, **kwargs)
    try:
        twin = task.build_model(config, vocabularies)
    finally:
        encoder.make_layer, decoder.make_cell = saved
    twin.load_state_dict(model.state_dict())
    return twin


def timed_step(task, model, optimizer, batch, config, seed: int) -> float:
    torch.manual_seed(seed)  # the same dropout masks for both
    generator = torch.Generator().manual_seed(seed)  # the same coin flips
    started = time.perf_counter()
    loss = task.loss(model, batch, config, config.teacher_forcing, generator)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
    optimizer.step()
    return time.perf_counter() - started


def compare(name: str, pairs: int) -> dict:
    task = get_task(name)
    config = task.config()
    torch.manual_seed(config.seed)
    splits = task.load_splits(config)
    vocabularies = task.vocabularies(splits.train, config)
    ours = task.build_model(config, vocabularies)
    theirs = torch_twin(task, config, vocabularies, ours)
    ours.train(), theirs.train()
    optimizers = [
        build_optimizer(m, config.lr, config.weight_decay, (0.9, 0.999)) for m in (ours, theirs)
    ]
    generator = torch.Generator().manual_seed(config.seed)
    batches = list(task.batches(splits.train, vocabularies, config.batch_size, generator))
    times = {"ours": [], "theirs": []}
    contenders = list(zip(("ours", "theirs"), (ours, theirs), optimizers, strict=True))
    for index in range(pairs + 2):
        batch = batches[index % len(batches)]
        for key, model, optimizer in contenders:
            seconds = timed_step(task, model, optimizer, batch, config, index)
            if index >= 2:  # two warm-up steps each
                times[key].append(seconds)
    ratios = [a / b for a, b in zip(times["ours"], times["theirs"], strict=True)]
    ours_ms, theirs_ms = (1000 * statistics.median(times[k]) for k in ("ours", "theirs"))
    return {"task": name, "cell": config.cell, "batch": config.batch_size,
            "ours_ms": ours_ms, "theirs_ms": theirs_ms, "ratio": ours_ms / theirs_ms,
            "low": min(ratios), "high": max(ratios)}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=TASKS, action="append", help="default: every task")
    parser.add_argument("--pairs", type=int, default=30, help="timed steps of each (30)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.pairs} pairs")
    print("| task | cell, batch | rnnkit ms/step | torch.nn ms/step | rnnkit ÷ torch.nn (range) |")
    print("| --- | --- | ---: | ---: | --- |")
    for name in args.task or TASKS:
        row = compare(name, args.pairs)
        print(
            f"| {row['task']} | {row['cell']}, {row['batch']} | {row['ours_ms']:.1f} | "
            f"{row['theirs_ms']:.1f} | **{row['ratio']:.2f}** "
            f"({row['low']:.2f}–{row['high']:.2f}) |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
