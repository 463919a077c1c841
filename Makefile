# SoLoMo: `make run` starts everything, `make test` proves it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench soak install clean browser compile

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The hot modules compiled with mypyc (solomo/core/compiled.py): built in place when their sources
# changed, left as Python where there is no C compiler.
compile: $(STAMP)
	$(BIN)/solomo compile

run: $(STAMP) compile
	$(BIN)/solomo dev

# what the tests drive outside Python: chromium and a CJK font (end-to-end tests), wrk (benchmark test)
browser:
	sh scripts/ensure-browser.sh

# Two passes: everything on one embedded Redis, then the Redis-heavy packages again with the data on
# a real six-node Redis Cluster (tests/conftest.py starts it; the broker stays a plain Redis).
# Each pass runs on TEST_WORKERS pytest-xdist processes, a test module at a time on one of them, each
# with servers of its own: the suite mostly waits on real servers and processes (one process kept a
# 2-core machine about 40 % busy), so two halve the wall time — 856 s → 590 s for the first pass.
TEST_WORKERS ?= 2
PYTEST_ARGS ?= -n $(TEST_WORKERS) --dist loadfile
CLUSTER_TESTS ?= tests/feed tests/realtime tests/offers tests/moderation tests/accounts tests/checkins tests/test_redisio.py tests/test_autopipe.py tests/search/test_tiersets.py

test: $(STAMP) browser lint compile
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	SOLOMO_TEST_REDIS=cluster $(BIN)/python -m pytest $(CLUSTER_TESTS) $(PYTEST_ARGS)

# ruff (style), mypy (types: strict, see [tool.mypy]) and import-linter (the layer rule:
# entry points → api/realtime → composition root → domain → accounts → core)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache --no-logo

bench: $(STAMP) compile
	$(BIN)/python -m benchmarks

soak: $(STAMP) compile
	$(BIN)/python -m benchmarks.soak

clean:
	rm -rf .solomo
	test ! -x $(BIN)/python || $(BIN)/solomo compile clean
