# shellcheck shell=bash
# Shared helpers for scripts/run, scripts/test and scripts/stop.  Source it:
#
#     source "$(dirname "$0")/lib.sh"
#
# On source it sets ROOT (the addon's checkout), LOCAL ($ROOT/.local, never
# committed) and checks that Odoo 19 is importable (set MKT_SKIP_ODOO_CHECK=1 to
# skip that, scripts/stop does).  Then the calling script uses:
#
#   mkt_setup_addons   ADDONS_PATH: $LOCAL/addons (where mkt_campaign -> $ROOT,
#                      whatever the checkout folder is called) + Odoo's addons
#   mkt_setup_db       DB_ARGS (array) for odoo: a server named by the user
#                      (PGHOST / PGPORT / DB_HOST set) as is, else a private
#                      PostgreSQL cluster in $LOCAL/pg on a unix socket only
#   mkt_db_args        prints DB_ARGS shell-quoted
#   mkt_psql           psql on the same server (db "postgres" unless -d given)
#   mkt_start_catcher  SMTP_ARGS (array) for odoo: SMTP_SERVER if set, else the
#                      loopback catcher (tests/loopback_smtp.py) writing
#                      $LOCAL/mail/*.eml
#   mkt_stop_catcher / mkt_stop_db
#
# Environment knobs: PYTHON (default python3); PGHOST PGPORT DB_HOST DB_PORT
# DB_USER DB_PASSWORD (use an existing server); MKT_PG_PORT (private cluster
# port, default 5433); SMTP_SERVER SMTP_PORT SMTP_USER SMTP_PASSWORD (use a real
# SMTP server); MKT_SMTP_PORT (catcher port, default 2525).
#
# Nothing here downloads or installs anything, and nothing listens beyond
# 127.0.0.1 / a unix socket.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
LOCAL="$ROOT/.local"
PYTHON="${PYTHON:-python3}"
MKT_ADDON=mkt_campaign
mkdir -p "$LOCAL" "$LOCAL/logs"

mkt_log() { printf '==> %s\n' "$*" >&2; }
mkt_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# --------------------------------------------------------------------------
# Odoo
# --------------------------------------------------------------------------
mkt_require_odoo() {
    local major
    if ! major="$("$PYTHON" -c 'import odoo.release; print(odoo.release.version_info[0])' 2>/dev/null)"; then
        mkt_die "Odoo 19.0 Community must be importable as \`odoo\` (python3 -c 'import odoo') with its Python dependencies; this project does not install it. Install Odoo 19.0 and make it importable by $PYTHON, then re-run."
    fi
    if [ "$major" != 19 ]; then
        mkt_die "Odoo 19.0 Community must be importable as \`odoo\` (python3 -c 'import odoo'); found Odoo major version $major instead."
    fi
}

if [ "${MKT_SKIP_ODOO_CHECK:-0}" != 1 ]; then
    mkt_require_odoo
fi

# Odoo's own addons folders: odoo.addons.__path__ plus the "addons" folder
# next to the odoo package (source checkout layout, e.g. /opt/odoo19/addons).
mkt_odoo_addons_dirs() {
    "$PYTHON" - "$LOCAL/addons" <<'PY'
import os, sys
import odoo.release, odoo.addons
skip = os.path.realpath(sys.argv[1])
dirs = []
for p in list(odoo.addons.__path__) + [
        os.path.join(os.path.dirname(os.path.abspath(odoo.release.__file__)), os.pardir, 'addons')]:
    p = os.path.realpath(p)
    if os.path.isdir(p) and p != skip and p not in dirs:
        dirs.append(p)
print(','.join(dirs))
PY
}

# $LOCAL/addons/mkt_campaign mirrors the checkout with one symlink per
# top-level entry (all but .git and .local).  A single symlink to $ROOT would
# put a loop under the addons path ($ROOT/.local/addons/mkt_campaign/.local/
# ...), and Odoo walks addons paths with os.walk(followlinks=True) when it
# exports translations: ~40 nested copies of the repo and duplicated terms.
mkt_setup_addons() {
    local dir="$LOCAL/addons/$MKT_ADDON" entry name
    mkdir -p "$LOCAL/addons"
    # an older layout made it one symlink to $ROOT: remove the link only
    if [ -L "$dir" ]; then
        rm -f "$dir"
    fi
    mkdir -p "$dir"
    [ ! -L "$dir" ] && [ "$(cd "$dir" && pwd -P)" != "$ROOT" ] \
        || mkt_die "$dir must be a plain folder of symlinks, not the checkout itself"
    for entry in "$ROOT"/* "$ROOT"/.[!.]*; do
        [ -e "$entry" ] || continue
        name="$(basename "$entry")"
        case "$name" in .git|.local|__pycache__) continue ;; esac
        if [ "$(readlink "$dir/$name" 2>/dev/null || true)" != "$entry" ]; then
            rm -rf "${dir:?}/$name"
            ln -s "$entry" "$dir/$name"
        fi
    done
    for entry in "$dir"/* "$dir"/.[!.]*; do     # entries gone from the checkout
        if [ -L "$entry" ] && [ ! -e "$entry" ]; then rm -f "$entry"; fi
    done
    ODOO_ADDONS_DIRS="$(mkt_odoo_addons_dirs)"
    [ -n "$ODOO_ADDONS_DIRS" ] || mkt_die "could not find Odoo's addons folders"
    ADDONS_PATH="$LOCAL/addons,$ODOO_ADDONS_DIRS"
    export ADDONS_PATH
}

# --------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------
# Binaries of the given major version, else pg_ctl's folder on PATH, else the
# highest /usr/lib/postgresql/*/bin.
mkt_pg_bindir() {
    local want="${1:-}" dir
    if [ -n "$want" ] && [ -x "/usr/lib/postgresql/$want/bin/pg_ctl" ]; then
        echo "/usr/lib/postgresql/$want/bin"; return
    fi
    if command -v pg_ctl >/dev/null 2>&1; then
        dir="$(dirname "$(readlink -f "$(command -v pg_ctl)")")"
        if [ -x "$dir/initdb" ] && [ -x "$dir/postgres" ]; then echo "$dir"; return; fi
    fi
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5n | tail -n1 || true)"
    if [ -n "$dir" ] && [ -x "$dir/pg_ctl" ]; then echo "$dir"; return; fi
    return 1
}

# Run a PostgreSQL server binary as the cluster owner (postgres refuses root).
mkt_pg_as_owner() {
    if [ "$(id -u)" = 0 ]; then
        (cd / && runuser -u "$PG_OWNER" -- "$@")
    else
        "$@"
    fi
}

# Where the private cluster lives: $LOCAL/pg, unless (as root) its owner
# cannot reach $LOCAL (e.g. a clone in a 0700 temp dir) or the socket path
# would be too long, then a folder under /var/tmp keyed by $ROOT.
mkt_pg_locate() {
    local key
    key="$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1)"
    PG_BASE="$LOCAL"
    if [ "$(id -u)" = 0 ] && ! (cd / && runuser -u "$PG_OWNER" -- test -x "$LOCAL" -a -r "$LOCAL"); then
        PG_BASE="/var/tmp/mkt_campaign-pg-$key"
    fi
    PGDATA_DIR="$PG_BASE/pg"
    PG_SOCKDIR="$PG_BASE/pgsock"
    if [ "${#PG_SOCKDIR}" -gt 90 ]; then
        PG_SOCKDIR="/tmp/mkt_campaign-pgsock-$key"
    fi
    PG_PORT="${MKT_PG_PORT:-5433}"
    # remember where it is, for scripts/stop
    printf '%s\n%s\n%s\n' "$PGDATA_DIR" "$PG_SOCKDIR" "$PG_PORT" > "$LOCAL/pg.location"
}

mkt_pg_owner() {
    PG_OWNER="$(id -un)"
    if [ "$(id -u)" = 0 ]; then
        PG_OWNER=postgres
        if ! id -u "$PG_OWNER" >/dev/null 2>&1; then
            useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$PG_OWNER" \
                || mkt_die "cannot create the system user $PG_OWNER to run PostgreSQL"
        fi
    fi
}

mkt_start_private_pg() {
    PG_STARTED_HERE=0
    mkt_pg_owner
    mkt_pg_locate
    local version="" bindir
    [ -f "$PGDATA_DIR/PG_VERSION" ] && version="$(cat "$PGDATA_DIR/PG_VERSION")"
    bindir="$(mkt_pg_bindir "$version")" \
        || mkt_die "PostgreSQL server binaries not found (no pg_ctl on PATH nor /usr/lib/postgresql/*/bin); install the Debian package postgresql, or set PGHOST/PGPORT (or DB_HOST/DB_PORT/DB_USER/DB_PASSWORD) to use an existing server"
    PG_BINDIR="$bindir"
    mkdir -p "$PG_SOCKDIR" "$(dirname "$PGDATA_DIR")"
    if [ "$(id -u)" = 0 ]; then
        chown "$PG_OWNER" "$PG_SOCKDIR"
        chmod 0755 "$PG_SOCKDIR"
    fi
    if [ ! -f "$PGDATA_DIR/PG_VERSION" ]; then
        mkt_log "creating a private PostgreSQL cluster in $PGDATA_DIR ($("$bindir/postgres" --version))"
        rm -rf "$PGDATA_DIR"
        mkdir -p "$PGDATA_DIR"
        chmod 0700 "$PGDATA_DIR"
        [ "$(id -u)" = 0 ] && chown "$PG_OWNER" "$PGDATA_DIR"
        mkt_pg_as_owner "$bindir/initdb" -D "$PGDATA_DIR" -A trust -U odoo -E UTF8 --no-locale \
            > "$LOCAL/logs/initdb.log" 2>&1 \
            || { cat "$LOCAL/logs/initdb.log" >&2; mkt_die "initdb failed"; }
        # Throw-away dev/test cluster: trade durability for speed.
        cat >> "$PGDATA_DIR/postgresql.conf" <<'CONF'

# --- mkt_campaign private dev/test cluster (not for real data) ---
listen_addresses = ''
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = minimal
max_wal_senders = 0
max_wal_size = 2GB
checkpoint_timeout = 30min
max_connections = 200
shared_buffers = 256MB
work_mem = 16MB
maintenance_work_mem = 128MB
jit = off
CONF
    fi
    if mkt_pg_as_owner "$bindir/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1 \
        && [ -S "$PG_SOCKDIR/.s.PGSQL.$PG_PORT" ]; then
        : # already running, reuse it
    else
        mkt_log "starting the private PostgreSQL cluster (socket $PG_SOCKDIR, port $PG_PORT)"
        PG_STARTED_HERE=1
        mkt_pg_as_owner "$bindir/pg_ctl" -D "$PGDATA_DIR" -l "$PGDATA_DIR/server.log" -w -t 120 \
            -o "-c listen_addresses='' -k '$PG_SOCKDIR' -p $PG_PORT" start >/dev/null \
            || { tail -n 30 "$PGDATA_DIR/server.log" >&2 || true; mkt_die "could not start PostgreSQL (log: $PGDATA_DIR/server.log)"; }
    fi
    DB_ARGS=(--db_host "$PG_SOCKDIR" --db_port "$PG_PORT" --db_user odoo)
    PSQL_ARGS=(-h "$PG_SOCKDIR" -p "$PG_PORT" -U odoo)
    CONF_DB_HOST="$PG_SOCKDIR"; CONF_DB_PORT="$PG_PORT"; CONF_DB_USER=odoo; CONF_DB_PASSWORD=""
}

mkt_setup_db() {
    if [ -n "${PGHOST:-}${PGPORT:-}${DB_HOST:-}" ]; then
        # a server chosen by the user: use it as is (libpq reads PG* itself)
        DB_ARGS=()
        PSQL_ARGS=()
        CONF_DB_HOST="${DB_HOST:-${PGHOST:-}}"
        CONF_DB_PORT="${DB_PORT:-${PGPORT:-}}"
        CONF_DB_USER="${DB_USER:-${PGUSER:-}}"
        CONF_DB_PASSWORD="${DB_PASSWORD:-${PGPASSWORD:-}}"
        [ -n "$CONF_DB_HOST" ] && DB_ARGS+=(--db_host "$CONF_DB_HOST") && PSQL_ARGS+=(-h "$CONF_DB_HOST")
        [ -n "$CONF_DB_PORT" ] && DB_ARGS+=(--db_port "$CONF_DB_PORT") && PSQL_ARGS+=(-p "$CONF_DB_PORT")
        [ -n "$CONF_DB_USER" ] && DB_ARGS+=(--db_user "$CONF_DB_USER") && PSQL_ARGS+=(-U "$CONF_DB_USER")
        [ -n "$CONF_DB_PASSWORD" ] && DB_ARGS+=(--db_password "$CONF_DB_PASSWORD")
        if [ -n "$CONF_DB_PASSWORD" ]; then export PGPASSWORD="$CONF_DB_PASSWORD"; fi
        mkt_log "using the PostgreSQL server from the environment (${CONF_DB_HOST:-default host}:${CONF_DB_PORT:-default port})"
    else
        mkt_start_private_pg
    fi
    command -v psql >/dev/null 2>&1 || [ -x "${PG_BINDIR:-/nonexistent}/psql" ] \
        || mkt_die "psql not found (Debian package postgresql-client)"
}

mkt_db_args() {
    local a
    for a in "${DB_ARGS[@]}"; do printf '%q ' "$a"; done
    echo
}

mkt_psql() {
    local psql=psql
    if [ -n "${PG_BINDIR:-}" ] && [ -x "$PG_BINDIR/psql" ]; then psql="$PG_BINDIR/psql"; fi
    "$psql" "${PSQL_ARGS[@]}" -v ON_ERROR_STOP=1 -X -q -d postgres "$@"
}

# Is database $1 present?
mkt_db_exists() {
    [ "$(mkt_psql -tAc "SELECT 1 FROM pg_database WHERE datname = '$1'")" = 1 ]
}

# Drop database $1 (and its filestore in $LOCAL/data).
mkt_drop_db() {
    mkt_psql -c "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" >/dev/null
    rm -rf "$LOCAL/data/filestore/$1"
}

mkt_stop_db() {
    [ -f "$LOCAL/pg.location" ] || return 0
    local data sockdir bindir version=""
    { read -r data; read -r sockdir; } < "$LOCAL/pg.location"
    [ -f "$data/PG_VERSION" ] || return 0
    version="$(cat "$data/PG_VERSION")"
    bindir="$(mkt_pg_bindir "$version")" || return 0
    mkt_pg_owner
    if mkt_pg_as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        mkt_log "stopping the private PostgreSQL cluster ($data)"
        mkt_pg_as_owner "$bindir/pg_ctl" -D "$data" -m fast -w stop >/dev/null
    fi
}

# --------------------------------------------------------------------------
# Mail
# --------------------------------------------------------------------------
mkt_port_free() {
    "$PYTHON" -c '
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
' "$1"
}

mkt_free_port() {
    "$PYTHON" -c '
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

mkt_catcher_running() {
    local pid
    [ -f "$LOCAL/mail-catcher.pid" ] && [ -f "$LOCAL/mail-catcher.port" ] || return 1
    pid="$(cat "$LOCAL/mail-catcher.pid")"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null \
        && grep -q loopback_smtp "/proc/$pid/cmdline" 2>/dev/null
}

mkt_start_catcher() {
    if [ -n "${SMTP_SERVER:-}" ]; then
        SMTP_ARGS=(--smtp "$SMTP_SERVER" --smtp-port "${SMTP_PORT:-25}")
        [ -n "${SMTP_USER:-}" ] && SMTP_ARGS+=(--smtp-user "$SMTP_USER")
        [ -n "${SMTP_PASSWORD:-}" ] && SMTP_ARGS+=(--smtp-password "$SMTP_PASSWORD")
        MAIL_NOTE="sent through $SMTP_SERVER:${SMTP_PORT:-25} (SMTP_SERVER)"
        return 0
    fi
    mkdir -p "$LOCAL/mail"
    if ! mkt_catcher_running; then
        local port="${MKT_SMTP_PORT:-2525}" pid
        mkt_port_free "$port" || port="$(mkt_free_port)"
        rm -f "$LOCAL/mail-catcher.port"
        setsid "$PYTHON" "$ROOT/tests/loopback_smtp.py" --host 127.0.0.1 --port "$port" \
            --maildir "$LOCAL/mail" --port-file "$LOCAL/mail-catcher.port" --verbose \
            >> "$LOCAL/logs/mail-catcher.log" 2>&1 < /dev/null &
        pid=$!
        echo "$pid" > "$LOCAL/mail-catcher.pid"
        mkt_wait_port_file "$pid" "$LOCAL/mail-catcher.port" \
            || { tail -n 20 "$LOCAL/logs/mail-catcher.log" >&2 || true; mkt_die "the loopback SMTP catcher did not start"; }
    fi
    MAIL_PORT="$(cat "$LOCAL/mail-catcher.port")"
    SMTP_ARGS=(--smtp 127.0.0.1 --smtp-port "$MAIL_PORT")
    MAIL_NOTE="caught by the loopback SMTP on 127.0.0.1:$MAIL_PORT -> $LOCAL/mail/*.eml"
}

# Wait (10 s at most) for a loopback server started as PID to write its port
# to FILE; fails when it did not.
mkt_wait_port_file() {
    local pid="$1" file="$2" i
    for i in $(seq 100); do
        [ -s "$file" ] && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    [ -s "$file" ]
}

# The WhatsApp sandbox (tests/loopback_whatsapp.py): a loopback WhatsApp Cloud
# API that approves templates and writes messages to $LOCAL/whatsapp/*.json.
mkt_start_whatsapp_sandbox() {
    mkdir -p "$LOCAL/whatsapp"
    local pid
    if [ -f "$LOCAL/whatsapp.pid" ] && kill -0 "$(cat "$LOCAL/whatsapp.pid")" 2>/dev/null \
            && [ -s "$LOCAL/whatsapp.port" ]; then
        WHATSAPP_PORT="$(cat "$LOCAL/whatsapp.port")"
        return 0
    fi
    rm -f "$LOCAL/whatsapp.port"
    setsid "$PYTHON" "$ROOT/tests/loopback_whatsapp.py" --port 0 --outdir "$LOCAL/whatsapp" \
        --port-file "$LOCAL/whatsapp.port" >> "$LOCAL/logs/whatsapp-sandbox.log" 2>&1 < /dev/null &
    pid=$!
    echo "$pid" > "$LOCAL/whatsapp.pid"
    mkt_wait_port_file "$pid" "$LOCAL/whatsapp.port" \
        || { tail -n 20 "$LOCAL/logs/whatsapp-sandbox.log" >&2 || true; mkt_die "the WhatsApp sandbox did not start"; }
    WHATSAPP_PORT="$(cat "$LOCAL/whatsapp.port")"
}

mkt_stop_whatsapp_sandbox() {
    local pid
    [ -f "$LOCAL/whatsapp.pid" ] || return 0
    pid="$(cat "$LOCAL/whatsapp.pid")"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q loopback_whatsapp "/proc/$pid/cmdline" 2>/dev/null; then
        mkt_log "stopping the WhatsApp sandbox (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
    fi
    rm -f "$LOCAL/whatsapp.pid" "$LOCAL/whatsapp.port"
}

# A loopback sandbox run by scripts/run, one of tests/loopback_*.py: NAME
# (sms, push) SCRIPT [its arguments]; it writes its port to $LOCAL/NAME.port,
# read into SANDBOX_PORT. A sandbox still running is reused.
mkt_start_sandbox() {
    local name="$1" script="$2" pid
    shift 2
    if [ -f "$LOCAL/$name.pid" ] && kill -0 "$(cat "$LOCAL/$name.pid")" 2>/dev/null \
            && [ -s "$LOCAL/$name.port" ]; then
        SANDBOX_PORT="$(cat "$LOCAL/$name.port")"
        return 0
    fi
    rm -f "$LOCAL/$name.port"
    setsid "$PYTHON" "$ROOT/tests/$script" --port 0 --port-file "$LOCAL/$name.port" "$@" \
        >> "$LOCAL/logs/$name-sandbox.log" 2>&1 < /dev/null &
    pid=$!
    echo "$pid" > "$LOCAL/$name.pid"
    mkt_wait_port_file "$pid" "$LOCAL/$name.port" \
        || { tail -n 20 "$LOCAL/logs/$name-sandbox.log" >&2 || true; mkt_die "the $name sandbox did not start"; }
    SANDBOX_PORT="$(cat "$LOCAL/$name.port")"
}

# mkt_stop_sandbox NAME SCRIPT: stops it if its pid still runs SCRIPT
mkt_stop_sandbox() {
    local name="$1" script="$2" pid
    [ -f "$LOCAL/$name.pid" ] || return 0
    pid="$(cat "$LOCAL/$name.pid")"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q "$script" "/proc/$pid/cmdline" 2>/dev/null; then
        mkt_log "stopping the $name sandbox (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
    fi
    rm -f "$LOCAL/$name.pid" "$LOCAL/$name.port"
}

mkt_stop_catcher() {
    local pid i
    [ -f "$LOCAL/mail-catcher.pid" ] || return 0
    pid="$(cat "$LOCAL/mail-catcher.pid")"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q loopback_smtp "/proc/$pid/cmdline" 2>/dev/null; then
        mkt_log "stopping the loopback SMTP catcher (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$LOCAL/mail-catcher.pid" "$LOCAL/mail-catcher.port"
}
