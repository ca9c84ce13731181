#!/usr/bin/env bash
# Three replicas of the server behind HAProxy (round robin, health checks on /readyz), on one
# PostgreSQL database, one Redis and one S3-compatible bucket; then `drill.py` checks the store's
# promises through the balancer only, runs the fault drills and prints what it measured. Exit
# status: the drill's.
#
# Usage: scripts/replicas/run.sh [BINARY]     (default target/debug/dispensary, built by `cargo test`)
# Needs: haproxy (Debian package), psql and PostgreSQL (pg_ctlcluster for the restart drill),
# Redis, an S3 server (moto: .ci/run starts one), python3. Environment, all optional:
#   REPLICAS_PG      postgres://postgres@127.0.0.1:5432   (a database of the run's own is created and dropped)
#   REPLICAS_REDIS   redis://127.0.0.1:6379               (keys under a prefix of the run's own)
#   TEST_S3_ENDPOINT http://127.0.0.1:19100               (a bucket of the run's own is created)
#   REPLICAS_PORT    18200                                (the balancer; the replicas take the next three)
#   DRILL_ARGS       passed to drill.py (e.g. --load-seconds 20 for a longer load than CI's)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="${1:-target/debug/dispensary}"
pg="${REPLICAS_PG:-postgres://postgres@127.0.0.1:5432}"
redis="${REPLICAS_REDIS:-redis://127.0.0.1:6379}"
s3="${TEST_S3_ENDPOINT:-http://127.0.0.1:19100}"
lb_port="${REPLICAS_PORT:-18200}"
command -v haproxy >/dev/null || { echo "haproxy is not installed (apt-get install haproxy)"; exit 1; }
[ -x "$bin" ] || { echo "no server binary at $bin (cargo build)"; exit 1; }

run_id="$(date +%s)_$$"
db="dispensary_replicas_$run_id"
bucket="replicas-${run_id//_/-}"
work="$(mktemp -d "${TMPDIR:-/tmp}/dispensary-replicas.XXXXXX")"
pids=()
haproxy_pid=""
cleanup() {
  # The drill restarts a replica it killed: the pid files name the live ones.
  for f in "$work"/r*/pid; do [ -f "$f" ] && pids+=("$(cat "$f")"); done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "$haproxy_pid" ]; then kill "$haproxy_pid" 2>/dev/null || true; fi
  for p in "${pids[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  done
  psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

psql "$pg/postgres" -qc "CREATE DATABASE \"$db\""
curl -fsS -X PUT "$s3/$bucket" >/dev/null

# HAProxy: the replicas' balancer, and a pass-through to Redis and to the S3 server, so that the
# drills can take either away from the replicas (`set server … state maint`) without touching the
# machine's Redis or losing moto's in-memory bucket. Its stats socket is how the drill does it.
printf 'HTTP/1.0 503 Service Unavailable\r\nCache-Control: no-cache\r\nConnection: close\r\nContent-Type: application/json\r\nRetry-After: 2\r\n\r\n{"error":{"code":"service_unavailable","message":"No replica is ready; try again shortly","details":[]}}\n' >"$work/503.http"
cat >"$work/haproxy.cfg" <<CFG
global
  maxconn 4096
  stats socket $work/haproxy.sock mode 600 level admin
defaults
  mode http
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  # A replica that refuses the connection (killed) is skipped for the next one; a request it
  # dropped mid-way is not replayed (the client retries with its Idempotency-Key).
  retries 2
  option redispatch 1
  errorfile 503 $work/503.http
frontend shop
  bind 127.0.0.1:$lb_port
  default_backend replicas
backend replicas
  balance roundrobin
  option httpchk GET /readyz
  http-check expect status 200
  default-server inter 500ms fall 2 rise 2
  option forwardfor
  http-response set-header X-Served-By %s
  server r1 127.0.0.1:$((lb_port + 1)) check
  server r2 127.0.0.1:$((lb_port + 2)) check
  server r3 127.0.0.1:$((lb_port + 3)) check
frontend s3
  bind 127.0.0.1:$((lb_port + 10))
  default_backend s3
backend s3
  server moto ${s3#http://}
listen redis
  mode tcp
  bind 127.0.0.1:$((lb_port + 11))
  timeout client 1h
  timeout server 1h
  server redis ${redis#redis://}
CFG
haproxy -f "$work/haproxy.cfg" -db >"$work/haproxy.log" 2>&1 &
haproxy_pid=$!

# What every replica shares; each has its own port, scratch directory and log.
export DATABASE_URL="$pg/$db" DATABASE_MAX_CONNECTIONS=10 APP_ENV=test LOG_FORMAT=json RUST_LOG=warn
export JWT_SECRET="replicas-drill-secret-0123456789abcdef"
export REDIS_URL="redis://127.0.0.1:$((lb_port + 11))" REDIS_KEY_PREFIX="replicas:$run_id:"
export STORAGE_URL="s3://$bucket/shop" S3_ENDPOINT="http://127.0.0.1:$((lb_port + 10))" AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=drill-key AWS_SECRET_ACCESS_KEY=drill-secret-not-a-real-one
export TRUSTED_PROXIES=127.0.0.1 AUTH_RATE_LIMIT_PER_MINUTE=60
export SWEEP_INTERVAL_SECONDS=2 JOB_POLL_MILLISECONDS=200 RESERVATION_TTL_SECONDS=20
export SHUTDOWN_DELAY_SECONDS=0

# Migrations and the demo seed (admin, customer, catalogue) once, before any replica starts.
UPLOAD_DIR="$work/seed" MAIL_DIR="$work/seed/mail" "$bin" seed >"$work/seed.log" 2>&1 ||
  { cat "$work/seed.log"; exit 1; }

start_replica() { # index
  local i=$1 port=$((lb_port + $1))
  mkdir -p "$work/r$i"
  APP_ADDR="127.0.0.1:$port" UPLOAD_DIR="$work/r$i/uploads" MAIL_DIR="$work/r$i/mail" \
    "$bin" serve >>"$work/r$i/server.log" 2>&1 &
  pids[$i]=$!
  echo "${pids[$i]}" >"$work/r$i/pid"
  for _ in $(seq 1 120); do
    curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
    kill -0 "${pids[$i]}" 2>/dev/null || { cat "$work/r$i/server.log"; return 1; }
    sleep 0.25
  done
  echo "replica $i did not become ready"; cat "$work/r$i/server.log"; return 1
}
for i in 1 2 3; do start_replica "$i"; done
for _ in $(seq 1 40); do
  curl -fsS "http://127.0.0.1:$lb_port/readyz" >/dev/null 2>&1 && break
  sleep 0.25
done

echo "== three replicas (pids ${pids[*]}) behind HAProxy on 127.0.0.1:$lb_port; database $db, bucket $bucket, logs in $work"
status=0
python3 scripts/replicas/drill.py \
  --balancer "http://127.0.0.1:$lb_port" \
  --database "$pg/$db" \
  --s3 "$s3" --bucket "$bucket" \
  --haproxy-socket "$work/haproxy.sock" \
  --binary "$bin" --workdir "$work" --port-base "$lb_port" \
  ${DRILL_ARGS:-} || status=$?
if [ "$status" -ne 0 ]; then
  for i in 1 2 3; do echo "-- replica $i log (last lines)"; tail -n 20 "$work/r$i/server.log" || true; done
fi
exit "$status"
