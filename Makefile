# retailhub developer tasks. `make help` lists them.
VENV     ?= .venv
PYTHON   ?= python3
BIN      := $(VENV)/bin
DEMO     ?= examples/demo
ROWS     ?= 100000
BENCH_ROWS ?= 1000000

.DEFAULT_GOAL := help
.PHONY: help venv run test test-fast lint format bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(BIN)/retailhub: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

venv: $(BIN)/retailhub ## Create .venv and install retailhub with its test tools

run: venv ## Generate the demo data if absent, then run the whole pipeline into DuckDB
	@test -f $(DEMO)/data/defects.json || $(BIN)/retailhub generate --out $(DEMO)/data --rows $(ROWS) --seed 42
	$(BIN)/retailhub run --project $(DEMO)

# Two workers, one test file each at a time (module fixtures such as a public-dataset run are
# built once): the suite is mostly pipeline runs and subprocesses, about 1.4x faster this way.
test: venv ## Run the whole test suite (what CI runs)
	$(BIN)/pytest -n 2 --dist loadfile

test-fast: venv ## Run the tests not marked slow
	$(BIN)/pytest -n 2 --dist loadfile -m "not slow"

lint: venv ## ruff lint + format check
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: venv ## Apply ruff formatting and safe fixes
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

bench: venv ## Benchmark the pipeline on generated data (BENCH_ROWS=10000000 for the big run)
	$(BIN)/retailhub bench --rows $(BENCH_ROWS)

clean: ## Remove the demo data and warehouse
	rm -rf $(DEMO)/data $(DEMO)/warehouse $(DEMO)/.retailhub
