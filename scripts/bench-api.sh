#!/usr/bin/env bash
# API load figures with wrk: GET /api/v1/subscriptions/{id}/, a list page of 1,000
# subscriptions, and POST /api/v1/subscriptions/.
#
#   scripts/bench-api.sh [postgres|sqlite] [seconds] [connections] [modes]
#
# modes: a comma-separated choice of `get`, `list` and `post`, run in that order (default all
# three). Builds the release binary (or runs the one named by SBM_BENCH_BIN, e.g. a copy built
# from an older commit, for a before/after comparison in one sitting), starts it on a fresh
# database (PostgreSQL at 127.0.0.1:5432 by default, or a temporary SQLite file), creates a
# token, a schedule, a message set and one subscription, then runs wrk against each endpoint and
# prints wrk's summary (requests/s, latency percentiles). Needs wrk (Debian: apt-get install wrk).
#
# `list` first seeds SBM_BENCH_SEED (default 10,000) more subscriptions (SQL copies of the first,
# each with its own ids, metadata and creation time), vacuums and analyzes the table on
# PostgreSQL (autovacuum is off on the project's machine), then reads `GET /api/v1/subscriptions/?limit=1000&offset=…`, the pages of the seeded rows in turn
# (offsets 0, 1000, …, 9000), with `connections / 4` connections (at least 4): each answer is
# about 500 kB. Its requests/s are pages/s. The GET and POST runs come before the seeding or
# after the list run, as asked for, on whatever the table then holds.
set -euo pipefail
cd "$(dirname "$0")/.."
backend="${1:-postgres}"
seconds="${2:-15}"
connections="${3:-64}"
modes="${4:-get,list,post}"
seed="${SBM_BENCH_SEED:-10000}"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }

if [ -n "${SBM_BENCH_BIN:-}" ]; then
    sbm="$SBM_BENCH_BIN"
else
    cargo build --release --quiet
    sbm=./target/release/sbm
fi
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
export SECRET_KEY="${SECRET_KEY:-$(openssl rand -hex 32)}"
"$sbm" migrate >/dev/null
token=$("$sbm" token create --email bench@example.org)
"$sbm" serve --no-worker 2>"$work/serve.log" &
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
# The list pages of the seeded rows, in turn (each wrk thread walks them from its own start).
cat > "$work/list.lua" <<LUA
wrk.headers["Authorization"] = "Token $token"
local page = 0
function setup(thread) thread:set("first", math.random(0, 9)) end
function request()
    page = page + 1
    return wrk.format(nil, "/api/v1/subscriptions/?limit=1000&offset=" .. ((first + page) % $(( seed / 1000 ))) * 1000)
end
LUA

run() { # title, lua script, url, connections
    echo "== $1 ($backend, ${seconds}s, $4 connections)"
    wrk -t2 -c"$4" -d"${seconds}s" --latency -s "$2" "$3"
    echo
}
# SBM_BENCH_SEED copies of the first subscription, each with its own id, identity, metadata and
# creation time (one statement; the list reads rows, not their events).
seed_rows() {
    if [ "$backend" = sqlite ]; then
        sqlite3 "$work/bench.db" "with recursive g(n) as (select 1 union all select n + 1 from g where n < $seed)
            insert into subscription (id, identity, version, message_set_id, next_sequence_number,
                initial_sequence_number, lang, active, completed, schedule_id, process_status, metadata,
                created_at, updated_at, created_by, updated_by, timezone)
            select randomblob(16), randomblob(16), version, message_set_id, next_sequence_number,
                initial_sequence_number, lang, active, completed, schedule_id, process_status,
                json_object('source', 'bench', 'n', n), created_at, updated_at, created_by, updated_by, timezone
            from subscription, g"
    else
        psql -h 127.0.0.1 -U postgres -d "$db" -qc "insert into subscription (id, identity, version,
                message_set_id, next_sequence_number, initial_sequence_number, lang, active, completed,
                schedule_id, process_status, metadata, created_at, updated_at, created_by, updated_by, timezone)
            select gen_random_uuid(), gen_random_uuid(), version, message_set_id, next_sequence_number,
                initial_sequence_number, lang, active, completed, schedule_id, process_status,
                jsonb_build_object('source', 'bench', 'n', n), created_at + n * interval '1 ms',
                updated_at + n * interval '1 ms', created_by, updated_by, timezone
            from subscription, generate_series(1, $seed) n where id = '$sub'"
    fi
}
count() {
    api "http://127.0.0.1:$port/api/v1/subscriptions/?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])'
}
list_connections=$(( connections / 4 > 4 ? connections / 4 : 4 ))
for mode in ${modes//,/ }; do
    case "$mode" in
        get) run "GET /api/v1/subscriptions/{id}/" "$work/get.lua" "http://127.0.0.1:$port/api/v1/subscriptions/$sub/" "$connections" ;;
        post) run "POST /api/v1/subscriptions/" "$work/create.lua" "http://127.0.0.1:$port/api/v1/subscriptions/" "$connections" ;;
        list)
            seed_rows
            # This machine's PostgreSQL runs with autovacuum off; do what it would have done by
            # now (the planner's statistics, the visibility map for index-only scans).
            [ "$backend" = sqlite ] || psql -h 127.0.0.1 -U postgres -d "$db" -qc "vacuum analyze subscription"
            echo "seeded: $(count) subscriptions"
            run "GET /api/v1/subscriptions/?limit=1000 (pages/s)" "$work/list.lua" "http://127.0.0.1:$port/api/v1/subscriptions/" "$list_connections"
            ;;
        *) echo "unknown mode: $mode (get, list, post)" >&2; exit 1 ;;
    esac
done
echo "non-2xx answers during the runs: $(grep -c ' 5[0-9][0-9] ' "$work/serve.log" || true)"
