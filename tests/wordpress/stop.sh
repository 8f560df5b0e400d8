#!/usr/bin/env bash
# Stops the test WordPress started by setup.sh: both process groups (PHP's built-in server and its
# workers; MariaDB), then removes its config file. With --purge also deletes STATE_DIR.
#
#   tests/wordpress/stop.sh STATE_DIR [--purge]
set -uo pipefail

STATE=${1:?usage: stop.sh STATE_DIR [--purge]}
PURGE=${2:-}
[ -d "$STATE" ] || exit 0
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# With --purge the data is thrown away anyway, so there is no point in a clean MariaDB shutdown.
SIGNAL=TERM
if [ "$PURGE" = "--purge" ]; then SIGNAL=KILL; fi

# Whether a process of the group is still alive. Killed processes linger as zombies until their
# parent (init, once setup.sh has exited) reaps them; those no longer count.
alive() {
    ps -e -o pgid=,stat= | awk -v group="$1" '$1 == group && $2 !~ /^Z/ { alive = 1 } END { exit !alive }'
}

stop_group() {
    local file=$1 pgid
    [ -f "$file" ] || return 0
    pgid=$(cat "$file")
    case "$pgid" in '' | *[!0-9]*) return 0 ;; esac
    kill "-$SIGNAL" -- "-$pgid" 2>/dev/null || { rm -f "$file"; return 0; }
    for _ in $(seq 1 100); do # up to 10 s, then force
        alive "$pgid" || { rm -f "$file"; return 0; }
        sleep 0.1
    done
    kill -KILL -- "-$pgid" 2>/dev/null
    rm -f "$file"
}

stop_group "$STATE/php.pgid"
stop_group "$STATE/mariadb.pgid"
if [ -f "$STATE/config-file" ]; then
    CONFIG_FILE=$(cat "$STATE/config-file")
    case "$CONFIG_FILE" in /etc/wordpress/config-rrs-test-*.php) $SUDO rm -f "$CONFIG_FILE" ;; esac
    rm -f "$STATE/config-file"
fi
if [ "$PURGE" = "--purge" ]; then
    rm -rf "$STATE"
fi
