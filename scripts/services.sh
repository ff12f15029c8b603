#!/usr/bin/env bash
# Makes sure the services Tech Vault needs (PostgreSQL and Redis) are reachable.
#
#   scripts/services.sh up
#
# 1. If Postgres and Redis already answer, nothing is started.
# 2. Otherwise, if a Docker engine runs, `docker compose up -d postgres redis`.
# 3. Otherwise, local Debian packages: installed with apt-get when absent, then started.
# Finally the database named in DATABASE_URL is created if it does not exist.
#
# Settings (environment): DATABASE_URL, REDIS_URL, SERVICES_WAIT_SECONDS (default 60).
# Idempotent; prints one line per action taken and nothing when all is well.
set -euo pipefail

ROOT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/techvault?sslmode=disable}"
REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
WAIT_SECONDS="${SERVICES_WAIT_SECONDS:-60}"

log() { printf 'services: %s\n' "$*"; }
die() { printf 'services: error: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

# ---------------------------------------------------------------------------
# URL parsing: scheme://[user[:password]@]host[:port][/path][?query]
# ---------------------------------------------------------------------------
url_rest()      { local r="${1#*://}"; printf '%s' "${r%%\?*}"; }          # without scheme and query
url_authority() { local r; r="$(url_rest "$1")"; printf '%s' "${r%%/*}"; }
url_hostport()  { local a; a="$(url_authority "$1")"; printf '%s' "${a##*@}"; }
url_host() {
  local hp; hp="$(url_hostport "$1")"
  if [[ "$hp" == \[* ]]; then hp="${hp#[}"; hp="${hp%%]*}"      # [::1]:5432
  else hp="${hp%%:*}"; fi
  printf '%s' "${hp:-127.0.0.1}"
}
url_port() {
  local hp; hp="$(url_hostport "$1")"; hp="${hp##*]}"
  if [[ "$hp" == *:* ]]; then printf '%s' "${hp##*:}"; else printf '%s' "$2"; fi
}
url_user() {
  local a; a="$(url_authority "$1")"
  if [[ "$a" == *@* ]]; then a="${a%%@*}"; printf '%s' "${a%%:*}"; else printf '%s' "$2"; fi
}
url_password() {
  local a; a="$(url_authority "$1")"
  if [[ "$a" == *@* ]]; then a="${a%%@*}"; [[ "$a" == *:* ]] && printf '%s' "${a#*:}"; fi
  return 0
}
url_path() {
  local r a; r="$(url_rest "$1")"; a="${r%%/*}"; r="${r#"$a"}"; printf '%s' "${r#/}"
}
is_local_host() { case "$1" in 127.0.0.1|localhost|::1|0.0.0.0) return 0 ;; *) return 1 ;; esac; }

PG_HOST="$(url_host "$DATABASE_URL")"
PG_PORT="$(url_port "$DATABASE_URL" 5432)"
PG_USER="$(url_user "$DATABASE_URL" postgres)"
PG_DB="$(url_path "$DATABASE_URL")"; PG_DB="${PG_DB:-techvault}"
PG_PASSWORD="$(url_password "$DATABASE_URL")"
if [[ -n "$PG_PASSWORD" ]]; then export PGPASSWORD="$PG_PASSWORD"; fi
REDIS_HOST="$(url_host "$REDIS_URL")"
REDIS_PORT="$(url_port "$REDIS_URL" 6379)"

# ---------------------------------------------------------------------------
# Readiness checks (client tools when present, else a bare TCP connect)
# ---------------------------------------------------------------------------
tcp_open() { (exec 3<>"/dev/tcp/$1/$2") >/dev/null 2>&1; }

pg_ready() {
  if have pg_isready; then pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 2 >/dev/null 2>&1
  else tcp_open "$PG_HOST" "$PG_PORT"; fi
}
redis_ready() {
  if have redis-cli; then
    [[ "$(timeout 3 redis-cli -u "$REDIS_URL" ping 2>/dev/null)" == "PONG" ]]
  else tcp_open "$REDIS_HOST" "$REDIS_PORT"; fi
}

wait_ready() { # name check-function
  local name="$1" check="$2" deadline=$((SECONDS + WAIT_SECONDS))
  until "$check"; do
    if ((SECONDS >= deadline)); then
      case "$name" in
        postgres) die "PostgreSQL did not answer at $PG_HOST:$PG_PORT within ${WAIT_SECONDS}s" ;;
        *)        die "Redis did not answer at $REDIS_HOST:$REDIS_PORT within ${WAIT_SECONDS}s" ;;
      esac
    fi
    sleep 1
  done
}

# ---------------------------------------------------------------------------
# Privileges and package installation (Debian)
# ---------------------------------------------------------------------------
as_root() {
  if [[ "$(id -u)" -eq 0 ]]; then "$@"
  elif have sudo; then sudo "$@"
  else die "need root for: $* (run as root or install sudo)"; fi
}

APT_UPDATED=0
apt_install() {
  have apt-get || die "cannot install $* : apt-get not found. Install PostgreSQL 15 and Redis yourself, or start a Docker engine."
  if ((APT_UPDATED == 0)); then
    log "apt-get update"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    APT_UPDATED=1
  fi
  log "apt-get install $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# ---------------------------------------------------------------------------
# Docker path
# ---------------------------------------------------------------------------
COMPOSE=()
docker_engine() {
  have docker || return 1
  timeout 15 docker info >/dev/null 2>&1 || return 1
  if docker compose version >/dev/null 2>&1; then COMPOSE=(docker compose)
  elif have docker-compose; then COMPOSE=(docker-compose)
  else return 1; fi
}

start_with_docker() {
  local svcs=()
  pg_ready || svcs+=(postgres)
  redis_ready || svcs+=(redis)
  log "starting ${svcs[*]} with ${COMPOSE[*]}"
  (cd "$ROOT_DIR" && "${COMPOSE[@]}" up -d "${svcs[@]}" >/dev/null)
}

# ---------------------------------------------------------------------------
# Local Debian packages path
# ---------------------------------------------------------------------------
PG_INSTALLED_NOW=0

pg_version() { # highest installed cluster version, else highest installed server version
  local v=""
  [[ -d /etc/postgresql ]] && v="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)"
  [[ -z "$v" && -d /usr/lib/postgresql ]] && v="$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1)"
  printf '%s' "$v"
}

start_local_postgres() {
  if ! have pg_ctlcluster; then
    apt_install postgresql
    PG_INSTALLED_NOW=1
  fi
  local v; v="$(pg_version)"
  [[ -n "$v" ]] || die "PostgreSQL packages are installed but no server version was found"
  if [[ ! -d "/etc/postgresql/$v/main" ]]; then
    log "creating PostgreSQL $v cluster main"
    as_root pg_createcluster "$v" main >/dev/null
    PG_INSTALLED_NOW=1
  fi
  if ((PG_INSTALLED_NOW)); then trust_local_connections "$v"; fi
  log "starting PostgreSQL $v (cluster main)"
  # "already running" is not an error for us: the wait below decides.
  as_root pg_ctlcluster --skip-systemctl-redirect "$v" main start >/dev/null 2>&1 \
    || as_root pg_ctlcluster --skip-systemctl-redirect "$v" main status >/dev/null 2>&1 \
    || die "pg_ctlcluster could not start PostgreSQL $v main (see /var/log/postgresql/)"
}

# A fresh Debian cluster uses peer/scram auth; the app connects as postgres without
# a password over TCP, so a cluster this script just created trusts local TCP.
trust_local_connections() {
  local hba="/etc/postgresql/$1/main/pg_hba.conf"
  [[ -f "$hba" ]] || return 0
  if ! as_root grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
    log "allowing passwordless local TCP connections in $hba (development cluster)"
    as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
}

start_local_redis() {
  have redis-server || apt_install redis-server
  log "starting redis-server on 127.0.0.1:$REDIS_PORT"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no >/dev/null
}

start_local() {
  if ! pg_ready; then
    is_local_host "$PG_HOST" || die "PostgreSQL at $PG_HOST:$PG_PORT does not answer and is not on this machine"
    start_local_postgres
  fi
  if ! redis_ready; then
    is_local_host "$REDIS_HOST" || die "Redis at $REDIS_HOST:$REDIS_PORT does not answer and is not on this machine"
    start_local_redis
  fi
}

# ---------------------------------------------------------------------------
# Database
# ---------------------------------------------------------------------------
ensure_database() {
  local psql=()
  if have psql; then
    psql=(psql -X -q -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres)
  elif ((${#COMPOSE[@]})) && is_local_host "$PG_HOST"; then
    psql=("${COMPOSE[@]}" -f "$ROOT_DIR/docker-compose.yml" exec -T postgres psql -X -q -v ON_ERROR_STOP=1 -U "$PG_USER" -d postgres)
  else
    log "psql not found: cannot check that database \"$PG_DB\" exists (install postgresql-client, or create it yourself)"
    return 0
  fi

  local exists
  if ! exists="$(printf "SELECT 1 FROM pg_database WHERE datname = :'db';\n" \
      | PGCONNECT_TIMEOUT=5 "${psql[@]}" -tA -v db="$PG_DB" 2>&1)"; then
    die "cannot query PostgreSQL at $PG_HOST:$PG_PORT as $PG_USER: $exists"
  fi
  if [[ "$exists" != "1" ]]; then
    log "creating database $PG_DB"
    printf 'CREATE DATABASE :"db";\n' | PGCONNECT_TIMEOUT=5 "${psql[@]}" -v db="$PG_DB" >/dev/null
  fi
}

# ---------------------------------------------------------------------------
up() {
  if ! pg_ready || ! redis_ready; then
    if docker_engine; then
      start_with_docker
    else
      start_local
    fi
    wait_ready postgres pg_ready
    wait_ready redis redis_ready
    log "postgres $PG_HOST:$PG_PORT and redis $REDIS_HOST:$REDIS_PORT are up"
  fi
  ensure_database
}

case "${1:-}" in
  up) up ;;
  *) echo "usage: $0 up" >&2; exit 2 ;;
esac
