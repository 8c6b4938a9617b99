# The two commands a fresh machine needs: `make demo` and `make test`. Both create .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test soak lint typecheck unit browser bench bench-quick clean

$(STAMP): pyproject.toml
	@$(PY) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "opsbot needs Python 3.11 or newer (set PY=python3.11)")'
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,demo]"
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/opsbot demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

# The browser walkthrough drives Debian's Chromium; without it that one test file is skipped, loudly.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser test…"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO="sudo -n"; fi; \
	  { $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; } \
	  || echo "!!! chromium could not be installed: tests/demo/test_browser_walkthrough.py will be SKIPPED"; }

unit: install browser
	env -u HTTP_PROXY -u HTTPS_PROXY -u http_proxy -u https_proxy $(BIN)/pytest -q

test: lint typecheck unit

# The reliability soak for 10 minutes instead of the 60 s `make test` runs.
soak: install
	OPSBOT_SOAK_SECONDS=600 $(BIN)/pytest -q -s tests/reliability/test_load_with_faults.py

# Benchmarks print a table and write bench/results/*.json; they need the machine's PostgreSQL and Redis.
bench: install
	$(BIN)/python -m bench.runbook_concurrency
	$(BIN)/python -m bench.incident_declare
	$(BIN)/python -m bench.postmortem_read
	$(BIN)/python -m bench.slack_load

# The Slack load benchmark alone, with shorter runs; same checks.
bench-quick: install
	$(BIN)/python -m bench.slack_load --quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
