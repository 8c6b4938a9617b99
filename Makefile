# The two commands a fresh machine needs: `make demo` and `make test`. Both create .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test soak lint typecheck unit system-packages bench bench-quick clean

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

# Real components the tests run: Chromium (browser walkthrough), Prometheus and Alertmanager (alerts end
# to end), HAProxy (replicas behind a balancer) and OpenSSH's sshd (SSH targets). Each missing one is
# installed from Debian's packages; if that fails, the tests that need it are SKIPPED, loudly.
SYSTEM_PACKAGES := chromium:chromium prometheus:prometheus promtool:prometheus \
	prometheus-alertmanager:prometheus-alertmanager haproxy:haproxy /usr/sbin/sshd:openssh-server

system-packages:
	@missing=""; for pair in $(SYSTEM_PACKAGES); do \
	  cmd=$${pair%%:*}; pkg=$${pair#*:}; \
	  command -v $$cmd >/dev/null 2>&1 || [ -x "$$cmd" ] || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian's$$missing for the tests that run them…"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO="sudo -n"; fi; \
	  { $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null 2>&1; } \
	  || echo "!!! could not install$$missing: the tests that need them will be SKIPPED (see the summary)"; \
	fi

# Two workers (pytest-xdist), a test file per worker at a time: the suite mostly waits on Slack's
# pace and on fault timeouts, so two share these two cores. TEST_WORKERS=0 runs it in one process.
# The replicas-under-kills drill runs afterwards on its own: three replicas, HAProxy and the load
# already fill two cores, and beside another test file a replica can be starved past Slack's 3 s.
TEST_WORKERS ?= 2
NO_PROXY_ENV := env -u HTTP_PROXY -u HTTPS_PROXY -u http_proxy -u https_proxy

unit: install system-packages
	@status=0; \
	$(NO_PROXY_ENV) $(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=15 --ignore=tests/ha || status=$$?; \
	$(NO_PROXY_ENV) $(BIN)/pytest -q --durations=3 tests/ha || status=$$?; \
	exit $$status

test: lint typecheck unit

# The reliability soak for 10 minutes instead of the 40 s `make test` runs, and the replicas-under-kills
# drill (three replicas behind HAProxy) for 2 minutes instead of 30 s.
soak: install
	OPSBOT_SOAK_SECONDS=600 $(BIN)/pytest -q -s tests/reliability/test_load_with_faults.py
	OPSBOT_HA_SECONDS=120 $(BIN)/pytest -q -s tests/ha

# Benchmarks print a table and write bench/results/*.json; they need the machine's PostgreSQL and Redis.
bench: install
	$(BIN)/python -m bench.runbook_concurrency
	$(BIN)/python -m bench.incident_declare
	$(BIN)/python -m bench.postmortem_read
	$(BIN)/python -m bench.slack_load
	$(BIN)/python -m bench.alert_storm

# The Slack load and alert storm benchmarks alone, with shorter runs; same checks.
bench-quick: install
	$(BIN)/python -m bench.slack_load --quick
	$(BIN)/python -m bench.alert_storm --quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
