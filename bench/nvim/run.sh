#!/usr/bin/env bash
# Neovim benchmark on the 100,000-node corpus (DESIGN §11): every view
# (:Heph next, home, a project list, all open tasks), saving a list after
# one toggle, open and save a node, search over a mixed query set
# (p50/p95/max), the sidecar's memory after the run, and `heph list --json`
# peak memory. Not part of the tests; figures go to doc/benchmarks.md.
# Usage: bench/nvim/run.sh   (NODES=… SEED=… to change the corpus)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
nodes=${NODES:-100000}
seed=${SEED:-7}
cargo build --release --locked -q -p heph -p heph-corpus
heph=$root/target/release/heph
corpus=$root/target/release/heph-corpus
nvim=$(scripts/install-deps.sh | tail -n 1)
work=$root/target/bench-data/nvim-$seed-$nodes
mkdir -p "$work"
if [ ! -f "$work/data/replica.db" ]; then
  "$corpus" ops --seed "$seed" --nodes "$nodes" >"$work/ops.jsonl"
  start=$(date +%s.%N)
  "$heph" --data-dir "$work/data.new" import-ops <"$work/ops.jsonl"
  echo "import-ops of $(wc -l <"$work/ops.jsonl") ops: $(echo "$(date +%s.%N) - $start" | bc) s"
  mv "$work/data.new" "$work/data"
  rm "$work/ops.jsonl"
fi
# A freshly built heph may migrate the replica on first open: do it here,
# outside the measurements.
"$heph" --data-dir "$work/data" list next >/dev/null
"$corpus" queries --seed "$seed" --nodes "$nodes" --per-class 50 >"$work/queries.tsv"
export XDG_STATE_HOME=$work/state XDG_CONFIG_HOME=$work/config XDG_DATA_HOME=$work/xdg
HEPH_BIN=$heph HEPH_DATA=$work/data HEPH_QUERIES=$work/queries.tsv \
  "$nvim" --headless --clean -l bench/nvim/bench.lua
# Peak memory of the CLI listing every open task as JSON.
/usr/bin/time -f "heph list --json (all open tasks): %e s, peak %M KB RSS" \
  "$heph" --data-dir "$work/data" list --json >/dev/null
