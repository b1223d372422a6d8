#!/usr/bin/env bash
# heph search vs ripgrep over the same notes (not part of the tests): the
# benchmark corpus written as markdown files, one per node, and searched
# for the corpus query set by both, each query once; prints p50/p95/max of
# each and the ratio. heph is timed from the CLI (process start and
# replica open included, as rg's are) and through the search itself
# (`cargo bench -p heph-store --bench replica` and bench/nvim/run.sh time
# that alone). Usage: bench/peers/ripgrep.sh   (NODES=… SEED=…)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
nodes=${NODES:-100000}
seed=${SEED:-7}
if ! command -v rg >/dev/null; then
  as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root apt-get install -y -qq ripgrep >/dev/null
fi
cargo build --release --locked -q -p heph -p heph-corpus
heph=$root/target/release/heph
corpus=$root/target/release/heph-corpus
work=$root/target/bench-data/peers-$seed-$nodes
# The replica the Neovim benchmark imported, when there is one.
data=$root/target/bench-data/nvim-$seed-$nodes/data
mkdir -p "$work" "$(dirname "$data")"
if [ ! -f "$data/replica.db" ]; then
  "$corpus" ops --seed "$seed" --nodes "$nodes" | "$heph" --data-dir "$data.new" import-ops
  mv "$data.new" "$data"
fi
if [ ! -d "$work/markdown" ]; then
  "$corpus" markdown "$work/markdown.new" --seed "$seed" --nodes "$nodes"
  mv "$work/markdown.new" "$work/markdown"
fi
"$corpus" queries --seed "$seed" --nodes "$nodes" --per-class 25 >"$work/queries.tsv"
echo "corpus: $nodes nodes, $(du -sh --apparent-size "$work/markdown" | cut -f1) of markdown ($(du -sh "$work/markdown" | cut -f1) on disk), replica $(du -sh "$data" | cut -f1)"

# ms for one command, output discarded.
time_ms() {
  local start end
  start=$(date +%s%N)
  "$@" >/dev/null 2>&1 || true
  end=$(date +%s%N)
  echo $(((end - start) / 1000))
}

# Like heph (every word, the last as a prefix, case-insensitive), ripgrep
# is given the words as one regex per word and asked for files holding all
# of them: the first word lists candidate files, the others filter them.
rg_query() {
  local words=($1) last files
  last=$((${#words[@]} - 1))
  files=$(rg -l -i -w -e "${words[0]}$([ "$last" = 0 ] && [ ${#words[0]} -ge 3 ] && echo '\w*')" "$work/markdown" || true)
  for i in $(seq 1 "$last"); do
    [ -z "$files" ] && break
    local pattern=${words[$i]}
    [ "$i" = "$last" ] && [ ${#pattern} -ge 3 ] && pattern="$pattern\\w*"
    files=$(echo "$files" | xargs -d '\n' rg -l -i -w -e "$pattern" || true)
  done
  echo "$files" | head -n 50
}
export -f rg_query
export work

heph_times=() rg_times=()
while IFS=$'\t' read -r _class query; do
  heph_times+=("$(time_ms "$heph" --data-dir "$data" search --limit 50 $query)")
  rg_times+=("$(time_ms bash -c 'rg_query "$0"' "$query")")
done <"$work/queries.tsv"

stats() {
  printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END {
    p50 = a[int((NR + 1) / 2)]; p95 = a[int(NR * 0.95 + 0.5)]; max = a[NR]
    printf "p50 %.1f ms, p95 %.1f ms, max %.1f ms\n", p50 / 1000, p95 / 1000, max / 1000 }'
}
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
echo "heph search (CLI, ${#heph_times[@]} queries): $(stats "${heph_times[@]}")"
echo "ripgrep     (${#rg_times[@]} queries):      $(stats "${rg_times[@]}")"
echo "ratio of medians (ripgrep / heph): $(echo "scale=1; $(median "${rg_times[@]}") / $(median "${heph_times[@]}")" | bc)"
