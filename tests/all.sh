#!/usr/bin/env bash
# The test command: installs what the tests need, then runs every test —
# formatting and lints, Rust unit/property/integration/end-to-end tests
# (under a real Secret Service and a kernel session keyring), and the
# Neovim specs against a real headless Neovim and the real sidecar.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD

step() { printf '\n==> %s\n' "$*"; }
failed=()

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

step "installing test dependencies"
# Debian packages: busted for the specs, a D-Bus session with
# gnome-keyring (Secret Service) and keyutils for the token-store tests.
need=()
command -v busted >/dev/null || [ -f /usr/share/lua/5.1/busted/runner.lua ] || need+=(lua-busted)
command -v dbus-run-session >/dev/null || need+=(dbus-daemon dbus-bin)
command -v node >/dev/null || need+=(nodejs npm)
command -v gnome-keyring-daemon >/dev/null || need+=(gnome-keyring)
command -v keyctl >/dev/null || need+=(keyutils)
dpkg -s libsecret-1-0 >/dev/null 2>&1 || need+=(libsecret-1-0)
if [ ${#need[@]} -gt 0 ]; then
  as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || { echo "apt-get install ${need[*]} failed"; exit 1; }
fi
if [ -x scripts/install-deps.sh ]; then
  scripts/install-deps.sh || { echo "scripts/install-deps.sh failed"; exit 1; }
fi
if [ -f tests/e2e/oidc/package-lock.json ]; then
  (cd tests/e2e/oidc && npm ci --no-audit --no-fund --loglevel=error) || { echo "npm ci failed"; exit 1; }
fi

step "cargo fmt --check"
cargo fmt --all -- --check || failed+=("cargo fmt")

step "cargo machete (unused dependencies)"
command -v cargo-machete >/dev/null || cargo install cargo-machete --locked --quiet --version 0.9.2 \
  || { echo "cargo install cargo-machete failed"; exit 1; }
cargo machete || failed+=("cargo machete")

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings || failed+=("cargo clippy")

step "cargo test"
export HEPH_REQUIRE_KEYRING=1
if [ -x tests/keyring-session.sh ]; then
  tests/keyring-session.sh cargo test --workspace --locked || failed+=("cargo test")
else
  cargo test --workspace --locked || failed+=("cargo test")
fi

step "Neovim specs"
if [ -x tests/run-specs.sh ]; then
  cargo build -p heph --locked && HEPH_BIN="$root/target/debug/heph" tests/keyring-session.sh tests/run-specs.sh || failed+=("neovim specs")
fi

if [ ${#failed[@]} -gt 0 ]; then
  printf '\nFAILED: %s\n' "${failed[*]}"
  exit 1
fi
printf '\nall tests passed\n'
