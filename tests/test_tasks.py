"""Each task end to end at a tiny size (train, eval, predict, attention), its data, and every
bad input the task commands promise a clear error for."""

import json

import pytest

from rnnkit.cli import main
from rnnkit.tasks import TASKS, get_task

pytestmark = pytest.mark.slow  # subprocesses and training runs: `make test` runs them

TINY = [
    "--max-epochs", "1", "--train-examples", "96", "--eval-examples", "24",
    "--batch-size", "32", "--hidden-size", "8", "--embedding-size", "4",
]  # fmt: skip
DECODER_TINY = ["--attention-size", "4", "--beam-width", "2"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One tiny trained run per task (seconds each)."""
    root = tmp_path_factory.mktemp("task-runs")
    made = {}
    for name in TASKS:
        extra = DECODER_TINY if name in ("translate", "dates", "caption") else []
        assert main(["task", name, "train", "--out", str(root / name), *TINY, *extra]) == 0
        made[name] = root / name
    return made


@pytest.mark.parametrize("name", TASKS)
def test_train_writes_a_complete_run(runs, name):
    run = runs[name]
    for path in ("task.json", "metrics.csv", "loss.png", "test_metrics.json"):
        assert (run / path).is_file(), path
    results = json.loads((run / "test_metrics.json").read_text())
    task = get_task(name)
    assert 0.0 <= results["test"][task.metric] <= 1.0
    assert results["examples"] == {"train": 96, "dev": 24, "test": 24}
    if name in ("sentiment", "pos", "caption"):
        assert results["baseline"]["name"]
    if name == "translate":
        assert {"bleu", "bleu_beam", "exact_match_beam"} <= set(results["test"])
    header = (run / "metrics.csv").read_text().splitlines()[0]
    assert header == "step,train_loss,val_loss,lr,grad_norm,ms_per_step,epoch,dev_metric"


def test_eval_recomputes_the_test_metrics(runs, capsys):
    run = str(runs["dates"])
    assert main(["task", "dates", "eval", run, "--beam-width", "2", "--examples", "24"]) == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads((runs["dates"] / "test_metrics.json").read_text())["test"]
    assert printed["test"] == pytest.approx(saved)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("sentiment", "A great phone, I love it."),
        ("english", "The food was"),
        ("pos", "I don't like green eggs."),
        ("translate", "I am happy."),
        ("dates", "3rd of March 2021"),
        ("caption", "314"),
    ],
)
def test_predict_answers(runs, name, text, capsys):
    assert main(["task", name, "predict", str(runs[name]), "--text", text]) == 0
    out = capsys.readouterr().out.strip()
    assert out
    if name == "sentiment":
        assert out.split("\t")[0] in ("positive", "negative")
    if name == "pos":
        assert out.split()[1] == "do/" + out.split()[1].split("/")[1]  # "don't" -> do n't
    if name == "caption":
        assert len(out.splitlines()) == 9  # 8 rows of the strip, then the caption
    if name == "english":  # the five likeliest next words, each with its probability
        pairs = out.split("  ")
        assert len(pairs) == 5 and all(0 <= float(p.split()[-1]) <= 1 for p in pairs)


@pytest.mark.parametrize("name", ["translate", "dates", "caption"])
def test_attention_heat_map(runs, name, tmp_path, capsys):
    text = {"translate": "I am happy.", "dates": "March 3, 2021", "caption": "27"}[name]
    png = tmp_path / "map.png"
    assert (
        main(["task", name, "attention", str(runs[name]), "--text", text, "--out", str(png)]) == 0
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("sentiment", "", "empty"),
        ("sentiment", "   ", "empty"),
        ("sentiment", "zxqv wxyzzy", "unknown to the model (zxqv, wxyzzy)"),
        ("sentiment", "good " * 500, "handles at most"),
        ("english", "", "empty"),
        ("english", "zxqv wxyzzy", "unknown to the model (zxqv, wxyzzy)"),
        ("pos", "", "empty"),
        ("pos", "word " * 1000, "handles at most"),
        ("translate", "", "empty"),
        ("translate", "qqqq zzzz", "unknown to the model"),
        ("translate", "I am happy " * 10, "handles at most"),
        ("dates", "", "empty"),
        ("dates", "3rd of März 2021", "'ä'"),
        ("dates", "March 3, 2021 " * 10, "handles at most"),
        ("caption", "three", "as a number"),
        ("caption", "1234567890123", "too wide"),
    ],
)
def test_bad_input_gets_a_clear_error(runs, name, text, message, capsys):
    assert main(["task", name, "predict", str(runs[name]), "--text", text]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_run_of_another_task_is_refused(runs, capsys):
    assert main(["task", "pos", "eval", str(runs["sentiment"])]) == 2
    err = capsys.readouterr().err
    assert "holds a sentiment run, not pos" in err and "rnnkit task sentiment" in err


def test_not_a_run_and_missing_runs_are_refused(runs, tmp_path, capsys):
    assert main(["task", "dates", "predict", str(tmp_path / "nothing"), "--text", "x"]) == 2
    assert "no such run directory" in capsys.readouterr().err
    (tmp_path / "lm").mkdir()
    (tmp_path / "lm" / "vocab.json").write_text("{}")
    assert main(["task", "dates", "eval", str(tmp_path / "lm")]) == 2
    assert "a language-model run" in capsys.readouterr().err


def test_an_unknown_task_name_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["task", "parse", "train"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'parse'" in capsys.readouterr().err


def test_training_into_a_finished_run_is_refused(runs, capsys):
    assert main(["task", "dates", "train", "--out", str(runs["dates"]), *TINY]) == 2
    assert "already holds a task run; continue it with --resume" in capsys.readouterr().err


def test_bad_settings_are_refused(capsys, tmp_path):
    args = ["task", "dates", "train", "--out", str(tmp_path / "r"), "--teacher-forcing", "1.5"]
    assert main(args) == 2
    assert "--teacher-forcing must be at most 1.0" in capsys.readouterr().err


def test_the_data_splits_are_disjoint_and_documented_sizes():
    dates = get_task("dates").load_splits(None)
    assert (len(dates.train), len(dates.dev), len(dates.test)) == (20_000, 1_000, 2_000)
    inputs = [{"".join(s) for s, _ in part} for part in (dates.train, dates.dev, dates.test)]
    assert not (inputs[0] & inputs[1] or inputs[0] & inputs[2] or inputs[1] & inputs[2])
    sentiment = get_task("sentiment").load_splits(None)
    assert (len(sentiment.train), len(sentiment.dev), len(sentiment.test)) == (2400, 300, 300)
    translate = get_task("translate").load_splits(None)
    train_sources = {" ".join(s) for s, _ in translate.train}
    assert not train_sources & {" ".join(s) for s, _ in translate.test}
    assert sum(len(refs) for _, refs in translate.test) > len(translate.test)  # several refs
    pos = get_task("pos").load_splits(None)
    assert (len(pos.train), len(pos.dev), len(pos.test)) == (12_544, 2_001, 2_077)
    english = get_task("english").load_splits(None)  # EWT, Tatoeba's English, sentiment's train
    assert (len(english.train), len(english.dev), len(english.test)) == (45_029, 2_001, 2_077)
    assert english.train[-2400:] == [words for words, _ in sentiment.train]
    caption = get_task("caption").load_splits(None)
    assert {len(refs[0]) for _, refs in caption.test} == {1, 2, 3, 4}
    assert all(image.shape == (8, 8 * len(refs[0])) for image, refs in caption.test[:50])


def test_sentiment_starts_from_a_pretrained_english_run(runs, tmp_path, capsys):
    import torch

    from rnnkit.tasks.runner import load_run
    from rnnkit.tasks.training import TaskJob
    from rnnkit.training.distributed import Ranks

    task = get_task("sentiment")
    config = task.config(
        pretrained=str(runs["english"]), hidden_size=8, embedding_size=4, lexicon=False
    )
    job = TaskJob(task, config, tmp_path / "run", False, lambda *a: None, Ranks())
    english = load_run(runs["english"], get_task("english"), warn=lambda *a: None)
    assert job.vocabularies == english[3]  # the pre-trained run's vocabulary
    pretrained = english[0].state_dict()
    for name, value in job.model.state_dict().items():
        if name.startswith(("embedding.", "encoder.")):
            assert torch.equal(value, pretrained[name]), name
    # With --lexicon the first layer reads 2 more inputs: the word-vector columns are the run's.
    lexical = TaskJob(
        task, task.config(pretrained=str(runs["english"]), hidden_size=8, embedding_size=4,
                          lexicon=True),
        tmp_path / "lexical", False, lambda *a: None, Ranks(),
    )  # fmt: skip
    for name, value in lexical.model.state_dict().items():
        if name.startswith(("embedding.", "encoder.")):
            assert torch.equal(value[..., : pretrained[name].shape[-1]], pretrained[name]), name
    assert lexical.model.encoder.rnn.weight_ih_l0.shape == (32, 4 + 2)
    wrong = ["task", "sentiment", "train", "--out", str(tmp_path / "r2"), "--hidden-size", "16",
             "--embedding-size", "4", "--pretrained", str(runs["english"])]  # fmt: skip
    assert main(wrong) == 2
    assert "was trained with other sizes: give --hidden-size 8" in capsys.readouterr().err
    assert main([*wrong[:5], "--pretrained", str(runs["dates"])]) == 2
    assert "holds a dates run, not english" in capsys.readouterr().err


def test_sentiment_with_the_lexicon_trains_and_predicts(tmp_path, capsys):
    run = tmp_path / "lexical"
    assert main(["task", "sentiment", "train", "--out", str(run), *TINY, "--lexicon"]) == 0
    assert json.loads((run / "task.json").read_text())["config"]["lexicon"] is True
    capsys.readouterr()
    assert (
        main(["task", "sentiment", "predict", str(run), "--text", "an abysmal , dreadful film"])
        == 0
    )
    label, probability = capsys.readouterr().out.split()
    assert label in ("negative", "positive") and 0.5 <= float(probability) <= 1.0
    # A word the vocabulary lacks but the lexicon rates still informs the answer...
    assert main(["task", "sentiment", "predict", str(run), "--text", "dreadful"]) == 0
    capsys.readouterr()
    # ...while a model without the lexicon refuses a sentence of unknown words.
    plain = tmp_path / "plain"
    assert main(["task", "sentiment", "train", "--out", str(plain), *TINY, "--no-lexicon"]) == 0
    capsys.readouterr()
    assert main(["task", "sentiment", "predict", str(plain), "--text", "dreadful"]) == 2
    assert "unknown to the model (dreadful)" in capsys.readouterr().err
    # The lexicon is part of the model: a resumed run cannot drop it.
    assert main(["task", "sentiment", "train", "--resume", str(run), "--no-lexicon"]) == 2
    assert "lexicon" in capsys.readouterr().err
    # So is the pooling (concat by default for sentiment).
    assert json.loads((run / "task.json").read_text())["config"]["pooling"] == "concat"
    assert main(["task", "sentiment", "train", "--resume", str(run), "--pooling", "final"]) == 2
    assert "pooling" in capsys.readouterr().err


def test_ctrl_c_stops_after_the_step_and_saves(tmp_path):
    import os
    import signal

    from rnnkit.tasks.training import train
    from rnnkit.training.checkpoint import complete_checkpoints

    class Interrupted(type(get_task("dates"))):
        def loss(self, *args, **kwargs):
            os.kill(os.getpid(), signal.SIGINT)  # as if the user pressed Ctrl-C during the step
            return super().loss(*args, **kwargs)

    task = Interrupted()
    config = task.config(train_examples=64, eval_examples=8, hidden_size=8, batch_size=16)
    result = train(task, config, tmp_path / "run", log=lambda *a: None)
    assert result == {"stopped_by": "SIGINT", "exit_code": 130, "steps": 1}
    assert len(complete_checkpoints(tmp_path / "run")) == 1


def test_a_non_finite_loss_is_skipped_before_it_touches_the_weights(tmp_path):
    import torch

    from rnnkit.tasks.runner import load_run
    from rnnkit.tasks.training import train

    calls = []

    class Unstable(type(get_task("dates"))):
        def loss(self, *args, **kwargs):
            loss = super().loss(*args, **kwargs)
            calls.append(1)
            return loss * float("nan") if len(calls) == 2 else loss

    task = Unstable()
    config = task.config(
        train_examples=64, eval_examples=8, hidden_size=8, batch_size=16, max_epochs=1
    )
    logged = []
    result = train(task, config, tmp_path / "run", log=logged.append)
    assert result["steps"] == 4  # four batches, the second skipped
    assert any("non-finite loss (nan) at step 1: step skipped" in line for line in logged)
    model = load_run(tmp_path / "run", task, warn=logged.append)[0]
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_predict_reads_one_input_per_line_of_standard_input(runs, capsys, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("March 3, 2021\n\n25.12.1999\n"))
    assert main(["task", "dates", "predict", str(runs["dates"])]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2  # the blank line is skipped
