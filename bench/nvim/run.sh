#!/usr/bin/env bash
# Neovim benchmark on a 100,000-node replica (DESIGN §11): plugin load cost
# at startup, `:Heph open` to buffer shown, and the `:w` round trip
# (medians). Not part of the tests. Usage: bench/nvim/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
cargo build --release --locked -q
heph=$root/target/release/heph
nvim=$(scripts/install-deps.sh | tail -n 1)
work=$root/target/bench-data/nvim
mkdir -p "$work"
if [ ! -f "$work/data/replica.db" ]; then
  python3 bench/nvim/gen_ops.py 100000 >"$work/ops.jsonl"
  "$heph" --data-dir "$work/data" import-ops <"$work/ops.jsonl"
fi
export XDG_STATE_HOME=$work/state XDG_CONFIG_HOME=$work/config XDG_DATA_HOME=$work/xdg
HEPH_BIN=$heph HEPH_DATA=$work/data "$nvim" --headless --clean -l bench/nvim/bench.lua
