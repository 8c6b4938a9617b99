# The two commands a fresh machine needs: `make demo` and `make test`. Both create .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	@$(PY) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "opsbot needs Python 3.11 or newer (set PY=python3.11)")'
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/opsbot demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

unit: install
	env -u HTTP_PROXY -u HTTPS_PROXY -u http_proxy -u https_proxy $(BIN)/pytest -q

test: lint typecheck unit

# Benchmarks print a table and write bench/results/*.json; they need the machine's PostgreSQL and Redis.
bench: install
	$(BIN)/python -m bench.runbook_concurrency
	$(BIN)/python -m bench.incident_declare
	$(BIN)/python -m bench.postmortem_read

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
