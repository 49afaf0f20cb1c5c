#!/bin/sh
# Start nginx for the scale-out stack (Dockerfile.proxy): render deploy/nginx.conf with the app's body limit
# (HEARTRISK_MAX_REQUEST_BYTES, the app's own setting, so both refuse the same bodies), the throttle
# (HEARTRISK_RATE_LIMIT requests a second per client address, HEARTRISK_RATE_BURST over it at once; for large
# bodies HEARTRISK_BATCH_RATE_LIMIT a minute, HEARTRISK_BATCH_BURST over it), whether answers name their
# replica (HEARTRISK_PROXY_SERVED_BY, off by default), the HTTPS port the host publishes (HEARTRISK_HTTPS_PORT:
# plain HTTP on 8000 is sent there), the certificate and key (compose secrets /run/secrets/tls-cert and tls-key;
# HEARTRISK_TLS_CERT_FILE / _KEY_FILE elsewhere) and the admin's login for the UIs nginx guards
# (HEARTRISK_ADMIN_USER / HEARTRISK_ADMIN_PASSWORD), then run it in the foreground as this unprivileged user.
# HEARTRISK_PROXY_APP_UPSTREAM (host:port, default app:8000) is where the app is: a test points it at an app
# on loopback.
set -eu
number() {  # a whole number, or stop naming the variable
    case $2 in
        '' | *[!0-9]*) echo "$1 must be a number$3, not '$2'" >&2; exit 2 ;;
    esac
}
limit=${HEARTRISK_MAX_REQUEST_BYTES:-5242880}
number HEARTRISK_MAX_REQUEST_BYTES "$limit" " of bytes"
rate=${HEARTRISK_RATE_LIMIT:-10}  # docs/security.md says why these defaults
number HEARTRISK_RATE_LIMIT "$rate" " of requests a second"
[ "$rate" -gt 0 ] || { echo "HEARTRISK_RATE_LIMIT must be 1 or more requests a second" >&2; exit 2; }
burst=${HEARTRISK_RATE_BURST:-20}
number HEARTRISK_RATE_BURST "$burst" " of requests"
batch_rate=${HEARTRISK_BATCH_RATE_LIMIT:-6}
number HEARTRISK_BATCH_RATE_LIMIT "$batch_rate" " of requests a minute"
[ "$batch_rate" -gt 0 ] || { echo "HEARTRISK_BATCH_RATE_LIMIT must be 1 or more requests a minute" >&2; exit 2; }
batch_burst=${HEARTRISK_BATCH_BURST:-3}
number HEARTRISK_BATCH_BURST "$batch_burst" " of requests"
batch_wait=$(( (60 + batch_rate - 1) / batch_rate ))  # seconds until the next large request is let through
case ${HEARTRISK_PROXY_SERVED_BY:-off} in
    on | true | yes | 1) served_by=on ;;
    off | false | no | 0) served_by=off ;;
    *) echo "HEARTRISK_PROXY_SERVED_BY must be on or off, not '$HEARTRISK_PROXY_SERVED_BY'" >&2; exit 2 ;;
esac
upstream=${HEARTRISK_PROXY_APP_UPSTREAM:-app:8000}
case $upstream in
    *[!A-Za-z0-9.:-]* | :* | *: | *:*:* | *:*[!0-9]*) upstream= ;;
    *:*) ;;
    *) upstream= ;;
esac
[ -n "$upstream" ] || { echo "HEARTRISK_PROXY_APP_UPSTREAM must be host:port, not '$HEARTRISK_PROXY_APP_UPSTREAM'" >&2; exit 2; }
https_port=${HEARTRISK_HTTPS_PORT:-8443}
number HEARTRISK_HTTPS_PORT "$https_port" " (a port)"
cert=${HEARTRISK_TLS_CERT_FILE:-/run/secrets/tls-cert}
key=${HEARTRISK_TLS_KEY_FILE:-/run/secrets/tls-key}
for file in "$cert" "$key"; do
    [ -r "$file" ] || { echo "no TLS certificate or key at $file (make scale-up makes them: heartrisk tls-certs)" >&2; exit 2; }
done
: "${HEARTRISK_ADMIN_USER:?the Evidently UI behind nginx asks for the admin: set HEARTRISK_ADMIN_USER}"
: "${HEARTRISK_ADMIN_PASSWORD:?the Evidently UI behind nginx asks for the admin: set HEARTRISK_ADMIN_PASSWORD}"
dir=${HEARTRISK_NGINX_DIR:-/tmp/nginx}  # nginx's pid, temporary files, login and rendered config
mkdir -p "$dir"
umask 077
# The login as nginx reads it: user:SHA-512 crypt with a random salt (openssl reads the password on stdin).
hash=$(printf '%s\n' "$HEARTRISK_ADMIN_PASSWORD" | openssl passwd -6 -stdin)
printf '%s:%s\n' "$HEARTRISK_ADMIN_USER" "$hash" > "$dir/htpasswd"
sed -e "s/@MAX_REQUEST_BYTES@/$limit/g" -e "s/@RATE_LIMIT@/$rate/g" -e "s/@RATE_BURST@/$burst/g" \
    -e "s/@BATCH_RATE_LIMIT@/$batch_rate/g" -e "s/@BATCH_BURST@/$batch_burst/g" -e "s/@BATCH_RETRY_AFTER@/$batch_wait/g" \
    -e "s/@SERVED_BY@/$served_by/g" -e "s/@APP_UPSTREAM@/$upstream/g" -e "s/@HTTPS_PORT@/$https_port/g" \
    -e "s#@TLS_CERT@#$cert#g" -e "s#@TLS_KEY@#$key#g" -e "s#/tmp/nginx/#$dir/#g" \
    "${HEARTRISK_NGINX_CONF:-/etc/heartrisk/nginx.conf}" > "$dir/nginx.conf"
exec nginx -e stderr -c "$dir/nginx.conf"
