#!/bin/sh
# Start one program of Dockerfile.monitoring: heartrisk-monitoring prometheus|alertmanager|pushgateway|
# postgres-exporter|nginx-exporter (the compose service's command). Settings come from the environment;
# files the programs write go to /state (volumes) or /tmp (memory).
#
# Alertmanager's configuration is rendered here from deploy/alertmanager/alertmanager.yml: its placeholders
# take the mail relay of the drift alerts (HEARTRISK_ALERT_SMTP_SERVER, default the stack's own mail sink,
# mail:1025) and the same sender and recipients (HEARTRISK_EMAIL_FROM, HEARTRISK_EMAIL_TO). A relay with a
# login gets HEARTRISK_ALERT_SMTP_USER and a file holding its password (HEARTRISK_ALERT_SMTP_PASSWORD_FILE).
set -eu
what=${1:?say which: prometheus, alertmanager, pushgateway, postgres-exporter or nginx-exporter}
shift
case "$what" in
prometheus)
    exec prometheus --config.file="${HEARTRISK_PROMETHEUS_CONFIG:-/etc/heartrisk/prometheus/prometheus.yml}" \
        --storage.tsdb.path=/state/prometheus --storage.tsdb.retention.time="${HEARTRISK_PROMETHEUS_RETENTION:-15d}" \
        --web.listen-address=:9090 --web.external-url="${HEARTRISK_PROMETHEUS_URL:-http://127.0.0.1:9090}" "$@"
    ;;
alertmanager)
    mkdir -p /tmp/alertmanager && chmod 0700 /tmp/alertmanager
    escape() { printf '%s' "$1" | sed -e 's/[\\/&|]/\\&/g'; }
    sed -e "s|@SMTP_SERVER@|$(escape "${HEARTRISK_ALERT_SMTP_SERVER:-mail:1025}")|" \
        -e "s|@SMTP_REQUIRE_TLS@|${HEARTRISK_ALERT_SMTP_REQUIRE_TLS:-false}|" \
        -e "s|@SMTP_USER@|$(escape "${HEARTRISK_ALERT_SMTP_USER:-}")|" \
        -e "s|@SMTP_PASSWORD_FILE@|$(escape "${HEARTRISK_ALERT_SMTP_PASSWORD_FILE:-}")|" \
        -e "s|@EMAIL_FROM@|$(escape "${HEARTRISK_EMAIL_FROM:-heartrisk@localhost}")|" \
        -e "s|@EMAIL_TO@|$(escape "${HEARTRISK_EMAIL_TO:-operator@localhost}")|" \
        "${HEARTRISK_ALERTMANAGER_TEMPLATE:-/etc/heartrisk/alertmanager/alertmanager.yml}" > /tmp/alertmanager/alertmanager.yml
    if [ -z "${HEARTRISK_ALERT_SMTP_USER:-}" ]; then  # no login: the two lines would name an empty one
        sed -i -e '/smtp_auth_username/d' -e '/smtp_auth_password_file/d' /tmp/alertmanager/alertmanager.yml
    fi
    exec prometheus-alertmanager --config.file=/tmp/alertmanager/alertmanager.yml --storage.path=/state/alertmanager \
        --cluster.listen-address= --web.listen-address=:9093 \
        --web.external-url="${HEARTRISK_ALERTMANAGER_URL:-http://127.0.0.1:9093}" "$@"
    ;;
pushgateway)
    exec prometheus-pushgateway --web.listen-address=:9091 --persistence.file=/state/pushgateway/metrics \
        --persistence.interval=1m "$@"
    ;;
postgres-exporter)  # DATA_SOURCE_NAME names the server and its monitoring role (pg_monitor only)
    exec prometheus-postgres-exporter --web.listen-address=:9187 "$@"
    ;;
nginx-exporter)
    exec prometheus-nginx-exporter -nginx.scrape-uri="${HEARTRISK_NGINX_STATUS_URL:-http://proxy:8082/stub_status}" \
        -web.listen-address=:9113 "$@"
    ;;
*)
    echo "unknown program: $what" >&2
    exit 2
    ;;
esac
