# Tideflow — the two commands of the quick start are `make run` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench bench-quick faults load security clean

$(STAMP): pyproject.toml examples/plugin-lottery/pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required (set PYTHON=...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet -e examples/plugin-lottery
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/tideflow up

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# browser tests run in a process of their own: Playwright's sync API keeps an event loop running
test: $(STAMP) lint
	$(BIN)/python -m pytest -q -m "not browser" $(PYTEST_ARGS)
	$(BIN)/python -m pytest -q -m browser $(PYTEST_ARGS)

# every attack of issue 18 against the real stack (web + worker + Temporal) and in process: all must be
# refused (tests/security/; they also run in `make test`)
security: $(STAMP)
	$(BIN)/python -m pytest -q tests/security $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench

# the ingest comparison (Tideflow vs n8n vs Temporal by hand) at reduced sizes, SQLite only: under 2 minutes
bench-quick: $(STAMP)
	BENCH_QUICK=1 $(BIN)/python -m bench ingest

# the fault suite: the real stack under load, broken on purpose, then the books checked (exit 1 on any loss)
faults: $(STAMP)
	$(BIN)/python -m faults $(FAULTS_ARGS)

# wrk against POST /api/events and a webhook endpoint, on SQLite and on PostgreSQL (needs wrk)
load: $(STAMP)
	$(BIN)/python -m bench.load $(LOAD_ARGS)

clean:
	rm -rf $(VENV) .tideflow .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .grimp_cache
