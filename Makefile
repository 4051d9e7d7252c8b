# Two commands for a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
MODEL ?=
STAMP := $(VENV)/.installed

.PHONY: install test lint typecheck pytest demo clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(VENV)/bin/ruff check omni_rag tests benchmarks examples
	$(VENV)/bin/ruff format --check omni_rag tests benchmarks examples

typecheck: install
	$(VENV)/bin/mypy omni_rag

pytest: install
	$(VENV)/bin/pytest -q

test: lint typecheck pytest

demo: install
	$(PY) examples/demo.py $(if $(MODEL),--model $(MODEL),)

clean:
	rm -rf $(VENV) .omni-rag .pytest_cache .mypy_cache .ruff_cache
