#!/usr/bin/env bash
# Starts the dispensary server for a CI stage on a fresh database (demo seed: the admin
# admin@dispensario.local and the customer cliente@dispensario.local), waits until /readyz answers
# and prints the server's PID. Usage: .ci/serve.sh PORT WORKDIR [BINARY]
#   PORT     loopback port to listen on
#   WORKDIR  a fresh directory for the SQLite database, uploads and the server log (server.log)
#   BINARY   the server binary (default target/debug/dispensary, built by `cargo test`)
# Extra environment (e.g. GRAPHQL_INTROSPECTION, AUTH_RATE_LIMIT_PER_MINUTE) passes through. No balancer
# is in front, so a stop does not wait for one to notice (SHUTDOWN_DELAY_SECONDS=0 unless set).
set -euo pipefail
port="$1"
work="$2"
bin="${3:-target/debug/dispensary}"
mkdir -p "$work"
DATABASE_URL="${SERVE_DATABASE_URL:-sqlite://$work/dispensary.db?mode=rwc}" \
  APP_ADDR="127.0.0.1:$port" \
  APP_ENV="${APP_ENV:-development}" \
  UPLOAD_DIR="$work/uploads" \
  LOG_FORMAT=json \
  SHUTDOWN_DELAY_SECONDS="${SHUTDOWN_DELAY_SECONDS:-0}" \
  RUST_LOG="${RUST_LOG:-warn}" \
  "$bin" serve >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 120); do
  if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then
    echo "$pid"
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "server exited during start-up; its log:" >&2
    cat "$work/server.log" >&2
    exit 1
  fi
  sleep 0.5
done
echo "server did not become ready on port $port; its log:" >&2
cat "$work/server.log" >&2
kill "$pid" 2>/dev/null || true
exit 1
