# The only commands a newcomer needs: setup, demo, test, lint, bench.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export TRUENORTH_DATA_DIR ?= $(CURDIR)/var/data
PG_TEST_URL ?= postgres://postgres@127.0.0.1:5432/test
# Framework-free cores: mypy --strict here, and .importlinter keeps Django out of them.
PURE_CORES := truenorth/stats truenorth/evidence/compile.py truenorth/evidence/metrics.py \
	truenorth/evidence/mapping.py truenorth/evidence/run.py truenorth/evidence/reference.py \
	truenorth/evidence/synthetic.py truenorth/strategy/progress.py truenorth/strategy/lint.py \
	truenorth/measures/formula.py truenorth/engagement/healthrules.py \
	truenorth/engagement/similarity.py truenorth/engagement/alignment.py truenorth/engagement/pulse_charts.py \
	truenorth/engagement/quadrants.py truenorth/engagement/charts.py \
	truenorth/delivery/synthetic.py truenorth/delivery/flow.py truenorth/delivery/dora.py \
	truenorth/delivery/forecast.py truenorth/delivery/flow_arrays.py truenorth/delivery/process_compare.py \
	truenorth/delivery/github_client.py truenorth/delivery/importers/azure.py truenorth/core/outbound.py $(wildcard truenorth/engines/*.py)
# pytest-xdist workers for the test targets (`make test TEST_WORKERS=0` runs in one process).
TEST_WORKERS ?= auto

.PHONY: setup assets demo serve test test-sqlite test-postgres lint bench clean gbstats-venv

setup: $(VENV)/.installed assets

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

assets: node_modules/.package-lock.json
	$(BIN)/python scripts/vendor_assets.py

# Demo on SQLite over plain HTTP on the loopback address (so cookies are not marked Secure).
demo: setup
	TRUENORTH_HTTPS=false $(BIN)/truenorth demo
	TRUENORTH_HTTPS=false $(BIN)/truenorth serve --host 127.0.0.1 --port 8000

lint: setup
	$(BIN)/ruff check truenorth tests scripts benchmarks conftest.py manage.py
	$(BIN)/mypy truenorth tests scripts conftest.py
	$(BIN)/mypy --strict $(PURE_CORES)
	$(BIN)/lint-imports
	$(BIN)/python scripts/check_module_size.py
	$(BIN)/python manage.py makemigrations --check --dry-run

# GrowthBook's gbstats (the reference the statistics engine is checked against) pins numpy<2: own venv.
gbstats-venv: .venv-gbstats/.installed

.venv-gbstats/.installed:
	$(PY) -m venv .venv-gbstats
	.venv-gbstats/bin/pip install --quiet gbstats==0.8.0
	touch $@

test-sqlite: setup gbstats-venv
	$(BIN)/pytest -n $(TEST_WORKERS)

test-postgres: setup
	DATABASE_URL=$${TRUENORTH_TEST_POSTGRES:-$(PG_TEST_URL)} $(BIN)/pytest -n $(TEST_WORKERS)

# Lint, then the suite on SQLite; in CI (CI=true) or with TRUENORTH_TEST_POSTGRES set, again on PostgreSQL.
test: lint test-sqlite
	@if [ "$$CI" = "true" ] || [ -n "$$TRUENORTH_TEST_POSTGRES" ]; then $(MAKE) --no-print-directory test-postgres; fi

bench: setup
	@ls benchmarks/*.py >/dev/null 2>&1 && for f in benchmarks/*.py; do $(BIN)/python $$f; done || echo "no benchmarks yet"

clean:
	rm -rf $(VENV) .venv-gbstats node_modules truenorth/static/vendor var
