"""The same-hour baseline for the language model's time budgets: a plain torch.nn.LSTM.

    .venv/bin/python bench/lm_baseline.py --minutes 4.7 [--seed 1337]

Nothing of rnnkit's model or trainer runs here: torch.nn.Embedding -> torch.nn.LSTM (1 layer of
512) -> torch.nn.Linear, batch 32, sequence 128, the state carried from batch to batch (truncated
BPTT), AdamW at 2e-3 (torch's default weight decay 0.01) with a cosine decay to 0 over the time
budget, gradients clipped to norm 1. It reads the same text and the same 90% / 10% split as
`rnnkit train` (rnnkit's data helpers), and it is scored the same way: a full pass over the
validation split (rnnkit.training.evaluate). Run it in the same hour as `rnnkit train
--time-budget M` so that both see the same machine.
"""

import argparse
import math
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from rnnkit.data.batches import TrainingChunks, contiguous_split
from rnnkit.data.corpora import BUNDLED_CORPUS
from rnnkit.data.text import load_corpus
from rnnkit.models.charlm import detach_state
from rnnkit.training.evaluate import evaluate

HIDDEN, EMBEDDING, BATCH, SEQ_LEN, LR, CLIP = 512, 64, 32, 128, 2e-3, 1.0


class PlainLSTM(nn.Module):
    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, EMBEDDING)
        self.lstm = nn.LSTM(EMBEDDING, HIDDEN, batch_first=True)
        self.head = nn.Linear(HIDDEN, vocab_size)

    def forward(self, ids, state=None):
        outputs, state = self.lstm(self.embedding(ids), state)
        return self.head(outputs), state


def train(minutes: float, seed: int) -> dict:
    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as cache:
        corpus = load_corpus(BUNDLED_CORPUS, "utf-8", Path(cache))
        ids = corpus.ids[:]  # read into memory before the cache folder goes
    split = contiguous_split(len(ids), 0.1, 0.0)
    train_ids, val_ids = ids[slice(*split.train)], ids[slice(*split.val)]
    chunks = TrainingChunks(train_ids, BATCH, SEQ_LEN)
    model = PlainLSTM(len(corpus.vocabulary))
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR)
    budget, state, step = minutes * 60, None, 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < budget:
        for group in optimizer.param_groups:
            group["lr"] = LR * 0.5 * (1 + math.cos(math.pi * elapsed / budget))
        if chunks.starts_epoch(step):
            state = None
        inputs, targets = chunks[step]
        logits, state = model(inputs, state)
        state = detach_state(state)
        loss = nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        optimizer.step()
        step += 1
    trained = time.perf_counter() - start
    validation = evaluate(model, val_ids, batch_size=64, seq_len=SEQ_LEN)
    return {
        "minutes": minutes,
        "seed": seed,
        "steps": step,
        "train_seconds": round(trained, 1),
        "validation": round(validation.loss, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=4.7, help="training time budget")
    parser.add_argument("--seed", type=int, default=1337)
    args = parser.parse_args()
    print(train(args.minutes, args.seed))


if __name__ == "__main__":
    main()
