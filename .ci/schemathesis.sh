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
# to stay within CI's time budget).
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

server_pid=""
pg_db=""
stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
  if [ -n "$pg_db" ]; then
    psql "$pg_url/postgres" -qc "DROP DATABASE IF EXISTS \"$pg_db\"" >/dev/null 2>&1 || true
    pg_db=""
  fi
}
trap stop_server EXIT

token() { # email password -> access token
  curl -fsS "http://127.0.0.1:$port/api/auth/login" -H 'Content-Type: application/json' \
    -d "{\"email\":\"$1\",\"password\":\"$2\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])'
}

status=0
run() { # database label email password
  local database="$1" label="$2-$1" work="$out/$2-$1" examples
  shift
  echo "== schemathesis as $1 on $database (fresh server and database on port $port)"
  if [ "$database" = postgres ]; then
    pg_db="dispensary_st_$1"
    psql "$pg_url/postgres" -qc "DROP DATABASE IF EXISTS \"$pg_db\"" >/dev/null
    psql "$pg_url/postgres" -qc "CREATE DATABASE \"$pg_db\"" >/dev/null
    export SERVE_DATABASE_URL="$pg_url/$pg_db"
    examples="$pg_max_examples"
  else
    unset SERVE_DATABASE_URL
    examples="$max_examples"
  fi
  # The customer run signs in as well as the admin: the server counts login attempts per IP,
  # and schemathesis itself calls the auth routes; a documented 429 is an accepted answer.
  server_pid="$(.ci/serve.sh "$port" "$work")"
  local tok
  tok="$(token "$2" "$3")"
  local started=$SECONDS
  # From the run's own directory: schemathesis keeps its crash cache in ./.schemathesis.
  if ! (cd "$work" && SCHEMATHESIS_HOOKS=ci_schemathesis_hooks PYTHONPATH="$root/.ci" \
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
    --output-truncate true) 2>&1 | tee "$work/schemathesis.log"; then
    status=1
  fi
  echo "== $label: $((SECONDS - started)) s"
  stop_server
}

labels=()
for database in $databases; do
  run "$database" admin admin@dispensario.local 'Admin12345!'
  run "$database" customer cliente@dispensario.local Cliente12345
  labels+=("admin-$database" "customer-$database")
done
echo "== schemathesis cases"
for label in "${labels[@]}"; do
  echo "$label: $(grep -E '[0-9]+ generated' "$out/$label/schemathesis.log" | tail -n1 | sed 's/^ *//')"
done
exit "$status"
