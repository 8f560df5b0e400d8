#!/usr/bin/env bash
# Starts a private, real WordPress for the tests (idempotent).
#
#   tests/wordpress/setup.sh STATE_DIR PORT
#
# Installs the Debian packages if they are missing, starts a MariaDB that lives in STATE_DIR (unix
# socket only), installs WordPress with the `person` emulation and the real webhook snippet as
# mu-plugins, and serves it with PHP's built-in server on http://127.0.0.1:PORT. Run again with the
# same arguments, it only checks that everything is up. Prints (and keeps in STATE_DIR/env) the
# KEY=VALUE lines the tests need. Stop it all with tests/wordpress/stop.sh STATE_DIR.
set -euo pipefail

STATE=${1:?usage: setup.sh STATE_DIR PORT}
PORT=${2:?usage: setup.sh STATE_DIR PORT}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
WP_ROOT=/usr/share/wordpress
CONFIG_NAME="rrs-test-$PORT"
CONFIG_FILE="/etc/wordpress/config-$CONFIG_NAME.php"
DEADLINE_SECONDS=${WP_SETUP_DEADLINE:-60}

mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd)
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

log() { echo "setup.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# Waits until "$@" succeeds, for at most DEADLINE_SECONDS.
wait_for() {
    local what=$1; shift
    local start=$SECONDS
    until "$@" >/dev/null 2>&1; do
        if (( SECONDS - start > DEADLINE_SECONDS )); then die "timed out waiting for $what"; fi
        sleep 0.1
    done
}

http_ok() {
    php -r '$c = stream_context_create(["http" => ["timeout" => 2, "ignore_errors" => true]]);
            $b = @file_get_contents($argv[1], false, $c);
            exit($b !== false && str_contains($http_response_header[0] ?? "", " 200") ? 0 : 1);' \
        "http://127.0.0.1:$PORT/wp-json/"
}

# --- already running? ---------------------------------------------------------------------------
if [ -f "$STATE/env" ] && [ -f "$STATE/php.pgid" ] && kill -0 -- "-$(cat "$STATE/php.pgid")" 2>/dev/null \
    && [ -f "$STATE/mariadb.pgid" ] && kill -0 -- "-$(cat "$STATE/mariadb.pgid")" 2>/dev/null && http_ok; then
    cat "$STATE/env"
    exit 0
fi

# --- packages ------------------------------------------------------------------------------------
PACKAGES=(wordpress mariadb-server mariadb-client php-cli php-mysql php-curl php-xml php-mbstring)
MISSING=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then MISSING+=("$p"); fi
done
if [ ${#MISSING[@]} -gt 0 ]; then
    log "installing ${MISSING[*]}"
    $SUDO apt-get update -qq >&2
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${MISSING[@]}" >&2
fi

# --- MariaDB, private to STATE -------------------------------------------------------------------
# mariadbd refuses to run as root; as root it switches to `mysql`, which must own its directories
# and be able to reach them.
chmod 755 "$STATE"
DB_DIR="$STATE/mysql"
SOCK="$DB_DIR/mysqld.sock"
DB_ROOT_USER=root
if [ "$(id -u)" -eq 0 ]; then
    DB_RUN_AS=(--user=mysql)
else
    DB_RUN_AS=()
    DB_ROOT_USER=$(id -un)
fi
if [ ! -d "$DB_DIR/data/mysql" ]; then
    rm -rf "$DB_DIR"
    mkdir -p "$DB_DIR/data"
    if [ "$(id -u)" -eq 0 ]; then chown -R mysql:mysql "$DB_DIR"; fi
    EXTRA=()
    if [ "$(id -u)" -ne 0 ]; then EXTRA=(--auth-root-socket-user="$DB_ROOT_USER"); fi
    mariadb-install-db --no-defaults "${DB_RUN_AS[@]}" --datadir="$DB_DIR/data" \
        --auth-root-authentication-method=socket "${EXTRA[@]}" --skip-test-db >"$STATE/mariadb-install.log" 2>&1 \
        || { cat "$STATE/mariadb-install.log" >&2; die "mariadb-install-db failed"; }
fi
if ! { [ -f "$STATE/mariadb.pgid" ] && kill -0 -- "-$(cat "$STATE/mariadb.pgid")" 2>/dev/null; }; then
    rm -f "$SOCK"
    setsid mariadbd --no-defaults "${DB_RUN_AS[@]}" --datadir="$DB_DIR/data" --socket="$SOCK" \
        --skip-networking --skip-log-bin --pid-file="$DB_DIR/mariadbd.pid" \
        --log-error="$STATE/mariadb.log" </dev/null >>"$STATE/mariadb.log" 2>&1 &
    echo $! >"$STATE/mariadb.pgid"
fi
db() { mariadb --no-defaults --socket="$SOCK" -u "$DB_ROOT_USER" "$@"; }
wait_for "MariaDB on $SOCK" db -e 'SELECT 1'

if [ ! -f "$STATE/db-password" ]; then
    (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$STATE/db-password")
fi
DB_PASSWORD=$(cat "$STATE/db-password")
db <<SQL
CREATE DATABASE IF NOT EXISTS wordpress;
CREATE USER IF NOT EXISTS 'wordpress'@'localhost' IDENTIFIED BY '$DB_PASSWORD';
GRANT ALL PRIVILEGES ON wordpress.* TO 'wordpress'@'localhost';
SQL

# --- mu-plugins: the person emulation and the real snippet ---------------------------------------
mkdir -p "$STATE/mu-plugins"
ln -sfn "$HERE/mu-plugins/rondo-test-person.php" "$STATE/mu-plugins/rondo-test-person.php"
ln -sfn "$REPO/wp-plugin-snippet/rondo-reverse-sync.php" "$STATE/mu-plugins/rondo-reverse-sync.php"
ln -sfn "$REPO/wp-plugin-snippet/rondo-reverse-sync-status.php" "$STATE/mu-plugins/rondo-reverse-sync-status.php"

# --- WordPress config (Debian: /etc/wordpress/config-$WORDPRESS_CONFIG.php) -----------------------
if [ ! -f "$STATE/webhook-secret" ]; then
    (umask 077; echo "whsec_$(head -c 32 /dev/urandom | base64 | tr -d '\n')" >"$STATE/webhook-secret")
fi
WEBHOOK_SECRET=$(cat "$STATE/webhook-secret")
if [ ! -f "$STATE/read-token" ]; then
    (umask 077; head -c 24 /dev/urandom | base64 | tr -d '/+=\n' >"$STATE/read-token")
fi
READ_TOKEN=$(cat "$STATE/read-token")
salt() { head -c 48 /dev/urandom | base64 | tr -d '\n/+='; }
TMP_CONFIG=$(mktemp)
cat >"$TMP_CONFIG" <<PHP
<?php
// Written by tests/wordpress/setup.sh for the test WordPress in $STATE; removed by stop.sh.
define('DB_NAME', 'wordpress');
define('DB_USER', 'wordpress');
define('DB_PASSWORD', '$DB_PASSWORD');
define('DB_HOST', 'localhost:$SOCK');
define('WP_HOME', 'http://127.0.0.1:$PORT');
define('WP_SITEURL', 'http://127.0.0.1:$PORT');
define('WP_ENVIRONMENT_TYPE', 'local');
define('WPMU_PLUGIN_DIR', '$STATE/mu-plugins');
define('DISABLE_WP_CRON', true);
define('WP_HTTP_BLOCK_EXTERNAL', true);
define('WP_DEBUG', true);
define('WP_DEBUG_DISPLAY', false);
define('WP_DEBUG_LOG', '$STATE/debug.log');
define('AUTH_KEY', '$(salt)');
define('SECURE_AUTH_KEY', '$(salt)');
define('LOGGED_IN_KEY', '$(salt)');
define('NONCE_KEY', '$(salt)');
define('AUTH_SALT', '$(salt)');
define('SECURE_AUTH_SALT', '$(salt)');
define('LOGGED_IN_SALT', '$(salt)');
define('NONCE_SALT', '$(salt)');
// The snippet under test. Each test person names its own receiver (see rondo-test-person.php);
// this default is a port nothing listens on.
define('RONDO_REVERSE_SYNC_URL', 'http://127.0.0.1:9/webhooks/rondo-club');
define('RONDO_REVERSE_SYNC_SECRET', '$WEBHOOK_SECRET');
define('RONDO_REVERSE_SYNC_SYNC_USERS', 'rondo-sync');
define('RONDO_REVERSE_SYNC_TIMEOUT', 3);
define('RONDO_REVERSE_SYNC_RETRY_BASE', 1);
// The "Sportlink" box: the service's read-only token, a short timeout, a cache short enough
// for a test to see a verification arrive.
define('RONDO_REVERSE_SYNC_READ_TOKEN', '$READ_TOKEN');
define('RONDO_REVERSE_SYNC_STATUS_TIMEOUT', 1);
define('RONDO_REVERSE_SYNC_STATUS_CACHE', 2);
\$table_prefix = 'wp_';
PHP
chmod 644 "$TMP_CONFIG"
$SUDO mkdir -p /etc/wordpress
$SUDO cp "$TMP_CONFIG" "$CONFIG_FILE"
rm -f "$TMP_CONFIG"
echo "$CONFIG_FILE" >"$STATE/config-file"

# --- install -------------------------------------------------------------------------------------
php "$HERE/install.php" "127.0.0.1:$PORT" "$CONFIG_NAME" "$STATE/credentials" >&2 \
    || die "installing WordPress failed (see $STATE/debug.log)"

# --- serve ---------------------------------------------------------------------------------------
# At least two workers: a request may wait on a webhook receiver that calls back into WordPress.
if ! { [ -f "$STATE/php.pgid" ] && kill -0 -- "-$(cat "$STATE/php.pgid")" 2>/dev/null; }; then
    WORDPRESS_CONFIG="$CONFIG_NAME" PHP_CLI_SERVER_WORKERS=4 \
        setsid php -S "127.0.0.1:$PORT" -t "$WP_ROOT" "$HERE/router.php" </dev/null >>"$STATE/php.log" 2>&1 &
    echo $! >"$STATE/php.pgid"
fi
wait_for "WordPress on http://127.0.0.1:$PORT" http_ok

{
    echo "WP_STATE_DIR=$STATE"
    echo "WP_BASE_URL=http://127.0.0.1:$PORT"
    echo "WP_HOST=127.0.0.1:$PORT"
    echo "WP_CONFIG_NAME=$CONFIG_NAME"
    echo "WP_WEBHOOK_SECRET=$WEBHOOK_SECRET"
    echo "WP_READ_TOKEN=$READ_TOKEN"
    cat "$STATE/credentials"
} >"$STATE/env.tmp"
chmod 600 "$STATE/env.tmp"
mv "$STATE/env.tmp" "$STATE/env"
cat "$STATE/env"
