"""How fast `rnnkit explore` answers, through its own API (Starlette's test client, in process):

    read      POST /api/read + POST /api/unit for 5,000 characters of Python source with a
              1x512 LSTM: the heat map, the next-character guesses, the loss per character
              and the units ranked by all five features (target: under 1 s on 2 cores)
    sample    GET /api/sample, 1,000 characters streamed from a 2x512 LSTM (target: at least
              500 characters/s), with the weights as trained and as int8

and, side by side for scale, the same read before this round's changes: layer.trace through
the reference's per-step recording. Speed does not depend on training, so the models have
fresh weights; the text is the standard library's own source (textwrap.py, then more).

    .venv/bin/python bench/explore_speed.py            # medians of 5
"""

import argparse
import inspect
import json
import statistics
import textwrap
import time
from pathlib import Path

import torch
from starlette.testclient import TestClient

from rnnkit.data.text import Vocabulary
from rnnkit.explorer.app import create_app
from rnnkit.explorer.runs import LanguageRun
from rnnkit.memory import reuse_large_allocations
from rnnkit.models.charlm import CharLM


def python_text(length: int) -> str:
    import difflib
    import json as json_module

    text = "".join(inspect.getsource(m) for m in (textwrap, difflib, json_module.decoder))
    return text[:length]


def language_run(name, text, hidden, layers) -> LanguageRun:
    vocabulary = Vocabulary("utf-8", tuple(sorted(set(text))))
    model = CharLM(len(vocabulary.symbols), "lstm", 64, hidden, layers).eval()
    return LanguageRun(name, Path("."), model, None, vocabulary, Path("fresh-weights"))


def median_seconds(action, repetitions) -> float:
    times = []
    for _ in range(repetitions):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--characters", type=int, default=5000)
    parser.add_argument("--sample-length", type=int, default=1000)
    parser.add_argument("--repetitions", type=int, default=5)
    args = parser.parse_args()
    reuse_large_allocations()  # as the `rnnkit` command does (rnnkit/memory.py)
    torch.manual_seed(0)
    text = python_text(args.characters)
    runs = {
        "read": language_run("read", text, 512, 1),
        "sample": language_run("sample", text, 512, 2),
    }
    client = TestClient(create_app(runs))
    counter = iter(range(10**9))

    def read():
        symbols = runs["read"].vocabulary.symbols
        fresh = text[:-1] + symbols[next(counter) % len(symbols)]  # a new text: never cached
        answer = client.post("/api/read", json={"run": "read", "text": fresh})
        assert answer.status_code == 200, answer.text
        best = next(iter(answer.json()["meaning"].values()))[0]
        unit = {"run": "read", "text": fresh, "layer": best["layer"], "index": best["index"]}
        assert client.post("/api/unit", json=unit).status_code == 200

    def sample(weights="float32"):
        query = {"run": "sample", "prime": "def ", "length": args.sample_length, "seed": 1,
                 "weights": weights}  # fmt: skip
        answer = client.get("/api/sample", params=query)
        chunks = [json.loads(line[6:]) for line in answer.text.splitlines() if line[:6] == "data: "]
        assert sum(len(c.get("text", "")) for c in chunks) == args.sample_length

    def reference_trace():
        model = runs["read"].model
        ids = torch.as_tensor(runs["read"].vocabulary.encode(text).astype("int64"))[None]
        with torch.enable_grad():  # the reference records when gradients may be wanted
            model.rnn.trace(model.embedding(ids))

    read()  # warm-up: builds (or loads) the C++ loops
    sample()
    seconds_read = median_seconds(read, args.repetitions)
    seconds_sample = median_seconds(sample, args.repetitions)
    seconds_int8 = median_seconds(lambda: sample("int8"), args.repetitions)
    seconds_reference = median_seconds(reference_trace, max(1, args.repetitions // 2))
    print(f"threads {torch.get_num_threads()}, torch {torch.__version__}")
    print("| what | median | target |")
    print("| --- | ---: | --- |")
    print(f"| read {args.characters:,} characters, 1x512 LSTM: heat map, guesses, loss, "
          f"ranking by 5 features | {seconds_read:.2f} s | < 1 s |")  # fmt: skip
    print(f"| sample {args.sample_length:,} characters streamed, 2x512 LSTM | "
          f"{args.sample_length / seconds_sample:,.0f} characters/s | >= 500/s |")  # fmt: skip
    print(f"| the same with int8 weights (the page's weights: int8) | "
          f"{args.sample_length / seconds_int8:,.0f} characters/s | |")  # fmt: skip
    print(
        f"| for scale: layer.trace of the same {args.characters:,} characters through the "
        f"reference's per-step recording (the trace alone) | {seconds_reference:.2f} s | |"
    )


if __name__ == "__main__":
    main()
