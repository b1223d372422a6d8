#!/usr/bin/env bash
# heph vs TaskChampion 3.x, side by side in one run (issue 10; not in CI):
# the same tasks (heph-corpus, tasks only, no bodies) through TaskChampion's
# local server and through a heph hub on loopback; prints a markdown table.
# Usage: bench/peers/taskchampion/run.sh   (NODES=… SEED=… PULL_RUNS=… RUNS=… JOBS=…)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
jobs=${JOBS:-1}
(cd "$root" && cargo build --release --locked -q -j "$jobs" -p heph -p heph-corpus)
(cd "$here" && cargo build --release --locked -q -j "$jobs")
"$here/target/release/heph-peer-taskchampion" \
  --heph "$root/target/release/heph" \
  --corpus "$root/target/release/heph-corpus" \
  --work "$here/target/bench-data" \
  --nodes "${NODES:-100000}" --seed "${SEED:-7}" \
  --pull-runs "${PULL_RUNS:-1}" --runs "${RUNS:-3}"
