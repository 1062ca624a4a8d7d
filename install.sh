#!/usr/bin/env bash
# Installs FinLoRA for the current user, as a new user would after cloning:
#   1. builds the finlora binary (CGO_ENABLED=0, one static file) into ~/.local/bin, or $PREFIX/bin;
#   2. installs Jupyter (Debian: jupyter-notebook jupyter-nbconvert python3-nbclient jupyter-console)
#      where it is missing and this is root with apt-get; otherwise prints how;
#   3. registers the Jupyter kernel "finlora" (display name "Go (FinLoRA)"): with PREFIX set, into
#      $PREFIX/share/jupyter/kernels, else into the user's Jupyter data dir.
# Then: jupyter console --kernel finlora   or   jupyter notebook   (see docs/kernel.md).
# Safe to run again (it rebuilds and re-registers).
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v go >/dev/null 2>&1; then
  echo "install.sh: the Go toolchain (1.26 or newer) is needed to build finlora: https://go.dev/dl/" >&2
  exit 1
fi
bindir="${PREFIX:+$PREFIX/bin}"
bindir="${bindir:-$HOME/.local/bin}"
mkdir -p "$bindir"
echo "install.sh: building finlora into $bindir"
CGO_ENABLED=0 go build -trimpath -o "$bindir/finlora.tmp" ./cmd/finlora
mv -f "$bindir/finlora.tmp" "$bindir/finlora"

# Jupyter: the front ends (notebook, console) and nbconvert for headless runs.
have_jupyter() {
  command -v jupyter >/dev/null 2>&1 &&
    jupyter notebook --version >/dev/null 2>&1 &&
    jupyter console --version >/dev/null 2>&1 &&
    jupyter nbconvert --version >/dev/null 2>&1
}
pkgs=(jupyter-notebook jupyter-nbconvert python3-nbclient jupyter-console)
if ! have_jupyter; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "install.sh: installing Jupyter with apt-get: ${pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
  else
    echo "install.sh: Jupyter (notebook, console, nbconvert) is missing. Install it with one of:" >&2
    echo "    sudo apt-get install -y ${pkgs[*]}" >&2
    echo "    python3 -m pip install --user notebook jupyter-console nbconvert nbclient" >&2
    echo "  then run ./install.sh again (or: $bindir/finlora install-kernel)." >&2
  fi
fi

# The kernel spec points at the absolute path of the binary just built, so it works whatever PATH is.
if [ -n "${PREFIX:-}" ]; then
  spec_dir=$("$bindir/finlora" install-kernel --prefix "$PREFIX" | tee /dev/stderr | sed -n 's/^installed kernel spec "[^"]*" in \(.*\) (runs .*/\1/p')
else
  spec_dir=$("$bindir/finlora" install-kernel --user | tee /dev/stderr | sed -n 's/^installed kernel spec "[^"]*" in \(.*\) (runs .*/\1/p')
fi
# Check that Jupyter finds the spec: 'jupyter kernelspec list' (Debian package jupyter-client), else
# jupyter_client's KernelSpecManager from the python3 that runs Jupyter.
list_specs() {
  if jupyter kernelspec list >/dev/null 2>&1; then
    jupyter kernelspec list 2>/dev/null
  else
    jpy=$(head -1 "$(command -v jupyter)" 2>/dev/null | sed -n 's/^#! *//p' | cut -d' ' -f1)
    "${jpy:-python3}" -c 'from jupyter_client.kernelspec import KernelSpecManager as M
for n, d in sorted(M().find_kernel_specs().items()): print("  %s    %s" % (n, d))' 2>/dev/null
  fi
}
if command -v jupyter >/dev/null 2>&1; then
  seen=$(list_specs | sed -n 's/^ *finlora  *//p')
  if [ "$seen" = "$spec_dir" ]; then
    echo "install.sh: Jupyter sees the kernel finlora in $seen"
  elif [ -n "$seen" ]; then
    echo "install.sh: warning: Jupyter uses another kernel spec named finlora, in $seen, which hides $spec_dir." >&2
    if [ -n "${PREFIX:-}" ]; then
      echo "  Remove it (rm -r $seen) or run ./install.sh without PREFIX." >&2
    fi
  else
    echo "install.sh: warning: Jupyter does not list the kernel finlora." >&2
    if [ -n "${PREFIX:-}" ]; then
      echo "  Jupyter searches \$JUPYTER_PATH: export JUPYTER_PATH=$PREFIX/share/jupyter" >&2
    fi
  fi
fi

case ":$PATH:" in
  *":$bindir:"*) ;;
  *)
    echo "install.sh: $bindir is not on your PATH. To run 'finlora' by name, add this line to ~/.bashrc (or ~/.profile):"
    echo "    export PATH=\"$bindir:\$PATH\""
    echo "  (Jupyter does not need it: the kernel spec holds the binary's absolute path.)"
    ;;
esac
echo "install.sh: done. Try:  jupyter console --kernel finlora   or   jupyter notebook"
