#!/usr/bin/env bash
# API load figures with wrk: GET /api/v1/subscriptions/{id}/ and POST /api/v1/subscriptions/.
#
#   scripts/bench-api.sh [postgres|sqlite] [seconds] [connections]
#
# Builds the release binary, starts it on a fresh database (PostgreSQL at 127.0.0.1:5432 by
# default, or a temporary SQLite file), creates a token, a schedule, a message set and one
# subscription, then runs wrk against each endpoint and prints wrk's summary (requests/s,
# latency percentiles). Needs wrk (Debian: apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/.."
backend="${1:-postgres}"
seconds="${2:-15}"
connections="${3:-64}"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }

cargo build --release --quiet
work=$(mktemp -d)
if [ "$backend" = sqlite ]; then
    export DATABASE_URL="sqlite://$work/bench.db"
else
    db="sbm_api_bench_$$"
    psql -h 127.0.0.1 -U postgres -qc "create database $db"
    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db"
fi
cleanup() {
    [ -n "${server:-}" ] && kill "$server" 2>/dev/null || true
    wait 2>/dev/null || true
    [ "$backend" = sqlite ] || psql -h 127.0.0.1 -U postgres -qc "drop database if exists $db with (force)"
    rm -rf "$work"
}
trap cleanup EXIT

port=18765
export RUST_LOG=warn SBM_BIND="127.0.0.1:$port" SBM_MEDIA_ROOT="$work/media" SBM_DB_MAX_CONNECTIONS=20
./target/release/sbm migrate >/dev/null
token=$(./target/release/sbm token create --email bench@example.org)
./target/release/sbm serve --no-worker 2>"$work/serve.log" &
server=$!
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done

api() { curl -fs -H "Authorization: Token $token" -H 'Content-Type: application/json' "$@"; }
schedule=$(api -d '{"minute": "0", "hour": "8", "day_of_week": "1,4"}' "http://127.0.0.1:$port/api/v1/schedule/" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
set_id=$(api -d "{\"short_name\": \"bench\", \"default_schedule\": $schedule}" "http://127.0.0.1:$port/api/v1/messageset/" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
sub=$(api -d "{\"identity\": \"3f4b1c2e-7a1d-4c55-9d3e-0a1b2c3d4e5f\", \"messageset\": $set_id, \"lang\": \"eng_ZA\"}" "http://127.0.0.1:$port/api/v1/subscriptions/" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')

cat > "$work/get.lua" <<LUA
wrk.headers["Authorization"] = "Token $token"
LUA
cat > "$work/create.lua" <<LUA
wrk.method = "POST"
wrk.headers["Authorization"] = "Token $token"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"identity": "3f4b1c2e-7a1d-4c55-9d3e-0a1b2c3d4e5f", "messageset": $set_id, "lang": "eng_ZA"}'
LUA

echo "== GET /api/v1/subscriptions/{id}/ ($backend, ${seconds}s, $connections connections)"
wrk -t2 -c"$connections" -d"${seconds}s" --latency -s "$work/get.lua" "http://127.0.0.1:$port/api/v1/subscriptions/$sub/"
echo
echo "== POST /api/v1/subscriptions/ ($backend, ${seconds}s, $connections connections)"
wrk -t2 -c"$connections" -d"${seconds}s" --latency -s "$work/create.lua" "http://127.0.0.1:$port/api/v1/subscriptions/"
echo
echo "non-2xx answers during the runs: $(grep -c ' 5[0-9][0-9] ' "$work/serve.log" || true)"
