# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
SHARED_DATA := $(abspath ../shared/data/multi30k)
# Use the shared copy of Multi30k when it is there; otherwise prepare downloads it.
export MULTI30K_DIR ?= $(if $(wildcard $(SHARED_DATA)/train.en.gz),$(SHARED_DATA),)
PYTEST_ARGS ?=
# Two pytest-xdist workers: the suite waits more than it computes (servers starting, processes
# importing, trials reporting), so two keep both cores busy (a third made it slower: 20 min 46 s
# against 19 min 51 s, BENCHMARKS.md); a module stays on one worker, and the modules marked
# `services` run in two groups, one module after another within each: those on the machine's
# PostgreSQL (tracking servers, its restarts) and the Ray-only ones, the two beside each other
# (pytest_xdist_make_scheduler in tests/conftest.py). XDIST= runs serially.
XDIST ?= -n 2

.PHONY: venv demo test test-fast ui bench clean server-up server-down cluster-up cluster-down

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch pinned exactly: the CPU wheel (a looser spec pulls a multi-GB CUDA build)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	touch $@

demo: venv
	$(BIN)/nmt run profile=demo

test: venv
	$(BIN)/python -m pytest $(XDIST) $(PYTEST_ARGS)

test-fast: venv
	$(BIN)/python -m pytest $(XDIST) -m "not slow" $(PYTEST_ARGS)

ui: venv
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --host 127.0.0.1 --port 5000

# The team path: a tracking server on PostgreSQL and a Ray cluster on this machine
# (`nmt server|cluster up|down|status`, Hydra overrides such as server.port=5001 after ARGS=).
server-up: venv
	$(BIN)/nmt server up $(ARGS)

server-down: venv
	$(BIN)/nmt server down $(ARGS)

cluster-up: venv
	$(BIN)/nmt cluster up $(ARGS)

cluster-down: venv
	$(BIN)/nmt cluster down $(ARGS)

bench: venv
	$(BIN)/python benchmarks/bench_training.py
	$(BIN)/python benchmarks/bench_decoding.py

# Never the tracking server's state (.nmt/server: its log, pid, and the default artifact store
# of every run whose metadata PostgreSQL keeps): `nmt server down` and remove it by hand.
clean:
	@if [ -d .nmt ]; then find .nmt -mindepth 1 -maxdepth 1 ! -name server -exec rm -rf {} +; fi
	rm -rf mlflow.db mlartifacts
