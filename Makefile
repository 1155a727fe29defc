# Tideflow — the two commands of the quick start are `make run` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test screenshots lint typecheck unit bench bench-quick faults load security clean i18n i18n-convert

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

# browser tests run in a process of their own: Playwright's sync API keeps an event loop running.
# TEST_WORKERS pytest-xdist processes share the tests (each has its own databases, servers and ports). Three on
# CI's 2 cores: with two, the cores were idle a third of the time (the tests wait for Temporal, subprocesses,
# Chromium), and a third worker fills that (non-browser 6:22 -> 5:17, browser 3:18 -> 2:56; docs/operations.md).
# TEST_WORKERS=0 runs it in one process.
# The tests go out one by one, except that a module with a module-scoped fixture (a stack, a seeded app) goes to
# one worker whole, and the modules of the longest tests are handed out first (tests/conftest.py; timings in
# docs/operations.md, "How long the test suite takes").
TEST_WORKERS ?= 3
test: $(STAMP) lint
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) -m "not browser" $(PYTEST_ARGS)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) -m browser $(PYTEST_ARGS)

# the browser tests, saving their screenshots into docs/screenshots (make test writes them to a scratch dir)
screenshots: $(STAMP)
	TIDEFLOW_SCREENSHOTS=1 $(BIN)/python -m pytest -q -m browser $(PYTEST_ARGS)

# page text (docs/i18n.md): extract every marked string into the template, merge it into the zh_CN catalogue
# (new strings arrive untranslated, changed ones fuzzy), then compile it to check it (placeholders, syntax) and
# print what is left to translate. The designer reads the .po itself at startup; no .mo is committed.
LOCALE   := designer/locale
KEYWORDS := -k NC_:1c,2 -k Msg -k N_
i18n: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg $(KEYWORDS) --no-wrap --sort-by-file --project Tideflow \
		--copyright-holder "Tideflow contributors" --msgid-bugs-address "" -o $(LOCALE)/messages.pot .
	$(BIN)/pybabel update -i $(LOCALE)/messages.pot -d $(LOCALE) -l zh_CN --no-wrap --ignore-obsolete --no-fuzzy-matching
	$(BIN)/pybabel compile -d $(LOCALE) -l zh_CN --statistics
	$(BIN)/python -m designer.i18n_check

# an area written with the old keyed text.py: make i18n-convert AREA=designer/growth (then make i18n)
i18n-convert: $(STAMP)
	@test -n "$(AREA)" || { echo "usage: make i18n-convert AREA=designer/<area>"; exit 2; }
	$(BIN)/python tools/i18n_convert.py $(AREA)
	$(BIN)/python tools/msg_convert.py $$(find $(AREA) -name '*.py' ! -name text.py)

# every attack of issue 18 against the real stack (web + worker + Temporal) and in process: all must be
# refused (tests/security/; they also run in `make test`)
security: $(STAMP)
	$(BIN)/python -m pytest -q tests/security $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench

# the ingest comparison (Tideflow vs n8n vs Temporal by hand) at reduced sizes, SQLite only: five targets one after
# another, under 2 minutes on 2 cores (the first run installs n8n from npm: a few minutes more)
bench-quick: $(STAMP)
	BENCH_QUICK=1 $(BIN)/python -m bench ingest

# the fault suite: the real stack under load, broken on purpose, then the books checked (exit 1 on any loss)
faults: $(STAMP)
	$(BIN)/python -m faults $(FAULTS_ARGS)
	TIDEFLOW_CRASH_N=1000 $(BIN)/python -m pytest -q tests/e2e/test_worker_crash.py

# wrk against POST /api/events and a webhook endpoint, on SQLite and on PostgreSQL (needs wrk)
load: $(STAMP)
	$(BIN)/python -m bench.load $(LOAD_ARGS)

clean:
	rm -rf $(VENV) .tideflow .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .grimp_cache
