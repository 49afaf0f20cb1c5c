#!/bin/sh
# Write pgBackRest's configuration for the scale-out stack (docs/operations.md, Backups), on every start of a
# container that runs pgBackRest: PostgreSQL (its archive_command pushes each WAL segment; a restore) and the
# backup service (base backups). The repository is the S3 store's bucket HEARTRISK_BACKUP_BUCKET over HTTPS,
# the store's certificate checked against the stack's CA, with the backups' own S3 identity, whose key and
# secret come from compose secrets (files under /run/secrets, never an environment value). The file is the
# container's own (its /tmp, a tmpfs: the root file system is read-only), mode 0600; pgBackRest finds it
# through PGBACKREST_CONFIG, which the images set.
set -eu
config=${PGBACKREST_CONFIG:-/tmp/pgbackrest/pgbackrest.conf}
endpoint=${HEARTRISK_BACKUP_S3_ENDPOINT:?the S3 store of the backups, e.g. https://s3:8333}
key_file=${HEARTRISK_BACKUP_S3_KEY_FILE:-/run/secrets/backup-s3-key}
secret_file=${HEARTRISK_BACKUP_S3_SECRET_FILE:-/run/secrets/backup-s3-secret}
for file in "$key_file" "$secret_file"; do
    [ -r "$file" ] || { echo "no backup S3 credential at $file (make scale-up writes it: tools/scale_env.py)" >&2; exit 2; }
done
case "$endpoint" in
    https://*) ;;
    *) echo "HEARTRISK_BACKUP_S3_ENDPOINT must be https:// (pgBackRest speaks TLS only): $endpoint" >&2; exit 2 ;;
esac
host_port=${endpoint#https://}
host_port=${host_port%%/*}
host=${host_port%%:*}
port=443
[ "$host" = "$host_port" ] || port=${host_port##*:}
home=$(dirname "$config")
mkdir -p "$home"
chmod 0700 "$home"
umask 077
cat > "$config.part" <<CONF
[global]
repo1-type=s3
repo1-path=/pgbackrest
repo1-s3-bucket=${HEARTRISK_BACKUP_BUCKET:-heartrisk-backups}
repo1-s3-endpoint=$host
repo1-storage-port=$port
repo1-s3-region=${HEARTRISK_BACKUP_S3_REGION:-us-east-1}
repo1-s3-uri-style=path
repo1-storage-ca-file=${HEARTRISK_BACKUP_S3_CA_FILE:-/run/secrets/tls-ca}
repo1-s3-key=$(cat "$key_file")
repo1-s3-key-secret=$(cat "$secret_file")
repo1-retention-full=${HEARTRISK_BACKUP_RETENTION_FULL:-4}
start-fast=y
lock-path=$home/lock
spool-path=$home/spool
log-path=$home/log
log-level-file=off
log-level-console=warn
log-level-stderr=off

[heartrisk]
pg1-path=${PGDATA:-/var/lib/postgresql/data}
pg1-socket-path=/var/run/postgresql
pg1-user=postgres
CONF
mv "$config.part" "$config"
