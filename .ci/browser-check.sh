#!/usr/bin/env bash
# A real-browser check of the two pages admins use: GraphiQL (GET /graphql) must show the schema in
# its documentation explorer (Query lists `products`) and Swagger UI (/docs) must list the REST
# operations, with every request staying on this machine. A second server runs with
# GRAPHQL_INTROSPECTION=admin (production's default): anonymous GraphiQL must be refused the schema
# and get it once the admin's bearer token is in its Headers tab. Headless Debian Chromium, driven
# by playwright-core from the npm registry (it never downloads a browser). Screenshots land in
# target/browser-check/ (graphiql.png, swagger.png, graphiql-admin.png).
#
# Run from anywhere after `cargo test` (or `cargo build`) built target/debug/dispensary:
#   .ci/browser-check.sh [BINARY]
# Environment: BROWSER_CHECK_PORT (default 18181; the admin-mode server takes the next port),
# CHROMIUM (default /usr/bin/chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
bin="${1:-target/debug/dispensary}"
port="${BROWSER_CHECK_PORT:-18181}"
chromium="${CHROMIUM:-/usr/bin/chromium}"
out="target/browser-check"
driver_version="1.65.1"

if [ ! -x "$bin" ]; then
  echo "browser check: $bin is missing; run cargo test or cargo build first" >&2
  exit 1
fi

if [ ! -x "$chromium" ]; then
  echo "== installing chromium (Debian)"
  apt-get install -y -qq chromium >/dev/null 2>&1 ||
    (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1)
fi
echo "browser: $("$chromium" --version 2>/dev/null || echo "$chromium")"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "browser check: node and npm (Node.js >= 20) are needed for playwright-core" >&2
  exit 1
fi

# playwright-core is the library without browser downloads; pinned, installed once under target/.
driver_dir="$out/driver"
if [ ! -f "$driver_dir/node_modules/playwright-core/package.json" ] ||
  ! grep -q "\"version\": \"$driver_version\"" "$driver_dir/node_modules/playwright-core/package.json"; then
  echo "== installing playwright-core $driver_version (npm)"
  mkdir -p "$driver_dir"
  [ -f "$driver_dir/package.json" ] || echo '{"private": true}' >"$driver_dir/package.json"
  npm install --prefix "$driver_dir" --no-audit --no-fund --silent "playwright-core@$driver_version"
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

rm -f "$out"/*.png "$out/requests.txt"
mkdir -p "$out"
# development: the demo seed (admin@dispensario.local / Admin12345!).
admin_port=$((port + 1))
pids+=("$(APP_ENV=development GRAPHQL_INTROSPECTION=public .ci/serve.sh "$port" "$work/public" "$bin")")
pids+=("$(APP_ENV=development GRAPHQL_INTROSPECTION=admin .ci/serve.sh "$admin_port" "$work/admin" "$bin")")
echo "servers: 127.0.0.1:$port (introspection public), 127.0.0.1:$admin_port (admin); pids ${pids[*]}"

status=0
NODE_PATH="$PWD/$driver_dir/node_modules" node .ci/browser-check.cjs \
  "http://127.0.0.1:$port" "http://127.0.0.1:$admin_port" "$chromium" "$out" "$work/profile" || status=$?
if [ "$status" -ne 0 ]; then
  for log in "$work"/*/server.log; do
    echo "$log (last 20 lines):"
    tail -n 20 "$log" || true
  done
fi
echo "browser check: $([ "$status" -eq 0 ] && echo passed || echo FAILED) in $(($(date +%s) - started)) s"
exit "$status"
