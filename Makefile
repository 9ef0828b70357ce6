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
		|| echo "chromium not installed: tests/csms_adapter/http_api/test_dashboard_browser.py will be skipped"
	@# The shared-database tests start a real PostgreSQL server from Debian's binaries (initdb/pg_ctl in a temporary
	@# directory on a free loopback port); without them those tests skip, saying why.
	ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { command -v apt-get >/dev/null && apt-get update -qq \
		&& DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; } \
		|| echo "postgresql not installed: tests/csms_adapter/store/test_store_shared_db.py will skip its PostgreSQL cases"
	@# The Prometheus alert rules (deploy/prometheus/) are checked with promtool from Debian's prometheus package.
	command -v promtool >/dev/null || { command -v apt-get >/dev/null && apt-get update -qq \
		&& DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; } \
		|| echo "promtool not installed: tests/deploy/test_prometheus_rules.py will be skipped"
	touch $(STAMP)

run: $(STAMP)
	@# Two injected faults show condition monitoring at work (docs/alerts.md): a ground fault on cp-03 raised after
	@# 15 s and resolved after 45 s (wall), and cp-04 offline from 40 s to 50 s.
	$(BIN)/depotctl run site_configs/demo-van-depot.yaml --simulate 12 --speed 60 \
		--fault fault:cp-03:1@900+1800,code=GroundFailure,vendor=GF-12 --fault offline:cp-04@2400+600

# The checks without the tests: ruff, mypy --strict on every package, the import contracts (.importlinter).
lint: $(STAMP)
	$(BIN)/ruff check optimizer csms_adapter benchmarks tests
	$(BIN)/mypy optimizer csms_adapter benchmarks
	$(BIN)/lint-imports

# The suite runs on TEST_WORKERS processes (pytest-xdist), one test file per process at a time (--dist loadfile:
# a file's module fixtures, e.g. its PostgreSQL server, start once). Many tests wait on real sockets and emulated
# time rather than the CPU, so two workers fit two cores. `make test TEST_WORKERS=0` runs them in one process.
TEST_WORKERS ?= 2

test: lint
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

# Every strategy on every shipped scenario (docs/benchmarks.md); results, report and plots in bench-out/.
bench: $(STAMP)
	$(BIN)/depotctl bench benchmarks/scenarios/*.yaml --out bench-out

bench-solver: $(STAMP)
	$(BIN)/python -m benchmarks.solver_bench

clean:
	rm -rf $(VENV) bench-out .pytest_cache .mypy_cache .ruff_cache *.egg-info
