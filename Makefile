# Two commands for a new user: `make run` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench bench-solver clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,postgres]'
	@# The dashboard's browser test drives Debian's chromium through Playwright (never `playwright install`: it
	@# downloads a browser). Without chromium (and without root to install it) that one test skips, saying why.
	command -v chromium >/dev/null || { command -v apt-get >/dev/null && apt-get update -qq \
		&& DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| echo "chromium not installed: tests/csms_adapter/test_dashboard_browser.py will be skipped"
	@# The shared-database tests start a real PostgreSQL server from Debian's binaries (initdb/pg_ctl in a temporary
	@# directory on a free loopback port); without them those tests skip, saying why.
	ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { command -v apt-get >/dev/null && apt-get update -qq \
		&& DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; } \
		|| echo "postgresql not installed: tests/csms_adapter/test_store_shared_db.py will skip its PostgreSQL cases"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/depotctl run site_configs/demo-van-depot.yaml --simulate 12 --speed 60

test: $(STAMP)
	$(BIN)/ruff check optimizer csms_adapter benchmarks tests
	$(BIN)/mypy optimizer
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

bench-solver: $(STAMP)
	$(BIN)/python -m benchmarks.solver_bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
