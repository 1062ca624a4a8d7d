#!/usr/bin/env bash
# The project's test command (the README's second command calls scripts/setup.sh then this).
# Runs: go vet, the Go test suite (CPU; GPU tests skip unless FINLORA_REQUIRE_GPU=1), and the
# Jupyter-level tests (kernel conformance suite, notebooks) when Jupyter is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS="${GOFLAGS:-} -mod=readonly"
echo "== go vet"
go vet ./...
echo "== go test"
go test -count=1 -timeout 40m ./... 2>&1 | tee /tmp/finlora-go-test.log
if [ -x tests/jupyter/run.sh ]; then
  echo "== jupyter tests"
  tests/jupyter/run.sh
fi
