#!/usr/bin/env bash
# Jupyter-level tests of the finlora kernel, run against a binary built from this tree and
# registered in a throwaway Jupyter data dir (nothing of the user's Jupyter setup is touched):
#   - test_conformance.py: Debian's jupyter_kernel_test suite (python3-jupyter-kernel-test)
#   - test_robustness.py:  interrupt, bad signatures, panicking goroutines, huge output, bad frames
#   - test_notebooks.py:   every notebooks/*.ipynb executed with jupyter nbconvert --execute
# Exits non-zero on any failure; the last line is pytest's summary.
# Python: Debian's /usr/bin/python3 (where apt installs the Jupyter packages); override with
# FINLORA_TEST_PYTHON. Extra pytest arguments are passed through (e.g. -k interrupt).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
py=${FINLORA_TEST_PYTHON:-/usr/bin/python3}
if ! "$py" -c 'import jupyter_kernel_test, jupyter_client, nbclient, nbformat, zmq, pytest' 2>/dev/null; then
  echo "tests/jupyter: missing Python packages for $py; install (as root):" >&2
  echo "  apt-get install -y python3-pytest python3-jupyter-client python3-jupyter-kernel-test python3-nbclient jupyter-nbconvert jupyter-console python3-zmq" >&2
  exit 1
fi
command -v jupyter >/dev/null || { echo "tests/jupyter: 'jupyter' is not on PATH (apt-get install jupyter-nbconvert)" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/finlora-jupyter.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "tests/jupyter: building the kernel into $tmp/bin"
CGO_ENABLED=0 go build -o "$tmp/bin/finlora" ./cmd/finlora
export JUPYTER_DATA_DIR="$tmp/data" JUPYTER_PATH="$tmp/data" JUPYTER_RUNTIME_DIR="$tmp/runtime" \
  JUPYTER_CONFIG_DIR="$tmp/config" JUPYTER_PLATFORM_DIRS=0 FINLORA_TEST_BIN="$tmp/bin/finlora" \
  FINLORA_TEST_TMP="$tmp" PYTHONDONTWRITEBYTECODE=1
"$tmp/bin/finlora" install-kernel --user --name finlora
[ $# -gt 0 ] || set -- tests/jupyter
"$py" -m pytest -p no:cacheprovider -q -rfEs "$@"
