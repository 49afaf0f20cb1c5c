#!/bin/sh
# Start nginx for the scale-out stack (Dockerfile.proxy): render deploy/nginx.conf with the app's body limit
# (HEARTRISK_MAX_REQUEST_BYTES, the app's own setting, so both refuse the same bodies), then run it in the
# foreground as this unprivileged user.
set -eu
limit=${HEARTRISK_MAX_REQUEST_BYTES:-5242880}
case $limit in
    '' | *[!0-9]*) echo "HEARTRISK_MAX_REQUEST_BYTES must be a number of bytes, not '$limit'" >&2; exit 2 ;;
esac
mkdir -p /tmp/nginx
sed "s/@MAX_REQUEST_BYTES@/$limit/g" "${HEARTRISK_NGINX_CONF:-/etc/heartrisk/nginx.conf}" > /tmp/nginx/nginx.conf
exec nginx -e stderr -c /tmp/nginx/nginx.conf
