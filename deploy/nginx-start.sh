#!/bin/sh
# Start nginx for the scale-out stack (Dockerfile.proxy): render deploy/nginx.conf with the app's body limit
# (HEARTRISK_MAX_REQUEST_BYTES, the app's own setting, so both refuse the same bodies), the HTTPS port the host
# publishes (HEARTRISK_HTTPS_PORT: plain HTTP on 8000 is sent there), the certificate and key (compose secrets
# /run/secrets/tls-cert and tls-key; HEARTRISK_TLS_CERT_FILE / _KEY_FILE elsewhere) and the Evidently UI's
# login from the admin's credential (HEARTRISK_ADMIN_USER / HEARTRISK_ADMIN_PASSWORD), then run it in the
# foreground as this unprivileged user.
set -eu
limit=${HEARTRISK_MAX_REQUEST_BYTES:-5242880}
case $limit in
    '' | *[!0-9]*) echo "HEARTRISK_MAX_REQUEST_BYTES must be a number of bytes, not '$limit'" >&2; exit 2 ;;
esac
https_port=${HEARTRISK_HTTPS_PORT:-8443}
case $https_port in
    '' | *[!0-9]*) echo "HEARTRISK_HTTPS_PORT must be a port number, not '$https_port'" >&2; exit 2 ;;
esac
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
sed -e "s/@MAX_REQUEST_BYTES@/$limit/g" -e "s/@HTTPS_PORT@/$https_port/g" -e "s#@TLS_CERT@#$cert#g" \
    -e "s#@TLS_KEY@#$key#g" -e "s#/tmp/nginx/#$dir/#g" "${HEARTRISK_NGINX_CONF:-/etc/heartrisk/nginx.conf}" > "$dir/nginx.conf"
exec nginx -e stderr -c "$dir/nginx.conf"
