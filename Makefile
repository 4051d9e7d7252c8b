# Two commands for a fresh machine: `make demo` and `make test`.
# `make test` installs exactly requirements/test.lock; `make test-latest` tests the declared
# ranges at today's newest versions in a venv of its own; `make upgrade` moves the lock.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
MODEL ?=
# LOCKED=1: install the lock; LOCKED=0: resolve the declared ranges (test-latest).
LOCKED ?= 1
LOCK := requirements/test.lock
STAMP := $(VENV)/.installed
INTEGRATIONS := integrations/llama-index integrations/langchain
EDITABLES := -e . $(addprefix -e ,$(INTEGRATIONS))
TOOLS := .venv-lock
UV := $(TOOLS)/bin/uv
# Locks are resolved for the Python the suite runs on; our own packages are installed editable.
COMPILE := $(UV) pip compile --quiet --python-version 3.11 --no-emit-package omni-rag \
	--no-emit-package llama-index-omni-rag --no-emit-package langchain-omni-rag requirements/test.in

.PHONY: install test lint typecheck pytest demo bench clean lock upgrade test-latest test-lowest

ifeq ($(LOCKED),1)
$(STAMP): $(LOCK) pyproject.toml Makefile $(addsuffix /pyproject.toml,$(INTEGRATIONS))
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet $$(grep -E '^pip==' $(LOCK))
	$(PIP) install --quiet -r $(LOCK)
	$(PIP) install --quiet --no-deps $(EDITABLES)
	$(PIP) check
	touch $(STAMP)
else
$(STAMP): pyproject.toml Makefile $(addsuffix /pyproject.toml,$(INTEGRATIONS))
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet --upgrade --upgrade-strategy eager \
		-e '.[test]' -e 'integrations/llama-index[test]' -e 'integrations/langchain[test]'
	$(PIP) check
	touch $(STAMP)
endif

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

# The newest versions the declared ranges allow, no lock: tells "a release broke it" apart
# from "my change broke it". Prints what it tested.
test-latest:
	$(MAKE) test VENV=.venv-latest LOCKED=0
	.venv-latest/bin/pip freeze --exclude-editable | grep -iE '^(transformers|torch|mypy|ruff|langchain-core|llama-index-core|qdrant-client|qdrant-edge-py)=='

$(UV):
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==0.13.10

# Pins new requirements, keeps every existing pin.
lock: $(UV)
	$(COMPILE) -o $(LOCK)
	$(COMPILE) --resolution lowest-direct -o requirements/lowest.lock

# Every pin moved to the newest version the declared ranges allow.
upgrade: $(UV)
	$(COMPILE) --upgrade -o $(LOCK)

# Every declared minimum, with what it needs: the suite (not the linters, whose minimums are
# the lock's) on the lowest versions pyproject admits.
test-lowest:
	$(MAKE) pytest VENV=.venv-lowest LOCK=requirements/lowest.lock

demo: install
	$(PY) examples/demo.py $(if $(MODEL),--model $(MODEL),)

bench: install
	$(PY) benchmarks/bench_embedder.py
	$(PY) benchmarks/bench_store.py --points 20000

clean:
	rm -rf $(VENV) .venv-latest .venv-lowest $(TOOLS) .omni-rag .pytest_cache .mypy_cache .ruff_cache
