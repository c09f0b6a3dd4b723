# gateway-canary: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
ENV := source scripts/env.sh &&

.PHONY: help demo test unit integration lint tools cluster-up cluster-down bench venv clean

help:
	@echo "make demo          walk a canary 0 -> 5 -> 25 -> 50 -> 100 -> promote, then a rollback, on the local cluster"
	@echo "make test          every test: lint, unit (mocks) and integration (real engine + local cluster)"
	@echo "make tools         build the pinned toolchain into .tools/bin (cached per user)"
	@echo "make cluster-up    start the local cluster (kubeconfig: .cluster/kubeconfig); cluster-down stops it"
	@echo "make bench         benchmarks (prints a table, writes bench/results/)"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

tools:
	$(ENV) bash scripts/build-tools.sh

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

integration: venv tools
	$(ENV) bash scripts/with-cluster.sh $(VENV)/bin/pytest tests/integration -v $(PARALLEL)

# All of it, as CI runs it: lint, then one pytest run over unit and integration tests with the cluster up.
test: venv tools lint
	$(ENV) bash scripts/with-cluster.sh $(VENV)/bin/pytest tests -q -ra $(PARALLEL)

demo: venv tools cluster-up
	$(ENV) $(VENV)/bin/python scripts/demo.py

bench: venv tools
	$(ENV) bash scripts/with-cluster.sh $(VENV)/bin/python -m bench

clean: cluster-down
	rm -rf .tools .state $(VENV)
