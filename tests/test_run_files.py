"""Run files of valid JSON but the wrong shape: every one read by eval, sample and a task's
predict gets a clean fallback or one line and exit 2, never a traceback."""

import json

import pytest

from rnnkit.cli import main

pytestmark = pytest.mark.slow  # two tiny trainings, then every file rewritten many ways

WRONG = [5, {"a": 1}, "x", None]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    lm, task = root / "lm", root / "task"
    # a short text of its own, so that each of the many `eval`s below scores a short split
    text = root / "text.txt"
    text.write_text("".join(f"line {i}: the quick brown fox, {i * i % 97}.\n" for i in range(600)))
    small = ["--hidden-size", "16", "--embedding-size", "8", "--threads", "1"]
    assert main(["train", "--out", str(lm), "--data", str(text), "--max-steps", "4",
                 "--eval-interval", "2", "--eval-chars", "2000", *small]) == 0  # fmt: skip
    assert main(["task", "sentiment", "train", "--out", str(task), "--max-epochs", "1",
                 "--train-examples", "64", "--eval-examples", "16", "--hidden-size", "8",
                 "--embedding-size", "4"]) == 0  # fmt: skip
    return lm, task


def variants(document):
    """The document with each top-level value (and each value one level down) replaced by
    each wrong kind, and the whole document replaced by each."""
    out = [(("whole",), value) for value in WRONG]
    if isinstance(document, dict):
        for key, inner in document.items():
            out += [((key,), {**document, key: value}) for value in WRONG]
            if isinstance(inner, dict):
                for second in list(inner)[:12]:
                    out += [((key, second), {**document, key: {**inner, second: value}})
                            for value in WRONG]  # fmt: skip
    return out


@pytest.mark.parametrize("which", ["lm", "task"])
def test_every_json_file_of_the_wrong_shape_is_one_line_and_exit_2_or_a_fallback(
    runs, which, capsys
):
    lm, task = runs
    run = lm if which == "lm" else task
    commands = (
        [["eval", str(run)]]  # reads every file sample reads, and the data cache too
        if which == "lm"
        else [["task", "sentiment", "predict", str(run), "--text", "a good film"]]
    )
    tried = 0
    for path in sorted(run.rglob("*.json")):
        original = path.read_text()
        for where, document in variants(json.loads(original)):
            path.write_text(json.dumps(document))
            for command in commands:
                code = main(command)  # an exception here is the failure this test looks for
                assert code in (0, 2), (path.name, where, command[0])
                tried += 1
        path.write_text(original)
    capsys.readouterr()
    assert tried > 100
