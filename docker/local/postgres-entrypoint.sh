#!/bin/sh
# What the official postgres image's entrypoint does, in short: on an empty data directory,
# initdb with POSTGRES_USER / POSTGRES_PASSWORD and create POSTGRES_DB; listen on every address
# of the container with password authentication; run `postgres ARGS...` as the postgres user.
set -eu
if [ "${1:-}" = postgres ]; then
    shift
    user=${POSTGRES_USER:-postgres}
    db=${POSTGRES_DB:-$user}
    if [ "$(id -u)" = 0 ]; then
        mkdir -p "$PGDATA" /var/run/postgresql
        chown -R postgres:postgres "$PGDATA" /var/run/postgresql
        chmod 700 "$PGDATA"
        exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" postgres "$@"
    fi
    if [ ! -s "$PGDATA/PG_VERSION" ]; then
        [ -n "${POSTGRES_PASSWORD:-}" ] || { echo "POSTGRES_PASSWORD is not set" >&2; exit 1; }
        pwfile=$(mktemp)
        printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
        initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
            --encoding=UTF8 --locale=C.UTF-8 >/dev/null
        rm -f "$pwfile"
        echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
        if [ "$db" != postgres ]; then
            pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
            psql -v ON_ERROR_STOP=1 -h /var/run/postgresql -U "$user" -d postgres -qc "CREATE DATABASE \"$db\""
            pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
        fi
    fi
    exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
fi
exec "$@"
