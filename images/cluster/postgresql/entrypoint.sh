#!/bin/sh
# Creates the cluster on first start (superuser `temporal`, password from the compose secret), then runs PostgreSQL.
# Reachable on the compose network only (no published port); password authentication for every TCP client.
set -eu
readonly PGDATA=/var/lib/postgresql/data
readonly BIN=/usr/lib/postgresql/15/bin
readonly PASSWORD_FILE=/run/secrets/db-password

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  [ -r "$PASSWORD_FILE" ] || { echo "steward-postgresql: $PASSWORD_FILE is missing or unreadable" >&2; exit 1; }
  "$BIN/initdb" --pgdata="$PGDATA" --username=temporal --pwfile="$PASSWORD_FILE" \
    --auth-local=peer --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  # Local socket: the container's own postgres user (peer); TCP: any compose peer, by password only.
  printf '%s\n' 'host all all 0.0.0.0/0 scram-sha-256' 'host all all ::/0 scram-sha-256' >> "$PGDATA/pg_hba.conf"
fi
exec "$BIN/postgres" -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp
