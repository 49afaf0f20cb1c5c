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
#
# TLS only over the network (docs/security.md): the server presents the certificate and key that compose mounts
# as secrets (/run/secrets/tls-cert, /run/secrets/tls-key; HEARTRISK_TLS_CERT_FILE / _KEY_FILE elsewhere), and
# its client rules, written on every start whatever an older volume holds, refuse any TCP connection without
# TLS (`hostnossl ... reject`). PostgreSQL wants its key private to it (0600, its own user); the mounted file
# has the host's owner and mode, so the key is copied into this container's /tmp with them.
#
# Backups (docs/operations.md), when HEARTRISK_BACKUP_S3_ENDPOINT names the backups' S3 store: every WAL segment is
# pushed to pgBackRest's repository as it fills, or after archive_timeout seconds of a segment with writes (the
# most a lost volume can take), and the backup service takes base backups. That service reads the data folder
# as a member of the postgres group (the cluster allows group access: 0750) and connects through the shared
# socket folder as its own user, heartrisk, whom the ident map lets in as postgres and only there (peer: the
# socket's peer is that user of this machine's kernel, no password exists).
set -eu
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
data=${PGDATA:-/var/lib/postgresql/data}
cert=${HEARTRISK_TLS_CERT_FILE:-/run/secrets/tls-cert}
key=${HEARTRISK_TLS_KEY_FILE:-/run/secrets/tls-key}
for file in "$cert" "$key"; do
    [ -r "$file" ] || { echo "no TLS certificate or key at $file (make scale-up makes them: heartrisk tls-certs)" >&2; exit 2; }
done
run=$(mktemp -d "${TMPDIR:-/tmp}/postgres-run.XXXXXX")
(umask 077 && cat "$key" > "$run/server-key.pem")
cat > "$run/pg_hba.conf" <<HBA
local all postgres peer map=local
local all all peer
hostssl all all all scram-sha-256
hostnossl all all all reject
HBA
cat > "$run/pg_ident.conf" <<IDENT
local postgres postgres
local heartrisk postgres
IDENT
if [ ! -s "$data/PG_VERSION" ]; then
    "$bin/initdb" -D "$data" -U postgres -E UTF8 --no-locale --data-checksums --allow-group-access \
        --auth-local=peer --auth-host=scram-sha-256 >/dev/null
fi
chmod -R g+rX,g-w,o-rwx "$data"  # group access also for a volume made before it (the server keeps it after)
archive=""
if [ -n "${HEARTRISK_BACKUP_S3_ENDPOINT:-}" ]; then
    heartrisk-pgbackrest-conf
    archive="-c archive_mode=on -c archive_timeout=${HEARTRISK_ARCHIVE_TIMEOUT:-60}"
fi
push="archive_command=pgbackrest --stanza=heartrisk archive-push %p"  # pgBackRest's own, as its guide sets it
# The same max_connections for the set-up server as for the real one: a restored volume's recovery refuses a lower
# value than the backed-up server had.
files="-c hba_file=$run/pg_hba.conf -c ident_file=$run/pg_ident.conf -c max_connections=${HEARTRISK_POSTGRES_MAX_CONNECTIONS:-200}"
"$bin/pg_ctl" -D "$data" -w -t 600 -l "$run/setup.log" \
    -o "-c listen_addresses='' $files $archive ${archive:+-c '$push'}" start >/dev/null
# A restored volume replays the archive first (docs/operations.md, Restore): the roles wait for its end.
while :; do
    state=$("$bin/psql" -X -A -t -q -U postgres -d postgres -c 'SELECT pg_is_in_recovery()' 2>/dev/null || echo down)
    case "$state" in
        f) break ;;
        t) sleep 1 ;;
        *) echo "PostgreSQL stopped while it recovered:" >&2; tail -n 20 "$run/setup.log" >&2; exit 1 ;;
    esac
done
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
[ -z "$archive" ] || set -- $archive -c "$push"  # word splitting of $archive on purpose: its -c options
# shellcheck disable=SC2086  # $files: its -c options, split on purpose
exec "$bin/postgres" -D "$data" -c listen_addresses='*' $files -c ssl=on -c ssl_cert_file="$cert" -c ssl_key_file="$run/server-key.pem" \
    -c ssl_min_protocol_version=TLSv1.2 "$@"
