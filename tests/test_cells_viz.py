"""`rnnkit cells` and `rnnkit viz`: the features, the ranking on a feature whose answer is known,
and the HTML page (parses, one span per character, escaped, nothing external)."""

import threading
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser

import numpy as np
import pytest

from rnnkit.cli import main
from rnnkit.errors import UsageError
from rnnkit.inside import viz
from rnnkit.inside.cell_ranking import CellRanking, rank_cells, roc_auc
from rnnkit.inside.features import feature_values

CODE = 'def f(x):\n    s = "a(b" + \'c\'  # note "q"\n    return [s, (x)]\n'


def test_quotes_cover_string_literals_only():
    quotes = feature_values(CODE, "quotes")
    inside = "".join(c for c, q in zip(CODE, quotes, strict=True) if q)
    assert inside == "\"a(b\"'c'"  # not the quotes of the comment
    assert feature_values('x = """a\n"b"\n""" + "\\""', "quotes").tolist() == [
        0, 0, 0, 0, *[1] * 12, 0, 0, 0, 1, 1, 1, 1,
    ]  # fmt: skip


def test_brackets_count_depth_outside_strings_and_comments():
    depth = feature_values(CODE, "brackets")
    assert depth[CODE.index("(")] == 1 and depth[CODE.index(")")] == 0
    assert depth[CODE.index("a(b")] == 0  # the bracket inside the string does not count
    assert depth[CODE.rindex("(x)") + 1] == 2  # inside [ and (
    assert feature_values("(((", "brackets").tolist() == [1, 2, 3]
    assert feature_values(")(", "brackets").tolist() == [0, 1]  # never below zero


def test_line_position_indent_and_comment():
    assert feature_values("ab\ncd", "line-position").tolist() == [0, 1, 2, 0, 1]
    assert feature_values("x\n  y\n", "indent").tolist() == [0, 0, 2, 2, 2, 2]
    comment = feature_values(CODE, "comment")
    assert "".join(c for c, v in zip(CODE, comment, strict=True) if v) == '# note "q"\n'


def test_unknown_feature_is_named():
    with pytest.raises(ValueError, match="quotes"):
        feature_values("x", "sentiment")


def test_auc_matches_its_definition():
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.4])
    labels = np.array([0, 0, 1, 1, 1])
    pairs = [(p, n) for p in scores[labels == 1] for n in scores[labels == 0]]
    expected = np.mean([1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs])
    assert roc_auc(scores, labels) == pytest.approx(expected)
    with pytest.raises(UsageError, match="constant"):
        roc_auc(scores, np.zeros(5))


def test_the_ranking_finds_the_planted_cells():
    rng = np.random.default_rng(0)
    steps = 2000
    binary = (rng.random(steps) < 0.3).astype(float)
    numeric = rng.integers(0, 5, steps).astype(float)
    activations = rng.normal(size=(2, steps, 16))
    activations[1, :, 5] = -binary + 0.3 * rng.normal(size=steps)  # low inside the feature
    activations[0, :, 9] = numeric + 0.5 * rng.normal(size=steps)
    best = rank_cells(activations, binary, "quotes")[0]
    assert (best.layer, best.cell, best.sign) == (1, 5, -1) and best.score > 0.95
    best = rank_cells(activations, numeric, "brackets")[0]
    assert (best.layer, best.cell, best.sign) == (0, 9, 1) and best.score > 0.9


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.span_texts, self.depth, self.external = [], 0, []
        self.in_text = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        for name in ("src", "href"):
            if name in attributes:
                self.external.append(attributes[name])
        if tag == "div" and attributes.get("id") == "text":
            self.in_text = True
        elif tag == "span" and self.in_text:
            self.span_texts.append("")

    def handle_endtag(self, tag):
        if tag == "div":
            self.in_text = False

    def handle_data(self, data):
        if self.in_text and self.span_texts:
            self.span_texts[-1] += data


def test_the_page_has_one_escaped_span_per_character_and_nothing_external():
    text = 'if a < b & c > "d":\n\t<script>alert(1)</script>'
    activations = np.linspace(-1, 1, 2 * len(text) * 3).reshape(2, len(text), 3)
    page = viz.render(text, activations, [(0, 1, "x"), (1, 2, "y")], "t <b>", "cell")
    parser = Page()
    parser.feed(page)
    assert parser.span_texts == list(text)  # one span per character, in order, unescaped back
    assert "<script>alert" not in page  # the text's markup was escaped
    assert parser.external == []
    assert "http" not in page.lower()
    assert page.count("<script>") == 1  # only the page's own picker


def test_a_cell_that_does_not_exist_is_named():
    with pytest.raises(UsageError, match="3 cells"):
        viz.render("ab", np.zeros((1, 2, 3)), [(0, 7, "x")], "t", "cell")


def test_the_commands_on_a_trained_run(trained_run, tmp_path, capsys):
    run, data = trained_run
    text = tmp_path / "t.txt"
    text.write_text(data.read_text()[:600])
    out = tmp_path / "page.html"
    assert main(["viz", str(run), "--text", str(text), "--out", str(out)]) == 0
    parser = Page()
    parser.feed(out.read_text())
    assert "".join(parser.span_texts) == text.read_text()
    assert main(["viz", str(run), "--text", str(text), "--cell", "0:3", "--out", str(out)]) == 0
    assert main(["cells", str(run), "--text", str(text), "--feature", "line-position"]) == 0
    printed = capsys.readouterr().out
    assert "|correlation|" in printed and len(printed.splitlines()) == 12


def test_bad_input_to_the_commands(trained_run, tmp_path, capsys):
    run, _ = trained_run
    unknown = tmp_path / "u.txt"
    unknown.write_text("héllo ☃")
    assert main(["cells", str(run), "--text", str(unknown), "--feature", "quotes"]) == 2
    assert "not in the model's vocabulary" in capsys.readouterr().err
    plain = tmp_path / "p.txt"
    plain.write_text("no quotes here at all\n")
    assert main(["cells", str(run), "--text", str(plain), "--feature", "quotes"]) == 2
    assert "constant" in capsys.readouterr().err
    assert main(["viz", str(run), "--text", str(tmp_path / "missing.txt")]) == 2
    assert main(["viz", str(run), "--text", str(plain), "--cell", "x:y"]) == 2
    assert "LAYER:CELL" in capsys.readouterr().err


def test_ranking_every_cell_at_once_equals_counting_pairs_one_cell_at_a_time():
    """The vectorised ranks (ties averaged) give each cell the AUC that counting every
    (positive, negative) pair gives, and the correlation numpy gives."""
    rng = np.random.default_rng(1)
    activations = rng.standard_normal((2, 60, 5))
    activations[0, :, :2] = np.round(activations[0, :, :2])  # many ties in two cells
    labels = (rng.random(60) > 0.6).astype(float)
    numeric = rng.integers(0, 4, 60).astype(float)
    auc = {(s.layer, s.cell): s for s in rank_cells(activations, labels, "quotes")}
    r = {(s.layer, s.cell): s for s in rank_cells(activations, numeric, "brackets")}
    for layer in range(2):
        for cell in range(5):
            values = activations[layer, :, cell]
            positive, negative = values[labels > 0.5], values[labels < 0.5]
            pairs = (positive[:, None] > negative[None, :]) + 0.5 * (
                positive[:, None] == negative[None, :]
            )
            expected = pairs.mean()
            score = auc[layer, cell]
            assert score.score == pytest.approx(max(expected, 1 - expected), abs=1e-12)
            assert score.sign == (1 if expected >= 0.5 else -1)
            correlation = np.corrcoef(values, numeric)[0, 1]
            assert r[layer, cell].score == pytest.approx(abs(correlation), abs=1e-12)
            assert r[layer, cell].sign == (1 if correlation >= 0 else -1)


def test_one_ranking_asked_from_many_threads_at_once_gives_each_the_answer_alone():
    """The explorer serves requests on several threads with one ranking per text: the first
    to need the centred rows or the ranks makes them, and no thread sees them half made."""
    rng = np.random.default_rng(2)
    activations = rng.standard_normal((2, 4000, 64)).astype(np.float32)
    numeric = rng.integers(0, 4, 4000).astype(float)
    labels = (rng.random(4000) > 0.6).astype(float)
    alone = [
        rank_cells(activations, numeric, "brackets"),
        rank_cells(activations, labels, "quotes"),
    ]
    for _ in range(5):
        ranking = CellRanking(activations)
        start = threading.Barrier(8)

        def ask(k, ranking=ranking, start=start):
            start.wait()
            return (
                ranking.rank(numeric, "brackets") if k % 2 == 0 else ranking.rank(labels, "quotes")
            )

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(ask, range(8)))
        assert all(answer == alone[k % 2] for k, answer in enumerate(answers))
