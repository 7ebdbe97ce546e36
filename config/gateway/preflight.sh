#!/bin/sh
# Compose entrypoint of the gateway (see docker-compose.yaml): checks that the services of the
# profile the gateway was configured for are running, then execs the gateway.
#
# Why: compose picks the gateway's listeners and Prometheus' configuration from COMPOSE_PROFILES
# (its `--profile` flag is not visible to the compose file). Started as `docker compose --profile
# no-vm up` without COMPOSE_PROFILES=no-vm, the gateway would get the `full` listeners and route to
# a VictoriaMetrics that does not exist. It stops here instead, with a message saying what to do.
#
# It waits up to GATEWAY_PREFLIGHT_WAIT seconds (default 15) for each name to resolve: under
# `docker compose up` depends_on has already started them, but when the Docker daemon restarts
# containers after a reboot it does so in no particular order. A failed check exits 78 and the
# restart policy tries again, so a slow service heals by itself and a wrong profile keeps saying so.
set -eu

profile="${GATEWAY_PROFILE:-full}"
expected="${GATEWAY_PROFILE_SERVICES:-}"
wait_seconds="${GATEWAY_PREFLIGHT_WAIT:-15}"

unresolved() {
  missing=""
  for service in $expected; do
    # The trailing dot makes the name absolute: no resolv.conf search domain can answer for it.
    getent hosts "$service." >/dev/null 2>&1 || missing="$missing $service"
  done
  echo "${missing# }"
}

missing="$(unresolved)"
waited=0
while [ -n "$missing" ] && [ "$waited" -lt "$wait_seconds" ]; do
  sleep 1
  waited=$((waited + 1))
  missing="$(unresolved)"
done

if [ -n "$missing" ]; then
  echo "edge-gateway preflight: configured for profile '$profile' (COMPOSE_PROFILES), which runs: $expected;" >&2
  echo "edge-gateway preflight: not running after ${wait_seconds}s: $missing." >&2
  echo "edge-gateway preflight: start with one profile named the same way in both places, e.g." >&2
  echo "edge-gateway preflight:   COMPOSE_PROFILES=no-vm docker compose up -d   (or COMPOSE_PROFILES=no-vm in .env)" >&2
  exit 78
fi

exec "$@"
