#!/bin/sh
# Restore PostgreSQL's data folder from the backups' repository: `make scale-restore` (tools/scale_restore.py) runs
# this in a one-off container of the postgres image on a fresh volume, with the store up, then starts the stack;
# PostgreSQL replays the archived WAL at its start (to the end of the archive, or to --target with --type=time)
# and promotes. The arguments go to `pgbackrest restore` (e.g. --set=LABEL --type=time --target=TIME). A folder
# that holds a cluster is refused: a restore never overwrites one.
set -eu
data=${PGDATA:-/var/lib/postgresql/data}
if [ -s "$data/PG_VERSION" ]; then
    echo "$data holds a cluster: restore into a fresh volume (make scale-restore removes the old one)" >&2
    exit 2
fi
heartrisk-pgbackrest-conf
exec pgbackrest --stanza=heartrisk --log-level-console=info restore "$@"
