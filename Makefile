# Two commands for a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
MODEL ?=
STAMP := $(VENV)/.installed
INTEGRATIONS := integrations/llama-index integrations/langchain

.PHONY: install test lint typecheck pytest demo bench clean

$(STAMP): pyproject.toml Makefile $(addsuffix /pyproject.toml,$(INTEGRATIONS))
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[test]'
	$(PIP) install --quiet -e 'integrations/llama-index[test]' -e 'integrations/langchain[test]'
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(VENV)/bin/ruff check omni_rag tests benchmarks examples integrations
	$(VENV)/bin/ruff format --check omni_rag tests benchmarks examples integrations

# The two integration packages share the `llama_index` / `langchain_*` namespaces with their
# frameworks, so each is type-checked from its own folder.
typecheck: install
	$(VENV)/bin/mypy omni_rag
	cd integrations/llama-index && ../../$(VENV)/bin/mypy --explicit-package-bases --namespace-packages llama_index
	cd integrations/langchain && ../../$(VENV)/bin/mypy langchain_omni_rag

pytest: install
	$(VENV)/bin/pytest -q tests $(addsuffix /tests,$(INTEGRATIONS))

test: lint typecheck pytest

demo: install
	$(PY) examples/demo.py $(if $(MODEL),--model $(MODEL),)

bench: install
	$(PY) benchmarks/bench_embedder.py
	$(PY) benchmarks/bench_store.py --points 20000

clean:
	rm -rf $(VENV) .omni-rag .pytest_cache .mypy_cache .ruff_cache
