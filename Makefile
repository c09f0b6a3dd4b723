# gateway-canary: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
ENV := source scripts/env.sh &&

.PHONY: help demo test unit integration lint tools peers-tools postgres cluster-up cluster-down bench bench-peers venv clean

help:
	@echo "make demo          walk a canary 0 -> 5 -> 25 -> 50 -> 100 -> promote, then a rollback, on the local cluster"
	@echo "make test          every test: lint, unit (mocks) and integration (real engine + local cluster)"
	@echo "make unit          unit tests only (no cluster)"
	@echo "make integration   integration tests only (starts the local cluster if it is down)"
	@echo "make lint          ruff check, ruff format --check, mypy"
	@echo "make tools         build the pinned toolchain into .tools/bin (cached per user)"
	@echo "make peers-tools   build Flagger, Argo Rollouts and our stand-in Gateway API plugin (cached; not in test/demo)"
	@echo "make cluster-up    start the local cluster (kubeconfig: .cluster/kubeconfig)"
	@echo "make cluster-down  stop it and remove everything it started"
	@echo "make bench         benchmarks (prints a table, writes bench/results/)"
	@echo "make bench-peers   side by side with Flagger and Argo Rollouts (builds them when missing; about an hour)"
	@echo "make clean         cluster-down, then remove .tools, .state and .venv"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]' --config-settings editable_mode=compat
	touch $@

venv: $(VENV)/.installed

tools:
	$(ENV) bash scripts/build-tools.sh
	bash scripts/ensure-prometheus.sh

# The peers of the side-by-side bench (issue 26): about ten minutes of cold build, so no other target needs them.
peers-tools:
	$(ENV) bash scripts/build-tools.sh peers

# The machine's PostgreSQL (the shared state backend of tests/integration/test_teams.py): installed when missing.
postgres:
	bash scripts/postgres.sh install

cluster-up: tools
	bash scripts/cluster.sh up

cluster-down:
	bash scripts/cluster.sh down

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

unit: venv
	$(VENV)/bin/pytest tests/unit -q

# Test modules run side by side in 4 workers; a module (and a class) stays on one worker, in order.
PARALLEL := -n 4 --dist loadscope --durations=15

integration: venv tools postgres
	$(ENV) bash scripts/with-cluster.sh $(VENV)/bin/pytest tests/integration -v $(PARALLEL)

# All of it, as CI runs it: lint, then one pytest run over unit and integration tests with the cluster up.
test: venv tools postgres lint
	$(ENV) bash scripts/with-cluster.sh $(VENV)/bin/pytest tests -q -ra $(PARALLEL)

demo: venv tools cluster-up
	$(ENV) $(VENV)/bin/python -m scripts.demo

bench: venv tools
	$(ENV) bash scripts/with-cluster.sh $(VENV)/bin/python -m bench

# The side-by-side bench (issue 26): the two peers as host processes beside the bed, every scenario 3 times.
bench-peers: venv tools peers-tools
	$(ENV) bash scripts/with-cluster.sh $(VENV)/bin/python -m bench.peers bench $(BENCH_PEERS_ARGS)

clean: cluster-down
	bash scripts/postgres.sh down
	rm -rf .tools .state $(VENV)
