#!/usr/bin/env bash
# Load benchmark of the catalogue reads (issue 13): builds the release server, creates or reuses a catalogue of
# 1,000 products x 3 variants, starts the server as in production, drives it with wrk (its own process) and prints
# one table. See README "Benchmark" for the variables.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/target/load-bench
RUN=$OUT/run
BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_WARMUP=${BENCH_WARMUP:-3}
BENCH_RUNS=${BENCH_RUNS:-2}
BENCH_CONNECTIONS=${BENCH_CONNECTIONS:-32}
BENCH_THREADS=${BENCH_THREADS:-2}
BENCH_PORT=${BENCH_PORT:-18090}
BENCH_MAX_ERRORS=${BENCH_MAX_ERRORS:-10}
BENCH_SCENARIOS=${BENCH_SCENARIOS:-}
BENCH_CACHE=${BENCH_CACHE:-auto}
BENCH_RUST_LOG=${BENCH_RUST_LOG:-info}
export BENCH_PRODUCTS=${BENCH_PRODUCTS:-1000}
DB_URL=${BENCH_DATABASE_URL:-sqlite://$OUT/dispensary.db?mode=rwc}
BIN=$ROOT/target/release/dispensary
BASE=http://127.0.0.1:$BENCH_PORT
helper() { python3 "$ROOT/benches/load/helper.py" "$@"; }
log() { printf '== %s\n' "$*" >&2; }
die() { printf 'load.sh: %s\n' "$*" >&2; exit 1; }

SERVER_PID=
stop_server() {
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=
}
trap stop_server EXIT
trap 'exit 130' INT TERM

mkdir -p "$OUT"
rm -rf "$RUN"
mkdir -p "$RUN"

# 1. The load generator, a process of its own.
if ! command -v wrk >/dev/null; then
  log "installing wrk (Debian package)"
  SUDO=; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get install -y wrk >/dev/null 2>&1 || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y wrk >/dev/null; } \
    || die "wrk is missing and could not be installed (apt-get install wrk)"
  command -v wrk >/dev/null || die "wrk is missing"
fi

# 2. The release server.
if [[ ${BENCH_BUILD:-1} != 0 ]]; then
  log "cargo build --release (a cold build takes minutes)"
  cargo build --release --bin dispensary >&2
fi
[[ -x $BIN ]] || die "$BIN is missing (cargo build --release)"

# 3. The database: PostgreSQL databases are created when missing.
case $DB_URL in
  postgres://* | postgresql://*)
    DB_KIND=PostgreSQL
    db_name=${DB_URL##*/}; db_name=${db_name%%\?*}
    admin_url="${DB_URL%/*}/postgres"
    [[ $db_name =~ ^[A-Za-z0-9_]+$ ]] || die "unexpected database name in BENCH_DATABASE_URL: $db_name"
    if [[ -z $(psql "$admin_url" -tAc "SELECT 1 FROM pg_database WHERE datname = '$db_name'") ]]; then
      log "creating database $db_name"
      psql "$admin_url" -qc "CREATE DATABASE $db_name" || die "cannot create database $db_name"
    fi
    DB_KIND="PostgreSQL $(psql "$DB_URL" -tAc 'SHOW server_version' | cut -d' ' -f1)"
    ;;
  sqlite:*) DB_KIND=SQLite ;;
  *) die "BENCH_DATABASE_URL must be sqlite:... or postgres://..." ;;
esac

# 4. The server as in production (except that the seeded admin, who imports the catalogue, has no second factor:
#    ADMIN_REQUIRE_2FA=false): info logs (BENCH_RUST_LOG), JSON, to a file. The background sweeps are spaced out so that
#    db_statements_total counts the requests only.
start_server() { # $1: cache mode (default | off | warm)
  local mode=$1 cache=()
  ! curl -fsS -o /dev/null "$BASE/readyz" 2>/dev/null || die "something already answers on port $BENCH_PORT (BENCH_PORT)"
  case $mode in off) cache=(RESPONSE_CACHE=off) ;; warm) cache=(RESPONSE_CACHE=on) ;; esac
  env APP_ENV=production APP_ADDR="127.0.0.1:$BENCH_PORT" DATABASE_URL="$DB_URL" \
    JWT_SECRET=load-bench-secret-0123456789abcdef0123456789 SEED_ADMIN_PASSWORD=Load-Bench-Unused-9 \
    DATA_ENCRYPTION_KEY=bG9hZC1iZW5jaC1kYXRhLWtleS0zMi1ieXRlcy0hISE= ADMIN_REQUIRE_2FA=false \
    RUST_LOG="$BENCH_RUST_LOG" LOG_FORMAT=json UPLOAD_DIR="$OUT/uploads" \
    SWEEP_INTERVAL_SECONDS=3600 RECONCILE_INTERVAL_SECONDS=3600 SHUTDOWN_DELAY_SECONDS=0 "${cache[@]}" \
    "$BIN" serve >"$RUN/server-$mode.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 300); do
    if curl -fsS -o /dev/null "$BASE/readyz" 2>/dev/null; then return 0; fi
    kill -0 "$SERVER_PID" 2>/dev/null || die "the server exited; see $RUN/server-$mode.log: $(tail -c 1000 "$RUN/server-$mode.log")"
    sleep 0.2
  done
  die "the server is not ready after 60 s; see $RUN/server-$mode.log"
}
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status"; }

# Cache modes: the response cache is measured off and warm once the server has one (issue 13, a later slice).
if [[ $BENCH_CACHE == auto ]]; then
  start_server default
  if helper cache-supported "$BASE"; then MODES=(off warm); else
    MODES=(default)
    echo "Not measured: cache-on (warm) rows — this server has no response cache (/metrics has no response_cache_hits_total; issue 13, a later slice); every row above is uncached." >>"$RUN/notes.txt"
  fi
  stop_server
else
  read -r -a MODES <<<"$BENCH_CACHE"
fi

# 5. The catalogue: reused when present, else seeded admin + one CSV import.
start_server "${MODES[0]}"
have=$(helper count "$BASE")
if ((have < BENCH_PRODUCTS)); then
  log "catalogue: $have of $BENCH_PRODUCTS benchmark products; seeding the admin and importing the rest"
  env -u SEED_ADMIN_PASSWORD -u SEED_ADMIN_EMAIL APP_ENV=development DATABASE_URL="$DB_URL" RUST_LOG=warn \
    UPLOAD_DIR="$OUT/uploads" "$BIN" seed >"$RUN/seed.log" 2>&1 || die "dispensary seed failed: $(tail -c 1000 "$RUN/seed.log")"
  helper import "$BASE" >&2
  have=$(helper count "$BASE")
  ((have >= BENCH_PRODUCTS)) || die "after the import only $have benchmark products are visible"
else
  log "catalogue: reusing $have benchmark products"
fi
# Planner statistics, as autovacuum keeps them on a production PostgreSQL (some, like this machine's,
# run with autovacuum off: without statistics the planner misjudges the page queries).
if [[ $DB_KIND == PostgreSQL* ]]; then
  log "VACUUM ANALYZE (autovacuum is $(psql "$DB_URL" -tAc 'SHOW autovacuum') here)"
  psql "$DB_URL" -qc 'VACUUM ANALYZE' || die "VACUUM ANALYZE failed"
fi

# 6. The scenarios, each: warm-up, then BENCH_RUNS timed runs.
RESULTS=$RUN/results.jsonl
FAILED=()
run_wrk() { # $1 seconds, $2 output file; scenario from the BENCH_* request variables
  BENCH_METHOD=$method BENCH_BODY_FILE=$body BENCH_HEADERS=$headers \
    wrk -t"$BENCH_THREADS" -c"$BENCH_CONNECTIONS" -d"${1}s" -s "$ROOT/benches/load/wrk.lua" "$BASE$path" >"$2" 2>&1 \
    || die "wrk failed: $(cat "$2")"
  grep -q '^BENCH_RESULT ' "$2" || die "wrk printed no result: $(cat "$2")"
}
# BENCH_PERF: one more, untimed run of the matching scenarios under `perf record` (software clock: works where
# hardware counters are not exposed, as in most VMs); the flat profile goes to the run directory.
profile() { # $1 mode, $2 scenario id
  command -v perf >/dev/null || die "BENCH_PERF needs perf (Debian: apt-get install linux-perf)"
  local data=$RUN/$1/$2.perf.data report=$RUN/$1/$2-perf.txt
  log "$1: perf record -g during $2"
  perf record -e cpu-clock -F 999 -g -p "$SERVER_PID" -o "$data" -- sleep "$BENCH_SECONDS" >/dev/null 2>&1 &
  local perf_pid=$!
  run_wrk "$BENCH_SECONDS" "$RUN/$1/$2-perf-wrk.txt"
  wait "$perf_pid" || die "perf record failed (perf_event_paranoid? try as root)"
  { echo "# by shared object"
    perf report -i "$data" --stdio --no-children -g none --sort dso 2>/dev/null | grep -v '^#' | sed 's/ *$//' | grep -v '^$'
    echo "# top symbols (self)"
    perf report -i "$data" --stdio --no-children -g none --sort sym --percent-limit 0.3 2>/dev/null | grep -v '^#' \
      | sed 's/ *$//' | grep -v '^$'; } >"$report" || true
  log "profile: $report"
}
for mode in "${MODES[@]}"; do
  [[ -n $SERVER_PID ]] || start_server "$mode"
  if [[ $mode != default ]] && ! helper cache-supported "$BASE"; then
    die "BENCH_CACHE=$BENCH_CACHE: this server has no response cache (no response_cache_hits_total in /metrics)"
  fi
  mkdir -p "$RUN/$mode"
  helper prepare "$BASE" "$RUN/$mode"
  cp "$RUN/$mode/notes.txt" "$RUN/notes-$mode.txt" 2>/dev/null || true
  while IFS=$'\t' read -r -u 3 id label method path body headers; do
    [[ -z $BENCH_SCENARIOS || $id =~ $BENCH_SCENARIOS ]] || continue
    [[ $body == - ]] && body=
    [[ $headers == - ]] && headers=
    headers=${headers//\\n/$'\n'}
    log "$mode: $label"
    run_wrk "$BENCH_WARMUP" "$RUN/$mode/$id-warmup.txt"
    sleep 0.5
    errors=0
    for n in $(seq 1 "$BENCH_RUNS"); do
      c=$(helper counters "$BASE"); read -r stmts0 reqs0 <<<"$c"
      run_wrk "$BENCH_SECONDS" "$RUN/$mode/$id-$n.txt"
      sleep 0.5 # requests still in flight when wrk stopped
      c=$(helper counters "$BASE"); read -r stmts1 reqs1 <<<"$c"
      result=$(sed -n 's/^BENCH_RESULT {//p' "$RUN/$mode/$id-$n.txt")
      printf '{"mode": "%s", "id": "%s", "label": "%s", "conns": %d, "statements": %d, "served": %d, "rss_kb": %d, %s\n' \
        "$mode" "$id" "$label" "$BENCH_CONNECTIONS" $((stmts1 - stmts0)) $((reqs1 - reqs0)) "$(rss_kb)" "$result" >>"$RESULTS"
      errors=$((errors + $(jq '.status_errors + .connect_errors + .read_errors + .write_errors + .timeouts' <<<"{$result")))
    done
    if [[ -n ${BENCH_PERF:-} && $id =~ $BENCH_PERF ]]; then profile "$mode" "$id"; fi
    ((errors <= BENCH_MAX_ERRORS)) || FAILED+=("$mode $id: $errors errors (BENCH_MAX_ERRORS=$BENCH_MAX_ERRORS)")
  done 3<"$RUN/$mode/scenarios.tsv"
  stop_server
done

# 7. One table.
[[ -s $RESULTS ]] || die "no scenario ran (BENCH_SCENARIOS=$BENCH_SCENARIOS)"
cat "$RUN"/notes*.txt 2>/dev/null | sort -u >"$RUN/footer.txt" || true
context="dispensary load benchmark · $DB_KIND · $BENCH_PRODUCTS products × 3 variants · wrk -t$BENCH_THREADS \
-c$BENCH_CONNECTIONS, ${BENCH_SECONDS} s runs after a ${BENCH_WARMUP} s warm-up · $(nproc) cores · \
RUST_LOG=$BENCH_RUST_LOG · $(git rev-parse --short HEAD 2>/dev/null || echo unknown) · $(date -u +%Y-%m-%dT%H:%MZ)"
helper table "$RESULTS" "$RUN/footer.txt" "$context" | tee "$OUT/last-table.md"

if ((${#FAILED[@]})); then
  printf 'load.sh: too many errors: %s\n' "${FAILED[@]}" >&2
  exit 1
fi
