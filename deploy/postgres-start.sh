#!/bin/sh
# Start PostgreSQL for the scale-out stack (Dockerfile.postgres), as the postgres user.
#
# Before it listens on the network, on every start: a cluster on the first start (the superuser has no
# password and logs in only through the local socket: `docker compose exec postgres psql`), then for each
# name in HEARTRISK_DATABASES a role and a database of that name, the role owning it and the only one
# allowed in, with the password from HEARTRISK_<NAME>_DB_PASSWORD. The password is set on every start, so
# changing it in .env.scale and restarting rotates it (docs/operations.md).
#
# Durability: the cluster is made with data checksums (a page the disk damaged is an error on read, not
# wrong rows), and the server runs with PostgreSQL's defaults for fsync, synchronous_commit and
# full_page_writes (all on: nothing here turns them off), so a commit it acknowledged survives a power cut.
# A volume made before checksums were on keeps running without them: `pg_checksums --enable` on the
# stopped cluster turns them on (docs/operations.md).
set -eu
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
data=${PGDATA:-/var/lib/postgresql/data}
if [ ! -s "$data/PG_VERSION" ]; then
    "$bin/initdb" -D "$data" -U postgres -E UTF8 --no-locale --data-checksums --auth-local=peer \
        --auth-host=scram-sha-256 >/dev/null
    echo "host all all all scram-sha-256" >> "$data/pg_hba.conf"
fi
"$bin/pg_ctl" -D "$data" -w -l /tmp/postgres-setup.log -o "-c listen_addresses=''" start >/dev/null
for name in ${HEARTRISK_DATABASES:?name the databases, e.g. HEARTRISK_DATABASES=\"mlflow prefect\"}; do
    variable="HEARTRISK_$(echo "$name" | tr '[:lower:]' '[:upper:]')_DB_PASSWORD"
    password=$(printenv "$variable" || true)
    # The services put the password in a URL as it is: 12 or more characters, none that a URL would escape.
    if ! printf '%s' "$password" | grep -Eq '^[A-Za-z0-9_~.-]{12,}$'; then
        echo "$variable: 12 or more letters, digits or _ ~ . - (make scale-up writes one)" >&2
        "$bin/pg_ctl" -D "$data" -w -m fast stop >/dev/null
        exit 2
    fi
    "$bin/psql" -X -q -v ON_ERROR_STOP=1 -U postgres -d postgres <<SQL
\set name $name
\set password $password
SELECT format('CREATE ROLE %I LOGIN', :'name') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'name') \gexec
ALTER ROLE :"name" WITH LOGIN PASSWORD :'password';
SELECT format('CREATE DATABASE %I OWNER %I', :'name', :'name')
    WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'name') \gexec
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
SQL
done
# The metrics exporter's role, when its password is given: it may read the server's statistics (pg_monitor)
# and nothing else; it owns no database and is granted none.
if [ -n "${HEARTRISK_METRICS_DB_PASSWORD:-}" ]; then
    "$bin/psql" -X -q -v ON_ERROR_STOP=1 -U postgres -d postgres <<SQL
\set password $HEARTRISK_METRICS_DB_PASSWORD
SELECT 'CREATE ROLE metrics LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'metrics') \gexec
ALTER ROLE metrics WITH LOGIN PASSWORD :'password';
GRANT pg_monitor TO metrics;
SQL
fi
"$bin/pg_ctl" -D "$data" -w -m fast stop >/dev/null
exec "$bin/postgres" -D "$data" -c listen_addresses='*' -c max_connections="${HEARTRISK_POSTGRES_MAX_CONNECTIONS:-200}"
