# The two commands of the README. Each creates .venv when missing, installs the CPU build of
# torch first (a plain `pip install torch` would pull a multi-GB CUDA build), then rnnkit itself.
# Safe to run twice: the install step re-runs only when pyproject.toml changed.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
TORCH_VERSION := 2.13.0

.PHONY: demo test test-fast test-course course course-docs lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==$(TORCH_VERSION)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

# The demo: the layers beside torch.nn (seconds), then a character model trained for two
# minutes on the bundled Tiny Shakespeare and a sample from it. runs/demo is scratch space,
# replaced on every `make demo`.
DEMO_RUN := runs/demo
# The model, chunk length, dropout and learning rates are the defaults for a short --time-budget.
DEMO_TRAIN := --time-budget 2

# The C++ time loops (src/rnnkit/engine/kernels) are compiled here, once, rather than inside
# the first test or training that needs them; the build is cached per CPU and torch version
# (src/rnnkit/engine/compiled.py), and without a compiler rnnkit runs its Python loops.
$(VENV)/.kernels: $(VENV)/.installed $(wildcard src/rnnkit/engine/kernels/*)
	$(BIN)/python -m rnnkit.engine.compiled
	touch $@

demo: $(VENV)/.kernels
	$(BIN)/rnnkit demo
	rm -rf $(DEMO_RUN)
	$(BIN)/rnnkit train --out $(DEMO_RUN) $(DEMO_TRAIN)
	$(BIN)/rnnkit eval $(DEMO_RUN)
	$(BIN)/rnnkit sample $(DEMO_RUN) --length 600 --prime "ROMEO:" --seed 1
	@echo "Look inside it in your browser: $(BIN)/rnnkit explore $(DEMO_RUN)"

# Two worker processes (pytest-xdist): on 2 cores they take about half the time of one (the
# exact times depend on the machine). Each worker builds the session fixtures (tiny
# trained runs) once.
test: $(VENV)/.kernels
	$(BIN)/python -m pytest -n 2 -m "not course"

# The quick tier for your own loop (under a minute on 2 cores): everything not marked slow,
# on the same two workers.
test-fast: $(VENV)/.kernels
	$(BIN)/python -m pytest -q -n 2 -m "not slow and not course"

# The course (course/NN_name.py, jupytext percent files): `make course` opens them in Jupyter
# as notebooks (course/notebooks/, made where missing, so your edits there stay);
# `make test-course` executes every one with its assertions (CI runs it after `make test`);
# `make course-docs` executes them again and writes the pages in docs/course/.
course: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[dev,course]"
	$(BIN)/python course/build.py notebooks
	$(BIN)/jupyter notebook course/notebooks

test-course: $(VENV)/.kernels
	$(BIN)/python -m pytest -n 2 -m course tests/test_course.py

course-docs: $(VENV)/.kernels
	$(BIN)/python course/build.py docs

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
