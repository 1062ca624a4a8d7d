#!/usr/bin/env bash
# build-gpu-bins.sh: builds (here, with Go) the static binaries scripts/gpu-check.sh runs on the
# GPU machine (which has no Go) into bin/ (git-ignored; pass it to the device tool's carry).
set -euo pipefail
cd "$(dirname "$0")/.."
export CGO_ENABLED=0
F=(-ldflags=-s\ -w)
go test -c "${F[@]}" -o bin/cuda.test ./runtime/cuda
go test -c "${F[@]}" -o bin/model.test ./runtime/model
go test -c "${F[@]}" -o bin/train.test ./runtime/train
go test -c "${F[@]}" -o bin/generate.test ./runtime/generate
go build "${F[@]}" -o bin/finlora ./cmd/finlora
# gzip: the device tool carries at most 64 MiB with the working tree
mkdir -p bin/gz
for f in cuda.test model.test train.test generate.test finlora; do gzip -6 -c "bin/$f" >"bin/gz/$f.gz"; done
ls -la bin/gz
