#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian machine: Go modules, and (as root, where apt-get
# works) the Jupyter packages the kernel tests and notebooks use. Safe to run twice.
set -euo pipefail
cd "$(dirname "$0")/.."
go mod download
need_apt=()
command -v jupyter >/dev/null 2>&1 || need_apt+=(jupyter-notebook jupyter-nbconvert jupyter-console)
python3 -c 'import jupyter_kernel_test' >/dev/null 2>&1 || need_apt+=(python3-jupyter-kernel-test)
python3 -c 'import nbclient' >/dev/null 2>&1 || need_apt+=(python3-nbclient)
python3 -c 'import jupyter_client' >/dev/null 2>&1 || need_apt+=(python3-jupyter-client)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "setup: Jupyter is missing; install as root: apt-get install ${need_apt[*]}" >&2
  fi
fi
