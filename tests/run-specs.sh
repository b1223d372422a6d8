#!/usr/bin/env bash
# Runs the Neovim specs (busted inside a real headless Neovim, driving the
# real sidecar) with isolated XDG dirs. Prints "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
nvim=$(scripts/install-deps.sh | tail -n 1) || { echo "cannot install Neovim"; exit 1; }
export HEPH_BIN=${HEPH_BIN:-$root/target/debug/heph}
[ -x "$HEPH_BIN" ] || cargo build -p heph --locked || exit 1
export HEPH_NVIM=$nvim
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export XDG_DATA_HOME=$tmp/data XDG_STATE_HOME=$tmp/state XDG_CONFIG_HOME=$tmp/config XDG_CACHE_HOME=$tmp/cache
export HEPH_TEST_TMP=$tmp
out=$tmp/tap.txt
"$nvim" --headless --clean -l tests/nvim/busted.lua -o TAP "${@:-tests/nvim}" | tee "$out"
status=${PIPESTATUS[0]}
passed=$(grep -cE '^ok [0-9]+' "$out")
failed=$(grep -cE '^not ok [0-9]+' "$out")
echo "$passed passed, $failed failed"
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ]; then
  exit 1
fi
