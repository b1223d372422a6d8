#!/usr/bin/env bash
# Runs a command the way a desktop login would set it up: a private D-Bus
# session with an unlocked gnome-keyring (a real Secret Service), inside a
# fresh kernel session keyring (keyutils needs one).
# Needs Debian's dbus-daemon, gnome-keyring and keyutils (tests/all.sh
# installs them). Usage: tests/keyring-session.sh CMD [ARGS...]
set -euo pipefail
if [ -z "${HEPH_KEYRING_SESSION:-}" ]; then
  export HEPH_KEYRING_SESSION=1
  exec dbus-run-session -- keyctl session - "$0" "$@"
fi
# The login keyring, created and unlocked with a throwaway password.
eval "$(printf 'heph-test-keyring' | gnome-keyring-daemon --unlock --components=secrets)"
export GNOME_KEYRING_CONTROL
exec "$@"
