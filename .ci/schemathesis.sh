#!/usr/bin/env bash
# Contract testing: schemathesis (all phases, all checks) over openapi.yaml against the real
# server, once with the seeded admin's token and once with the seeded customer's, each on a fresh
# database — on SQLite, then on PostgreSQL (the database most stores run: some hostile input, such
# as a NUL byte in text, only fails there). Zero failures is the bar. Run from the repository root
# after `cargo test` built target/debug/dispensary. Tunables: ST_MAX_EXAMPLES (default 150),
# ST_WORKERS (default 2), ST_PORT (default 18080), ST_SEED (default 1; a fixed seed keeps CI
# reproducible), ST_DATABASES (default "sqlite postgres"), ST_PG_URL (the PostgreSQL server, default
# postgres://postgres@127.0.0.1:5432; each run gets its own database, dropped afterwards),
# ST_PG_MAX_EXAMPLES (default 100: the PostgreSQL pass sends the same seeded cases, fewer of them,
# to stay within CI's time budget), ST_LANES (default 2: runs side by side, on ports ST_PORT,
# ST_PORT+1, ...; each run's output is in its log, failures' tails are printed at the end).
# Left out: the routes that end the run's own session, which would leave every later request a
# 401 — POST /api/auth/logout, DELETE /api/me/sessions/{id} (a guessed id is often the run's own
# session) and POST /api/users/{id}/sessions/revoke (the admin run's user 1 is itself); the
# integration tests cover them (tests/api/auth.rs, tests/api/sessions.rs). POST /graphql is in: its
# envelope ({query, operationName, variables, extensions}) is fuzzed like any JSON body; what the
# query itself may say is schema.graphql's contract, covered by the GraphQL tests.
# tests/api/contract.rs pins what the document states; .ci/ci_schemathesis_hooks.py lists the
# server rules JSON Schema cannot state (accepted 400s) and the RUT generator.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

version=4.32.5
venv=target/schemathesis-venv
bin=target/debug/dispensary
max_examples="${ST_MAX_EXAMPLES:-150}"
workers="${ST_WORKERS:-2}"
port="${ST_PORT:-18080}"
lanes="${ST_LANES:-2}"
seed="${ST_SEED:-1}"
out=target/schemathesis
databases="${ST_DATABASES:-sqlite postgres}"
pg_max_examples="${ST_PG_MAX_EXAMPLES:-100}"
pg_url="${ST_PG_URL:-postgres://postgres@127.0.0.1:5432}"

[ -x "$bin" ] || { echo "$bin is missing: run cargo test (or cargo build) first" >&2; exit 1; }
if [ ! -x "$venv/bin/st" ] || ! "$venv/bin/st" --version 2>/dev/null | grep -q "$version"; then
  echo "== installing schemathesis $version into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$version"
fi
rm -rf "$out"
mkdir -p "$out"

token() { # port email password -> access token
  curl -fsS "http://127.0.0.1:$1/api/auth/login" -H 'Content-Type: application/json' \
    -d "{\"email\":\"$2\",\"password\":\"$3\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])'
}

# One run: a fresh server and database on PORT, schemathesis as ROLE; its output goes to
# $out/ROLE-DATABASE/schemathesis.log. Returns schemathesis's status.
run() { # port database role email password
  local port="$1" database="$2" role="$3" email="$4" password="$5"
  local label="$role-$database" work="$out/$role-$database" examples pg_db="" server_pid rc=0
  mkdir -p "$work"
  if [ "$database" = postgres ]; then
    pg_db="dispensary_st_$role"
    psql "$pg_url/postgres" -qc "DROP DATABASE IF EXISTS \"$pg_db\"" >/dev/null 2>&1
    psql "$pg_url/postgres" -qc "CREATE DATABASE \"$pg_db\"" >/dev/null
    examples="$pg_max_examples"
  else
    examples="$max_examples"
  fi
  echo "== $label: schemathesis as $role on $database (fresh server and database on port $port, $examples examples)"
  # The customer run signs in as well as the admin: the server counts login attempts per IP,
  # and schemathesis itself calls the auth routes; a documented 429 is an accepted answer.
  if [ -n "$pg_db" ]; then
    server_pid="$(SERVE_DATABASE_URL="$pg_url/$pg_db" .ci/serve.sh "$port" "$work")"
  else
    server_pid="$(env -u SERVE_DATABASE_URL .ci/serve.sh "$port" "$work")"
  fi
  echo "$server_pid" >"$work/server.pid"
  local tok started=$SECONDS
  tok="$(token "$port" "$email" "$password")"
  # From the run's own directory: schemathesis keeps its crash cache in ./.schemathesis.
  (cd "$work" && SCHEMATHESIS_HOOKS=ci_schemathesis_hooks PYTHONPATH="$root/.ci" \
    "$root/$venv/bin/st" run "$root/openapi.yaml" \
    --url "http://127.0.0.1:$port" \
    -H "Authorization: Bearer $tok" \
    --phases examples,coverage,fuzzing,stateful \
    --checks all --exclude-checks positive_data_acceptance,negative_data_rejection \
    --exclude-path /api/auth/logout \
    --exclude-path /api/me/sessions/{id} \
    --exclude-path /api/users/{id}/sessions/revoke \
    --max-examples "$examples" \
    --workers "$workers" \
    --seed "$seed" \
    --request-timeout 30 \
    --report junit --report-dir . \
    --output-truncate true) >"$work/schemathesis.log" 2>&1 || rc=1
  kill "$server_pid" 2>/dev/null || true
  # Not this shell's child (serve.sh started it): wait until it is gone, so that the next run on
  # this port can listen (a server finishes its requests under way before it exits).
  for _ in $(seq 1 300); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
  if [ -n "$pg_db" ]; then
    psql "$pg_url/postgres" -qc "DROP DATABASE IF EXISTS \"$pg_db\"" >/dev/null 2>&1 || true
  fi
  echo "$rc" >"$work/status"
  if [ "$rc" -eq 0 ]; then
    echo "== $label: passed in $((SECONDS - started)) s"
  else
    echo "== $label: FAILED in $((SECONDS - started)) s (log: $work/schemathesis.log)"
  fi
  return "$rc"
}

# Whatever happens, no server outlives the script, and no run database stays behind.
cleanup() {
  for f in "$out"/*/server.pid; do
    [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
  done
  for role in admin customer; do
    psql "$pg_url/postgres" -qc "DROP DATABASE IF EXISTS \"dispensary_st_$role\"" >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT

# The runs, dealt round-robin to the lanes (admin runs to one, customer runs to the other); each lane runs its share one after another
# on its own port, and the lanes run side by side (each run is bound by one schemathesis process's
# CPU, so two lanes use the machine's two cores).
runs=()
for database in $databases; do
  runs+=("$database admin admin@dispensario.local Admin12345!")
  runs+=("$database customer cliente@dispensario.local Cliente12345")
done
lane_pids=()
for ((lane = 0; lane < lanes; lane++)); do
  (
    status=0
    for ((i = lane; i < ${#runs[@]}; i += lanes)); do
      # shellcheck disable=SC2086
      run "$((port + lane))" ${runs[$i]} || status=1
    done
    exit "$status"
  ) &
  lane_pids+=($!)
done
status=0
for pid in "${lane_pids[@]}"; do
  wait "$pid" || status=1
done

echo "== schemathesis cases"
for entry in "${runs[@]}"; do
  read -r database role _ <<<"$entry"
  label="$role-$database"
  log="$out/$label/schemathesis.log"
  echo "$label: $(grep -E '[0-9]+ generated' "$log" 2>/dev/null | tail -n1 | sed 's/^ *//')"
  if [ "$(cat "$out/$label/status" 2>/dev/null)" != 0 ]; then
    echo "---- $label's log (tail) ----"
    tail -n 80 "$log" 2>/dev/null || true
  fi
done
exit "$status"
