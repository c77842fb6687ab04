#!/bin/sh
# Creates the two databases when missing, brings their schemas to this server's version (both steps idempotent, so a
# restart or an upgraded image just works), then starts every Temporal service in this process.
set -eu
readonly PASSWORD_FILE=/run/secrets/db-password
readonly WAIT_S=60

say() { printf 'steward-temporal: %s\n' "$*" >&2; }
[ -r "$PASSWORD_FILE" ] || { say "$PASSWORD_FILE is missing or unreadable"; exit 1; }
SQL_PASSWORD=$(cat "$PASSWORD_FILE")
export SQL_PASSWORD SQL_PLUGIN=postgres12 SQL_HOST=postgresql SQL_PORT=5432 SQL_USER=temporal

# PostgreSQL may still be starting (compose waits for its health check only on the first `up`): retried for a minute.
create_database() {
  waited=0
  until out=$(temporal-sql-tool --db "$1" create-database 2>&1) || printf '%s' "$out" | grep -q 'already exists'; do
    if [ "$waited" -ge "$WAIT_S" ]; then say "create-database $1 at $SQL_HOST:$SQL_PORT: $out"; exit 1; fi
    sleep 1
    waited=$((waited + 1))
  done
}
for db in temporal temporal_visibility; do
  case $db in temporal) schema=postgresql/v12/temporal ;; *) schema=postgresql/v12/visibility ;; esac
  create_database "$db"
  # The version table (an error when it exists already; update-schema below fails if it really is missing).
  temporal-sql-tool --db "$db" setup-schema -v 0.0 >/dev/null 2>&1 || true
  out=$(temporal-sql-tool --db "$db" update-schema --schema-name "$schema" 2>&1) ||
    { say "update-schema $db failed: $out"; exit 1; }
done
say "schemas current"

STEWARD_DB_PASSWORD=$SQL_PASSWORD
export STEWARD_DB_PASSWORD
unset SQL_PASSWORD
exec temporal-server --root /etc/temporal --config config --env cluster --allow-no-auth start
