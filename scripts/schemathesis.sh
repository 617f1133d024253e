#!/usr/bin/env bash
# Schemathesis against sbm's own OpenAPI document: every operation, all checks, once as an
# admin and once as a plain user, on a fresh database.
#
#   scripts/schemathesis.sh [sqlite|postgres|both] [seconds per pass] [max examples]
#
# SBM_BIN names an sbm binary to test instead of building the release one (CI passes the debug
# binary `cargo test` has just built).
#
# Installs schemathesis (PyPI) into target/schemathesis-venv if it is missing, builds the
# release binary, starts `sbm serve` on a free port against a fresh SQLite file or PostgreSQL
# database, issues the two tokens with `sbm token create`, and runs one bounded `st run` per
# token. Reports (JUnit and the run's NDJSON) go to target/schemathesis/<backend>-<role>/.
# Exits non-zero when any pass found a server error (5xx); the figures of the other checks are
# printed and kept in the reports (see docs/reliability.md).
set -euo pipefail
cd "$(dirname "$0")/.."
backend="${1:-sqlite}"
seconds="${2:-60}"
examples="${3:-20}"
if [ "$backend" = both ]; then
    status=0
    "$0" sqlite "$seconds" "$examples" || status=$?
    "$0" postgres "$seconds" "$examples" || status=$?
    exit "$status"
fi

venv=target/schemathesis-venv
if [ ! -x "$venv/bin/st" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "schemathesis==4.32.5"
fi
sbm="${SBM_BIN:-}"
if [ -z "$sbm" ]; then
    cargo build --release --quiet
    sbm=./target/release/sbm
fi

work=$(mktemp -d)
if [ "$backend" = sqlite ]; then
    export DATABASE_URL="sqlite://$work/schemathesis.db"
else
    db="sbm_schemathesis_$$"
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

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# PostgreSQL needs a key for the secrets at rest; SQLite would generate one beside its file.
export SECRET_KEY="schemathesis-$$-$RANDOM"
export RUST_LOG=warn SBM_BIND="127.0.0.1:$port" SBM_MEDIA_ROOT="$work/media" SBM_INSTANCE_NAME=schemathesis
"$sbm" migrate >/dev/null
admin=$("$sbm" token create --email admin@example.org --admin)
user=$("$sbm" token create --email user@example.org)
# The worker stays off: pushes, deliveries and sends would reach out to made-up addresses.
"$sbm" serve --no-worker 2>"$work/serve.log" &
server=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done

status=0
for role in admin user; do
    token=$admin
    [ "$role" = user ] && token=$user
    out="target/schemathesis/$backend-$role"
    rm -rf "$out"
    mkdir -p "$out"
    echo "== schemathesis: $backend, as $role, ${seconds}s, up to $examples examples per operation"
    set +e
    "$venv/bin/st" run "http://127.0.0.1:$port/api/openapi.json" \
        --url "http://127.0.0.1:$port" \
        --checks all \
        --header "Authorization: Token $token" \
        --max-time "$seconds" --max-examples "$examples" \
        --seed 1 --workers 2 --request-timeout 10 --generation-database none \
        --no-color --output-truncate true \
        --report junit,ndjson --report-dir "$out" >"$out/output.txt" 2>&1
    set -e
    tail -n 40 "$out/output.txt"
    if grep -q "Server error" "$out/output.txt"; then
        echo "!! server errors ($backend, $role): see $out/output.txt" >&2
        status=1
    fi
done
if grep -E 'ERROR|panicked' "$work/serve.log" | head -20; then
    echo "!! sbm logged errors (above)" >&2
    status=1
fi
exit "$status"
