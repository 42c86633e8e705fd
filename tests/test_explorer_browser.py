"""`rnnkit explore` in a real browser: headless Chromium (Debian's `chromium`, driven by
Playwright) against a running server, doing what a person does: type and hover, switch the
unit, select a stretch and match it, stream a sample and stop it, compare runs, open a task
run's attention.

The runs are the suite's tiny ones; RNNKIT_EXPLORE_RUNS="LM_RUN LM_RUN TASK_RUN" points the
same tests at real runs (RNNKIT_EXPLORE_TEXT_FILE: the text the page starts with;
RNNKIT_EXPLORE_SELECT: the stretch of it to select), and RNNKIT_SCREENSHOTS=DIR keeps their
screenshots (the docs' come from here: see docs/inside.md).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("RNNKIT_CHROMIUM") or shutil.which("chromium")
if CHROMIUM is None:
    pytest.skip(
        "no chromium on this machine (.ci/run installs Debian's chromium)", allow_module_level=True
    )
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

TEXT = 'name = "ROMEO"\nprint(name, (1, 2))\n'  # quotes and brackets: the ranking has features


@pytest.fixture(scope="module")
def server(explorer_runs, tmp_path_factory):
    runs = os.environ.get("RNNKIT_EXPLORE_RUNS", "").split() or [
        explorer_runs["lstm"],
        explorer_runs["gru"],
        explorer_runs["dates"],
    ]
    start = tmp_path_factory.mktemp("explore-browser") / "start.txt"
    given = os.environ.get("RNNKIT_EXPLORE_TEXT_FILE")
    start.write_text(Path(given).read_text() if given else _known_text(runs[0]))
    process = subprocess.Popen(
        [sys.executable, "-m", "rnnkit", "explore", *map(str, runs), "--port", "0",
         "--text", str(start)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    line = process.stdout.readline()
    assert "open http://" in line, line + process.stderr.read()
    yield line.split("open ")[1].split()[0]
    process.terminate()
    process.wait(timeout=20)


def _known_text(run) -> str:
    """The first 600 characters of the run's validation text (characters it knows)."""
    from rnnkit.training.run import load_trained_model, validation_ids

    _, config, vocabulary, _ = load_trained_model(Path(run), warn=lambda *a: None)
    return vocabulary.decode(validation_ids(Path(run), config, vocabulary)[:600])


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    page = browser.new_page(viewport={"width": 1300, "height": 820})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server)
    page.wait_for_function("document.querySelectorAll('#heat span').length > 0")
    yield page
    assert not errors, errors
    page.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = os.environ.get("RNNKIT_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def span(page, i):
    return page.locator(f'#heat span[data-i="{i}"]')


def wait_for_status(page, words):
    page.wait_for_function(
        "words => document.getElementById('status').textContent.includes(words)", arg=words
    )


def test_type_text_read_it_and_hover_a_character(page, shots):
    text = page.input_value("#text")[:600]
    page.fill("#text", text)
    page.click("#read-button")
    wait_for_status(page, f"read {len(text)} characters")
    assert page.locator("#heat span").count() == len(text)
    span(page, 10).hover()
    tooltip = page.locator("#tooltip")
    tooltip.wait_for(state="visible")
    shown = tooltip.inner_text()
    assert "at 10" in shown and "next character:" in shown and "rank" in shown
    assert "nats" in shown  # what this character cost the model
    assert page.locator("#meaning .unit-button").count() > 0  # units ranked by meaning
    page.screenshot(path=shots / "explore-read.png")


def test_switching_the_unit_recolours_the_text(page):
    before = page.eval_on_selector_all("#heat span", "spans => spans.map(s => s.style.background)")
    page.fill("#index", "1" if page.input_value("#index") != "1" else "2")
    page.dispatch_event("#index", "change")
    page.wait_for_function(
        "before => [...document.querySelectorAll('#heat span')].some("
        "(s, i) => s.style.background !== before[i])",
        arg=before,
    )
    page.select_option("#part", "h")
    span(page, 3).hover()
    assert "h = " in page.inner_text("#tooltip")


def test_select_a_stretch_get_its_units_and_match_them(page, server, shots):
    import httpx2 as httpx

    text = page.input_value("#text")
    run = page.input_value("#run")
    wanted = os.environ.get("RNNKIT_EXPLORE_SELECT")  # e.g. a string literal of the text
    stretches = [(s, s + 3) for s in range(2, 200, 3)]
    if wanted:
        stretches = [(text.index(wanted), text.index(wanted) + len(wanted))]
    found = None
    for threshold in (0.5, 0.4, 0.3, 0.1):  # a stretch where some unit switches on
        for coverage in (1.0, 0.9):
            for start, end in stretches:
                answer = httpx.post(server + "api/select", json={"run": run, "text": text,
                                    "start": start, "end": end, "threshold": threshold,
                                    "coverage": coverage}, timeout=60).json()  # fmt: skip
                if answer["units"]:
                    found = start, end, threshold, coverage
                    break
            if found:
                break
        if found:
            break
    assert found, "no unit switches on over the stretches tried"
    start, end, threshold, coverage = found
    page.fill("#threshold", str(threshold))  # a range input: fill sets it and says so
    page.fill("#coverage", str(round(coverage * 100)))
    span(page, end - 1).scroll_into_view_if_needed()
    first, last = span(page, start).bounding_box(), span(page, end - 1).bounding_box()
    page.mouse.move(first["x"] + 1, first["y"] + first["height"] / 2)
    page.mouse.down()
    page.mouse.move(last["x"] + last["width"] - 1, last["y"] + last["height"] / 2, steps=5)
    page.mouse.up()
    assert (page.input_value("#sel-start"), page.input_value("#sel-end")) == (str(start), str(end))
    page.click("#find-units")
    page.locator("#units .unit-button").first.wait_for()
    page.click("#match-text")
    page.locator("#matches .match").first.wait_for()
    assert page.locator("#heat span.hit").count() >= end - start
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=shots / "explore-select-match.png")
    page.click("#match-validation")
    page.wait_for_function(
        "document.querySelector('#matches p').textContent.includes('validation')"
    )


def test_stream_a_sample_and_stop_it(page, shots):
    page.click('[data-tab="sample"]')
    page.fill("#length", "5000")
    page.click("#sample-start")
    page.wait_for_function(
        "document.querySelectorAll('#sample-heat span').length > 60", timeout=90_000
    )
    page.click("#sample-stop")
    wait_for_status(page, "stopped")
    count = page.locator("#sample-heat span").count()
    assert 60 < count < 5000
    wait_for_status(page, "read in full")  # so hover works as on the Read tab
    page.locator('#sample-heat span[data-i="20"]').hover()
    assert "next character:" in page.inner_text("#tooltip")
    page.screenshot(path=shots / "explore-sample.png")


def test_compare_runs_by_their_loss_per_character(page, shots):
    page.click('[data-tab="compare"]')
    page.click("#compare-button")
    wait_for_status(page, "compared")
    runs = page.locator("#run option").count()
    panels = page.locator("#compare-out .run-panel")
    assert panels.count() == runs + (1 if runs > 1 else 0)
    assert "nats/char" in panels.first.inner_text()
    page.screenshot(path=shots / "explore-compare.png")


def test_a_task_runs_attention_is_interactive(page, shots):
    page.click('[data-tab="task"]')
    page.click("#task-button")
    page.locator("table.attention").wait_for()
    assert page.inner_text("#task-output")
    page.locator("table.attention td").first.hover()
    assert "α =" in page.inner_text("#tooltip")
    page.screenshot(path=shots / "explore-attention.png")


def test_an_error_is_shown_not_thrown(page):
    page.fill("#text", "characters it never saw: ☃ ✓")
    page.click("#read-button")
    page.wait_for_function("document.getElementById('status').className === 'error'")
    assert "not in the model's vocabulary" in page.inner_text("#status")
