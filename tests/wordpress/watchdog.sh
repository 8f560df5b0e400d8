#!/usr/bin/env bash
# Stops the test WordPress in STATE_DIR when its standard input closes, that is when the test
# process that holds the other end exits, however it exits (panic, abort, SIGKILL).
#
#   tests/wordpress/watchdog.sh STATE_DIR
cat >/dev/null
exec "$(dirname "${BASH_SOURCE[0]}")/stop.sh" "$1" --purge
