# Two commands do all the set-up on a fresh machine with python3 and make:
#   make demo   run the example site and the Open Humans sandbox together
#   make test   run the test suite (SQLite; PostgreSQL when DATABASE_URL is set)

PYTHON ?= python3
VENV ?= .venv
# Extra requirement for a CI leg, e.g. DJANGO_SPEC='Django>=6,<7'.
DJANGO_SPEC ?=
BIN := $(VENV)/bin
# The demo needs only the library; tests, lint, types and docs need the extras too.
DEMO_STAMP := $(VENV)/.installed-demo
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck docs bench dist clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(DEMO_STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e . $(if $(DJANGO_SPEC),'$(DJANGO_SPEC)')
	@touch $(DEMO_STAMP)

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e '.[test,docs]' $(if $(DJANGO_SPEC),'$(DJANGO_SPEC)')
	@touch $(STAMP) $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/python example/run_demo.py

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -b html -d docs/_build/doctrees docs docs/_build/html

BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	@touch $(BENCH_STAMP)

# Ours against django-open-humans 0.2.0 (bench/.venv-old, built from PyPI on first use);
# writes docs/_static/bench/. Root builds a network namespace for the 20 ms link.
bench: $(BENCH_STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# A wheel of this version in dist/, for `pip install dist/django_open_humans-*.whl`.
dist: $(DEMO_STAMP)
	rm -rf build dist
	$(BIN)/python -m pip wheel --quiet --no-deps -w dist .
	@ls dist/*.whl

clean:
	rm -rf $(VENV) docs/_build build dist .pytest_cache .mypy_cache .ruff_cache
