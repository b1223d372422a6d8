#!/usr/bin/env bash
# Initial pull into an empty device, with and without a snapshot on the hub
# (issue 10). Release build, loopback hub; not run in CI.
#
#   bench/sync/pull.sh                # both rows, 100,000 nodes
#   ROWS=tasks NODES=20000 bench/sync/pull.sh
#
# For each row (corpus: the realistic corpus; tasks: --tasks-only
# --no-bodies) it imports the ops on device A, syncs A up to a fresh hub
# (no snapshot wanted yet), times `heph sync` into an empty B (every op
# pulled), then lets A upload a snapshot (the hub asks for one) and times
# `heph sync` into another empty B (bootstrap + the ops after it). Each
# figure comes with the load average, B's replica size and peak RSS.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
nodes=${NODES:-100000}
seed=${SEED:-7}
rows=${ROWS:-"corpus tasks"}
work=$(mktemp -d "${TMPDIR:-/tmp}/heph-pull-bench.XXXXXX")
hub_pid=""
cleanup() {
  [ -n "$hub_pid" ] && kill "$hub_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

if [ -z "${SKIP_BUILD:-}" ]; then
  (cd "$root" && cargo build --release -q -p heph -p heph-corpus)
fi
heph="$root/target/release/heph"
corpus="$root/target/release/heph-corpus"
export HEPH_CONFIG="$work/no-config.toml" HEPH_LOG=warn

load() { cut -d' ' -f1-3 /proc/loadavg; }
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }
size() { du -sh --apparent-size "$1" | cut -f1; }

start_hub() { # db threshold [address]
  local out="$work/hub.out"
  rm -f "$out"
  "$heph" hub --listen "${3:-127.0.0.1:0}" --db "$1" --snapshot-threshold "$2" >"$out" 2>"$work/hub.err" &
  hub_pid=$!
  for _ in $(seq 100); do
    grep -q listening "$out" 2>/dev/null && break
    sleep 0.1
  done
  url=$(awk '{print $NF}' "$out")
}
stop_hub() { kill "$hub_pid"; wait "$hub_pid" 2>/dev/null || true; hub_pid=""; }

# Times `heph sync` into a new, empty data dir; prints a table row.
pull_into_empty() { # label
  local b="$work/B" t
  rm -rf "$b"
  local before; before=$(load)
  /usr/bin/time -f "%e %M" -o "$work/time" "$heph" --data-dir "$b" sync --hub "$url" --json >"$work/report"
  read -r t rss <"$work/time"
  echo "| $1 | $t s | $((rss / 1024)) MB | $(size "$b/replica.db" 2>/dev/null || size "$b") | $before |"
  echo "    report: $(head -c 300 "$work/report" | sed 's/"changed_nodes":\[[^]]*\],//')" >&2
  rm -rf "$b"
}

for row in $rows; do
  case $row in
    corpus) flags=() ;;
    tasks) flags=(--tasks-only --no-bodies) ;;
    *) echo "unknown row $row" >&2; exit 2 ;;
  esac
  a="$work/A"
  rm -rf "$a" "$work"/hub.db*
  t=$(now)
  "$corpus" ops --seed "$seed" --nodes "$nodes" "${flags[@]}" | "$heph" --data-dir "$a" import-ops >/dev/null 2>&1
  ops=$("$heph" --data-dir "$a" export-ops | wc -l)
  echo "## $row: $ops ops, $nodes nodes (import on A: $(since "$t") s, load $(load))"
  echo
  echo "| what | time | peak RSS | B's replica | load (1/5/15 min) |"
  echo "|---|---|---|---|---|"
  # No snapshot wanted: A only pushes.
  start_hub "$work/hub.db" 0
  t=$(now); l=$(load)
  "$heph" --data-dir "$a" sync --hub "$url" >/dev/null
  echo "| setup: sync A up (push every op) | $(since "$t") s | | | $l |"
  pull_into_empty "initial pull, every op"
  stop_hub
  # The hub asks for a snapshot; A's next sync makes and uploads it. Same
  # address: a device knows a hub (and its cursor there) by its URL, and
  # at a new one it would pull every op again.
  start_hub "$work/hub.db" 1 "${url#http://}"
  t=$(now); l=$(load)
  "$heph" --data-dir "$a" sync --hub "$url" --json >"$work/up"
  grep -q '"snapshot_uploaded":[0-9]' "$work/up" || { echo "no snapshot uploaded: $(cat "$work/up")" >&2; exit 1; }
  snap=$(ls "$work"/hub.db.snapshot-*)
  echo "| setup: A makes and uploads the snapshot ($(size "$snap")) | $(since "$t") s | | | $l |"
  pull_into_empty "initial pull, snapshot then the ops after it"
  stop_hub
  echo
  rm -rf "$a" "$work"/hub.db*
done
