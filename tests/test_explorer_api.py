"""`rnnkit explore`'s API through Starlette's test client: every endpoint, its numbers checked
against the library computed directly, every bad input, requests at once, and the server
process (address, warning, Ctrl-C)."""

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from starlette.testclient import TestClient

from helpers import CORPUS
from rnnkit.explorer.app import MAX_BODY, create_app
from rnnkit.explorer.runs import MAX_TEXT, load_runs
from rnnkit.generation.sampling import generate
from rnnkit.inside.activations import activations
from rnnkit.training.run import load_trained_model, validation_ids

TEXT = CORPUS.read_text()[200:420]  # characters the tiny runs know: the start of their text


@pytest.fixture(scope="module")
def loaded(explorer_runs):
    return load_runs([explorer_runs["lstm"], explorer_runs["gru"], explorer_runs["dates"]])


@pytest.fixture(scope="module")
def client(loaded):
    with TestClient(create_app(loaded, TEXT), raise_server_exceptions=False) as client:
        yield client


def post(client, path, **body):
    return client.post(path, json=body)


def test_the_page_and_its_assets_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert '<script src="/assets/explorer.js">' in page.text
    assert "http" not in page.text.replace("http-equiv", "")  # no CDN: everything is local
    assert client.get("/assets/explorer.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/assets/explorer.css").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/assets/app.py",
        "/assets/..%2Fapp.py",
        "/assets/..%2F..%2F..%2Fetc%2Fpasswd",
        "/../../etc/passwd",
        "/static/index.html",
        "/api/../explorer/app.py",
        "/etc/passwd",
    ],
)
def test_no_request_path_reaches_the_file_system(client, path):
    answer = client.get(path)
    assert answer.status_code == 404
    assert "error" in answer.json()
    assert "root:" not in answer.text and "import" not in answer.text


def test_a_request_for_another_host_is_refused_when_serving_locally(loaded):
    from rnnkit.explorer.server import LOCAL_NAMES

    app = create_app(loaded, TEXT, allowed_hosts=LOCAL_NAMES)
    assert TestClient(app, base_url="http://127.0.0.1:8000").get("/api/runs").status_code == 200
    assert TestClient(app, base_url="http://localhost:8000").get("/").status_code == 200
    rebound = TestClient(app, base_url="http://attacker.example:8000").get("/api/runs")
    assert rebound.status_code == 400 and "runs" not in rebound.text


def test_runs_lists_every_run_with_what_it_can_show(client, loaded):
    answer = client.get("/api/runs").json()
    kinds = {run["name"]: run for run in answer["runs"]}
    assert answer["text"] == TEXT
    assert answer["limits"]["text"] == MAX_TEXT
    lstm = kinds[loaded_name(loaded, "LSTM")]
    assert lstm["parts"] == ["h", "c", "i", "f", "g", "o"] and lstm["value"] == "c"
    assert kinds[loaded_name(loaded, "GRU")]["parts"] == ["h", "r", "z", "n"]
    assert kinds["dates"]["type"] == "task" and kinds["dates"]["attention"] is True


def loaded_name(loaded, cell):
    return next(n for n, r in loaded.items() if getattr(r, "info", None) and
                r.info().get("cell") == cell)  # fmt: skip


def test_read_gives_the_models_own_loss_guesses_and_units(client, loaded, explorer_runs):
    name = loaded_name(loaded, "LSTM")
    answer = post(client, "/api/read", run=name, text=TEXT).json()
    model, _, vocabulary, _ = load_trained_model(explorer_runs["lstm"])
    ids = torch.as_tensor(vocabulary.encode(TEXT).astype("int64"))[None]
    with torch.no_grad():
        logits, _ = model(ids)
    log_p = torch.log_softmax(logits[0], -1)
    expected_loss = -log_p[:-1].gather(1, ids[0, 1:, None]).squeeze(1)
    assert answer["length"] == len(TEXT)
    assert answer["loss"][0] is None
    np.testing.assert_allclose(answer["loss"][1:], expected_loss.numpy(), atol=2e-3)
    assert answer["mean_loss"] == pytest.approx(expected_loss.mean().item(), abs=1e-4)
    assert answer["top_ids"][5] == log_p[5].topk(5).indices.tolist()
    rank = int((log_p[5] > log_p[5, ids[0, 6]]).sum()) + 1
    assert answer["next_rank"][5] == rank and answer["next_rank"][-1] == 0
    assert set(answer["meaning"]) >= {"line-position"}  # TEXT has lines but no quotes

    unit = post(client, "/api/unit", run=name, text=TEXT, layer=0, index=3).json()["parts"]
    assert set(unit) == {"h", "c", "i", "f", "g", "o"}
    cells = activations(model, vocabulary, TEXT, "cell")  # through the reference path
    np.testing.assert_allclose(unit["c"], cells[0, :, 3], atol=2e-3)


def test_select_finds_units_on_over_the_stretch_and_match_finds_it_again(client, loaded):
    name = loaded_name(loaded, "LSTM")
    found = None
    for start in range(0, 40):  # a stretch where some unit switches on at a low threshold
        answer = post(client, "/api/select", run=name, text=TEXT, start=start, end=start + 2,
                      threshold=0.1).json()  # fmt: skip
        if answer["units"]:
            found = start, answer["units"]
            break
    assert found, "no unit switches at threshold 0.1 anywhere in the first 40 characters"
    start, units = found
    values = {
        (u["layer"], u["index"]): post(
            client, "/api/unit", run=name, text=TEXT, layer=u["layer"], index=u["index"]
        ).json()["parts"]["c"]
        for u in units
    }
    for u in units:
        signed = u["sign"] * np.asarray(values[u["layer"], u["index"]])
        assert (signed[start : start + 2] >= 0.1 - 1e-3).all()
        assert all(signed[t] < 0.1 + 1e-3 for t in (start - 1, start + 2) if t >= 0)
    chosen = [{"layer": u["layer"], "index": u["index"], "sign": u["sign"]} for u in units]
    matches = post(
        client, "/api/match", run=name, text=TEXT, units=chosen, threshold=0.1, limit=500
    ).json()
    assert any(m["start"] <= start and m["end"] >= start + 2 for m in matches["matches"])
    assert matches["total"] == len(matches["matches"])  # all of them: the limit is 500
    for m in matches["matches"]:
        assert m["span"] == TEXT[m["start"] : m["end"]]
    elsewhere = post(client, "/api/match", run=name, text=TEXT, units=chosen, threshold=0.1,
                     where="validation").json()  # fmt: skip
    assert elsewhere["where"] == "validation" and isinstance(elsewhere["matches"], list)


def test_validation_gives_the_runs_validation_text(client, loaded, explorer_runs):
    name = loaded_name(loaded, "LSTM")
    answer = client.get("/api/validation", params={"run": name, "start": 10, "length": 50})
    _, config, vocabulary, _ = load_trained_model(explorer_runs["lstm"])
    ids = validation_ids(explorer_runs["lstm"], config, vocabulary)
    assert answer.json()["text"] == vocabulary.decode(ids[10:60])
    outside = client.get("/api/validation", params={"run": name, "start": 10**7})
    assert outside.status_code == 422 and "outside the validation text" in outside.json()["error"]


def events(response) -> list[dict]:
    return [
        json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")
    ]


def test_sample_streams_the_same_text_as_generate_with_the_units_values(client, loaded):
    name = loaded_name(loaded, "LSTM")
    params = {"run": name, "prime": "ROMEO", "length": 80, "seed": 4, "temperature": 0.7,
              "layer": 0, "index": 2, "part": "c"}  # fmt: skip
    response = client.get("/api/sample", params=params)
    assert response.headers["content-type"].startswith("text/event-stream")
    chunks = events(response)
    assert chunks[-1] == {} and "event: done" in response.text
    text = "".join(c.get("text", "") for c in chunks)
    run = loaded[name]
    prime = run.vocabulary.encode("ROMEO").astype("int64").tolist()
    expected = run.vocabulary.decode(list(generate(run.model, prime, 80, 0.7, seed=4)))
    assert text == expected
    values = [v for c in chunks for v in c.get("values", [])]
    assert len(values) == 80 and all(-1 <= v <= 1 for v in values)
    reading = post(client, "/api/unit", run=name, text="ROMEO" + text, layer=0, index=2).json()
    np.testing.assert_allclose(values, reading["parts"]["c"][5:], atol=3e-3)


def test_sample_with_int8_weights_streams_generates_int8_text(client, loaded):
    name = loaded_name(loaded, "LSTM")
    params = {"run": name, "prime": "ROMEO", "length": 40, "seed": 4, "weights": "int8"}
    text = "".join(c.get("text", "") for c in events(client.get("/api/sample", params=params)))
    run = loaded[name]
    prime = run.vocabulary.encode("ROMEO").astype("int64").tolist()
    expected = list(generate(run.model, prime, 40, seed=4, weights="int8"))
    assert text == run.vocabulary.decode(expected)


def test_task_run_answers_with_its_attention(client):
    answer = post(client, "/api/task", run="dates", text="the 3rd of march 1994").json()
    assert isinstance(answer["output"], str)
    weights = np.asarray(answer["weights"])
    assert weights.shape == (len(answer["target"]), len(answer["source"]))
    np.testing.assert_allclose(weights.sum(1), 1, atol=1e-3)


@pytest.mark.parametrize(
    ("path", "body", "status", "words"),
    [
        ("/api/read", {"run": "nope", "text": "a"}, 404, "no language-model run named 'nope'"),
        ("/api/read", {"run": "dates", "text": "a"}, 404, "the runs are"),
        ("/api/read", {"run": "LSTM", "text": ""}, 422, "the text is empty"),
        ("/api/read", {"run": "LSTM", "text": "x" * (MAX_TEXT + 1)}, 413, "at most 10,000"),
        ("/api/read", {"run": "LSTM", "text": "snow ☃ and ü"}, 422,
         "not in the model's vocabulary"),
        ("/api/read", {"run": "LSTM"}, 400, "'text' must be a string"),
        ("/api/read", {"run": "LSTM", "text": 5}, 400, "'text' must be a string"),
        ("/api/unit", {"run": "LSTM", "text": "ab", "layer": 0, "index": 999}, 422,
         "out of range"),
        ("/api/unit", {"run": "LSTM", "text": "ab", "layer": 7, "index": 0}, 422,
         "out of range"),
        ("/api/unit", {"run": "LSTM", "text": "ab", "layer": "0", "index": 0}, 400,
         "'layer' must be an integer"),
        ("/api/select", {"run": "LSTM", "text": "abc", "start": 2, "end": 9}, 422,
         "not a stretch"),
        ("/api/select", {"run": "LSTM", "text": "abc", "start": 0, "end": 2, "coverage": 0},
         422, "coverage must be"),
        ("/api/match", {"run": "LSTM", "text": "abc", "units": []}, 422, "no units"),
        ("/api/match", {"run": "LSTM", "text": "abc", "units": "0:1"}, 400, "must be a list"),
        ("/api/match", {"run": "LSTM", "text": "abc", "units": [{"layer": 0, "index": 0}],
                        "where": "/etc"}, 400, "where must be"),
        ("/api/task", {"run": "LSTM", "text": "x"}, 404, "no task run"),
        ("/api/read", {"run": ["LSTM"], "text": "ab"}, 400, "'run' must be a run's name"),
        ("/api/task", {"run": {"a": 1}, "text": "x"}, 400, "'run' must be a run's name"),
        ("/api/match", {"run": "LSTM", "text": "abc", "units": [{"layer": 0, "index": 0}],
                        "need": "all"}, 400, "need must be an integer"),
        ("/api/task", {"run": "dates", "text": "  "}, 422, "the input is empty"),
    ],
)  # fmt: skip
def test_bad_requests_get_a_clear_json_error(client, loaded, path, body, status, words):
    if body.get("run") == "LSTM":
        body = {**body, "run": loaded_name(loaded, "LSTM")}
    answer = client.post(path, json=body)
    assert answer.status_code == status, answer.text
    assert words in answer.json()["error"]


def test_bodies_that_are_not_json_objects_or_too_big_are_refused(client):
    assert client.post("/api/read", content=b"{not json").status_code == 400
    assert client.post("/api/read", content=b"[1, 2]").json()["error"].endswith("JSON object")
    big = client.post("/api/read", content=b" " * (MAX_BODY + 1))
    assert big.status_code == 413 and "bytes" in big.json()["error"]


@pytest.mark.parametrize(
    ("params", "status", "words"),
    [
        ({"temperature": "-1"}, 422, "--temperature must be"),
        ({"temperature": "hot"}, 400, "temperature must be a number"),
        ({"length": "0"}, 400, "length must be between"),
        ({"top_k": "100000"}, 422, "--top-k must be between"),
        ({"index": "5000"}, 422, "out of range"),
        ({"part": "f"}, 400, "part must be h"),
        ({"prime": "☃"}, 422, "not in the model's vocabulary"),
        ({"weights": "int4"}, 400, "weights must be one of float32, int8"),
    ],
)
def test_bad_sampling_requests_get_a_clear_error(client, loaded, params, status, words):
    answer = client.get("/api/sample", params={"run": loaded_name(loaded, "LSTM"), **params})
    assert answer.status_code == status, answer.text
    assert words in answer.json()["error"]


def test_requests_at_once_each_get_their_own_answer(client, loaded):
    name = loaded_name(loaded, "LSTM")
    texts = [TEXT[k:] + TEXT[:k] for k in range(12)]

    def ask(text):
        read = post(client, "/api/read", run=name, text=text).json()
        unit = post(client, "/api/unit", run=name, text=text, layer=0, index=1).json()
        return read["loss"], unit["parts"]["h"]

    alone = [ask(text) for text in texts]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(ask, texts * 2))
    assert together == alone * 2


def test_loading_something_that_is_not_a_run_is_a_clear_error(tmp_path):
    from rnnkit.errors import UsageError

    with pytest.raises(UsageError, match=r"no such run directory|not a run|config\.json"):
        load_runs([tmp_path])


def start_server(*args):
    process = subprocess.Popen(
        [sys.executable, "-m", "rnnkit", "explore", *map(str, args), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline()
    return process, line


@pytest.mark.slow
def test_the_server_prints_its_address_serves_and_stops_on_ctrl_c(explorer_runs):
    import httpx2 as httpx

    process, line = start_server(explorer_runs["lstm"], explorer_runs["dates"])
    try:
        assert "open http://127.0.0.1:" in line, line + process.stderr.read()
        address = line.split("open ")[1].split()[0]
        assert httpx.get(address + "api/runs", timeout=30).status_code == 200
        process.send_signal(signal.SIGINT)
        started = time.monotonic()
        assert process.wait(timeout=15) == 0
        assert time.monotonic() - started < 10
        assert "stopped" in process.stderr.read()
    finally:
        process.kill()


@pytest.mark.slow
def test_the_server_warns_off_loopback_and_explains_a_taken_port(explorer_runs):
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    done = subprocess.run(
        [sys.executable, "-m", "rnnkit", "explore", str(explorer_runs["lstm"]), "--port",
         str(port)], capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    taken.close()
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr and "--port 0" in done.stderr
    process = subprocess.Popen(
        [sys.executable, "-m", "rnnkit", "explore", str(explorer_runs["lstm"]), "--host",
         "0.0.0.0", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        assert "open http://0.0.0.0:" in process.stdout.readline()
        process.send_signal(signal.SIGINT)
        process.wait(timeout=15)
        assert "warning: serving on 0.0.0.0" in process.stderr.read()
    finally:
        process.kill()


@pytest.mark.slow
def test_a_caption_run_sends_its_image_and_a_sentiment_run_its_prediction(tmp_path):
    from rnnkit.cli import main

    tiny = ["--max-epochs", "1", "--train-examples", "64", "--eval-examples", "8",
            "--batch-size", "32", "--hidden-size", "8", "--embedding-size", "4"]  # fmt: skip
    caption, sentiment = tmp_path / "caption", tmp_path / "sentiment"
    assert main(["task", "caption", "train", "--out", str(caption), *tiny,
                 "--attention-size", "4", "--beam-width", "1"]) == 0  # fmt: skip
    assert main(["task", "sentiment", "train", "--out", str(sentiment), *tiny]) == 0
    client = TestClient(create_app(load_runs([caption, sentiment])))
    answer = post(client, "/api/task", run="caption", text="314").json()
    image = np.asarray(answer["image"])
    assert image.ndim == 2 and image.shape[1] == len(answer["source"])
    assert np.asarray(answer["weights"]).shape == (len(answer["target"]), len(answer["source"]))
    opinion = post(client, "/api/task", run="sentiment", text="a wonderful film").json()
    assert opinion["weights"] is None and opinion["output"]
    bad = post(client, "/api/task", run="caption", text="31x")
    assert bad.status_code == 422 and "error" in bad.json()
