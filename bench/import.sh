#!/usr/bin/env bash
# `heph import-ops` on the shared corpus (issue 10): wall time and peak RSS
# (/usr/bin/time), the replica's size (du of the data dir, the db file
# after a checkpoint) and its ratio to the corpus as markdown files
# (398 MB on disk). Realistic corpus, then `--tasks-only --no-bodies`.
# Release build, not part of the tests; figures go to doc/benchmarks.md.
# Usage: bench/import.sh   (NODES=… SEED=… to change the corpus; KEEP=1
# keeps the replicas; ONLY=realistic|tasks runs one corpus; RUNS=N imports
# each corpus N times and ends with the fastest, median and slowest wall
# time: this machine's speed moves from run to run, so one run says little;
# REFERENCE=1 follows each import with a fixed workload with no heph in
# it — the sqlite3 shell building an FTS5 index of the replica's
# declaration over the corpus's titles and bodies — to show how fast the
# machine itself is at that moment)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
nodes=${NODES:-100000}
seed=${SEED:-7}
markdown_bytes=${MARKDOWN_BYTES:-398000000}
cargo build --release --locked -q -p heph -p heph-corpus
heph=$root/target/release/heph
corpus=$root/target/release/heph-corpus
work=$root/target/bench-data/import-$seed-$nodes
mkdir -p "$work"

run() {
  local name=$1
  shift
  local ops=$work/$name.jsonl
  if [ ! -s "$ops" ]; then
    "$corpus" ops --seed "$seed" --nodes "$nodes" "$@" >"$ops.tmp"
    mv "$ops.tmp" "$ops"
  fi
  local data=$work/data-$name
  local times=$work/times-$name
  : >"$times"
  echo "== $name: $(wc -l <"$ops") ops, $(du -m "$ops" | cut -f1) MB JSONL"
  for run in $(seq "${RUNS:-1}"); do
    rm -rf "$data"
    echo "-- run $run; load: $(uptime | sed 's/.*load average: //')"
    /usr/bin/time -f "%e %U %S %M" -o "$work/time" "$heph" --data-dir "$data" import-ops <"$ops"
    read -r wall user sys rss <"$work/time"
    echo "import-ops: $wall s wall, $user s user, $sys s sys, peak $rss KB RSS"
    echo "$wall $rss" >>"$times"
    if [ -n "${REFERENCE:-}" ]; then reference "$data" "$work/reference-$name.db"; fi
  done
  sqlite3 "$data/replica.db" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
  local du_bytes db_bytes
  du_bytes=$(du -sb "$data" | cut -f1)
  db_bytes=$(stat -c %s "$data/replica.db")
  echo "replica: du $((du_bytes / 1000000)) MB, replica.db $((db_bytes / 1000000)) MB;" \
    "ratio to the markdown corpus $(echo "scale=3; $du_bytes / $markdown_bytes" | bc)"
  echo "load after: $(uptime | sed 's/.*load average: //')"
  if [ "${RUNS:-1}" -gt 1 ]; then
    sort -n "$times" | awk '{ t[NR] = $1; if ($2 > m) m = $2 }
      END { printf "%d runs: fastest %s s, median %s s, slowest %s s; peak RSS at most %d KB\n",
            NR, t[1], (NR % 2 ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2), t[NR], m }'
  fi
  if [ -z "${KEEP:-}" ]; then rm -rf "$data"; fi
}

# The reference: the texts are copied once into a table of their own, then
# each run indexes them into a new database.
reference() {
  local data=$1 texts=$2
  if [ ! -s "$texts" ]; then
    sqlite3 "$texts" "ATTACH '$data/replica.db' AS r;
      CREATE TABLE texts AS SELECT title, body FROM r.nodes WHERE deleted = 0;"
  fi
  rm -f "$work/reference-index.db"
  /usr/bin/time -f "%e %U %S %M" -o "$work/time" sqlite3 "$work/reference-index.db" \
    "PRAGMA page_size = 16384; PRAGMA cache_size = -4096; ATTACH '$texts' AS t;
     CREATE VIRTUAL TABLE f USING fts5(title, body,
       tokenize = 'unicode61 remove_diacritics 2', prefix = '3');
     INSERT INTO f (f, rank) VALUES ('hashsize', 33554432);
     INSERT INTO f (title, body) SELECT title, body FROM t.texts;" >/dev/null
  read -r wall user sys rss <"$work/time"
  echo "reference (sqlite3 shell, FTS5 build): $wall s wall, $user s user"
  rm -f "$work/reference-index.db"
}

case ${ONLY:-all} in
  realistic) run realistic ;;
  tasks) run tasks --tasks-only --no-bodies ;;
  *) run realistic; run tasks --tasks-only --no-bodies ;;
esac
